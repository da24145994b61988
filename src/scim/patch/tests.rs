use super::*;
use crate::fixtures::rfc_rules;
use crate::route::ResourceType;
use serde_json::json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const DISABLE_FLAG: &str = include_str!("../../../tests/fixtures/entra/disable-flag.json");
const DISABLE_NOFLAG: &str = include_str!("../../../tests/fixtures/entra/disable-noflag.json");
const GROUP_ADD: &str = include_str!("../../../tests/fixtures/entra/group-add.json");
const GROUP_REMOVE_FLAG: &str = include_str!("../../../tests/fixtures/entra/group-remove-flag.json");
const GROUP_REMOVE_NOFLAG: &str = include_str!("../../../tests/fixtures/entra/group-remove-noflag.json");
const MULTI_REPLACE_FLAG: &str = include_str!("../../../tests/fixtures/entra/multi-replace-flag.json");
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn patch(resource_type: ResourceType, body: &str) -> (Result<Value, ScimError>, Vec<Normalisation>) {
    let mut changes = Changes::default();
    let result = prepare_patch(&rfc_rules(resource_type), body.as_bytes(), &mut changes)
        .map(|patch| patch.expect("an rfc policy strips no operation"));
    let mut kinds = changes.kinds().to_vec();
    kinds.sort_by_key(|k| k.as_str());
    (result, kinds)
}

fn operations(value: Value) -> Value {
    json!({"schemas": [PATCH_OP_URN], "Operations": value})
}

fn refusal(resource_type: ResourceType, operations_json: Value) -> ScimError {
    patch(resource_type, &operations(operations_json).to_string()).0.unwrap_err()
}

#[test]
fn entra_disable_in_both_forms_is_the_same_canonical_patch() {
    let expected = operations(json!([{"op": "replace", "path": "active", "value": false}]));
    let (flag, kinds) = patch(ResourceType::User, DISABLE_FLAG);
    assert_eq!((flag.unwrap(), kinds), (expected.clone(), vec![]));
    let (noflag, kinds) = patch(ResourceType::User, DISABLE_NOFLAG);
    assert_eq!((noflag.unwrap(), kinds), (expected, vec![Normalisation::OpCase, Normalisation::StringBoolean]));
}

#[test]
fn entra_member_add_loses_its_null_ref() {
    let (result, kinds) = patch(ResourceType::Group, GROUP_ADD);
    assert_eq!(
        result.unwrap(),
        operations(json!([{"op": "add", "path": "members", "value": [{"value": "f648f8d5ea4e4cd38e9c"}]}]))
    );
    assert_eq!(kinds, [Normalisation::NullDropped, Normalisation::OpCase]);
}

#[test]
fn entra_member_removal_in_both_forms_is_one_rfc_remove_per_member() {
    let (noflag, kinds) = patch(ResourceType::Group, GROUP_REMOVE_NOFLAG);
    assert_eq!(noflag.unwrap(), operations(json!([{"op": "remove", "path": "members[value eq \"u1091\"]"}])));
    assert_eq!(kinds, [Normalisation::MemberRemoval, Normalisation::OpCase]);

    let (flag, kinds) = patch(ResourceType::Group, GROUP_REMOVE_FLAG);
    assert_eq!(flag.unwrap(), serde_json::from_str::<Value>(GROUP_REMOVE_FLAG).unwrap());
    assert_eq!(kinds, []);

    let several =
        operations(json!([{"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "b\"c"}]}]));
    let (result, _) = patch(ResourceType::Group, &several.to_string());
    assert_eq!(
        result.unwrap(),
        operations(json!([
            {"op": "remove", "path": "members[value eq \"a\"]"},
            {"op": "remove", "path": "members[value eq \"b\\\"c\"]"}
        ]))
    );
}

#[test]
fn entra_pathless_replace_with_dotted_and_urn_keys_becomes_operations_with_paths() {
    let (result, kinds) = patch(ResourceType::User, MULTI_REPLACE_FLAG);
    assert_eq!(
        result.unwrap(),
        operations(json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com"},
            {"op": "replace", "value": {"displayName": "Bjfe"}},
            {"op": "replace", "path": "name.familyName", "value": "Unua"},
            {"op": "replace", "path": "name.givenName", "value": "Kkom"},
            {"op": "replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "Aklq"}
        ]))
    );
    assert_eq!(kinds, [Normalisation::PathlessValueSplit]);
}

#[test]
fn normalising_twice_changes_nothing() {
    for (resource_type, body) in [
        (ResourceType::User, DISABLE_NOFLAG),
        (ResourceType::Group, GROUP_ADD),
        (ResourceType::Group, GROUP_REMOVE_NOFLAG),
        (ResourceType::User, MULTI_REPLACE_FLAG),
    ] {
        let once = patch(resource_type, body).0.unwrap();
        let (twice, kinds) = patch(resource_type, &once.to_string());
        assert_eq!(twice.unwrap(), once, "{body}");
        assert_eq!(kinds, [], "{body}");
    }
}

#[test]
fn nested_extension_values_and_unqualified_extension_names_get_urn_paths() {
    let body = operations(json!([
        {"op": "add", "value": {ENTERPRISE: {"department": "R&D"}, "employeeNumber": "7", "Title": "Dr"}}
    ]));
    let (result, _) = patch(ResourceType::User, &body.to_string());
    assert_eq!(
        result.unwrap(),
        operations(json!([
            {"op": "add", "value": {"title": "Dr"}},
            {"op": "add", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "7"},
            {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"}
        ]))
    );
}

#[test]
fn replacing_with_null_is_a_remove() {
    let body = operations(json!([
        {"op": "replace", "path": "displayName", "value": null},
        {"op": "replace", "value": {"nickName": null, "title": "x"}}
    ]));
    let (result, kinds) = patch(ResourceType::User, &body.to_string());
    assert_eq!(
        result.unwrap(),
        operations(json!([
            {"op": "remove", "path": "displayName"},
            {"op": "remove", "path": "nickName"},
            {"op": "replace", "value": {"title": "x"}}
        ]))
    );
    assert_eq!(kinds, [Normalisation::NullReplaceToRemove]);
}

#[test]
fn read_only_and_required_attributes_cannot_be_changed() {
    for (operation, detail) in [
        (json!({"op": "replace", "path": "id", "value": "x"}), "Operations[0]: 'id' is read-only"),
        (json!({"op": "replace", "path": "meta.created", "value": "x"}), "Operations[0]: 'meta.created' is read-only"),
        (
            json!({"op": "add", "path": "groups", "value": [{"value": "admins"}]}),
            "Operations[0]: 'groups' is read-only",
        ),
        (json!({"op": "replace", "value": {"id": "x"}}), "Operations[0]: 'id' is read-only"),
        (json!({"op": "remove", "path": "userName"}), "Operations[0]: 'userName' is required and cannot be removed"),
    ] {
        let error = refusal(ResourceType::User, json!([operation]));
        assert_eq!((error.scim_type, error.detail.as_str()), (Some(ScimType::Mutability), detail));
    }
}

#[test]
fn malformed_operations_get_the_rfc_scim_types() {
    let cases = [
        (json!([{"op": "remove"}]), ScimType::NoTarget),
        (json!([{"op": "move", "path": "title", "value": "x"}]), ScimType::InvalidSyntax),
        (json!([{"path": "title", "value": "x"}]), ScimType::InvalidSyntax),
        (json!([{"op": "add", "path": "title"}]), ScimType::InvalidSyntax),
        (json!([{"op": "add", "path": "title", "value": "x", "from": "y"}]), ScimType::InvalidSyntax),
        (json!([{"op": "add", "path": "nickname2", "value": "x"}]), ScimType::InvalidPath),
        (json!([{"op": "add", "path": 7, "value": "x"}]), ScimType::InvalidPath),
        (json!([{"op": "add", "value": {"nope": 1}}]), ScimType::InvalidPath),
        (json!([{"op": "add", "value": "x"}]), ScimType::InvalidValue),
        (json!([{"op": "replace", "path": "active", "value": "maybe"}]), ScimType::InvalidValue),
        (json!([{"op": "add", "path": "emails", "value": {"value": "a"}}]), ScimType::InvalidValue),
        (json!([{"op": "remove", "path": "members", "value": [{"display": "x"}]}]), ScimType::InvalidValue),
        (json!([]), ScimType::InvalidValue),
        (json!("x"), ScimType::InvalidValue),
        (json!(["x"]), ScimType::InvalidSyntax),
    ];
    for (operations_json, scim_type) in cases {
        let resource_type =
            if operations_json.to_string().contains("members") { ResourceType::Group } else { ResourceType::User };
        let error = refusal(resource_type, operations_json.clone());
        assert_eq!(error.scim_type, Some(scim_type), "{operations_json}: {}", error.detail);
    }
    let (wrong_schema, _) = patch(ResourceType::User, r#"{"schemas":["urn:x"],"Operations":[]}"#);
    assert_eq!(wrong_schema.unwrap_err().scim_type, Some(ScimType::InvalidValue));
    let (missing_schema, _) = patch(ResourceType::User, r#"{"Operations":[{"op":"remove","path":"title"}]}"#);
    assert_eq!(missing_schema.unwrap_err().scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn operation_count_is_bounded() {
    let many: Vec<Value> = (0..=MAX_OPERATIONS).map(|_| json!({"op": "remove", "path": "title"})).collect();
    assert!(refusal(ResourceType::User, Value::Array(many)).detail.contains("More than 1000 operations"));
    let list: Vec<Value> = (0..=MAX_OPERATIONS).map(|i| json!({"value": i.to_string()})).collect();
    let error = refusal(ResourceType::Group, json!([{"op": "remove", "path": "members", "value": list}]));
    assert!(error.detail.contains("More than 1000 operations"));
}

#[test]
fn errors_never_show_values() {
    let error = refusal(ResourceType::User, json!([{"op": "replace", "path": "active", "value": "hunter2"}]));
    assert!(!error.detail.contains("hunter2"));
    let error = refusal(
        ResourceType::User,
        json!([{"op": "replace", "path": "emails[value eq \"hunter2\"].nope", "value": "x"}]),
    );
    assert!(!error.detail.contains("hunter2"), "{}", error.detail);
}

#[test]
fn a_path_naming_the_whole_extension_addresses_its_attributes() {
    let body = operations(json!([
        {"op": "replace", "path": ENTERPRISE, "value": {"schemas": [ENTERPRISE], "employeeNumber": "7", "manager": {"value": "m"}}},
        {"op": "remove", "path": ENTERPRISE.to_uppercase()}
    ]));
    let (result, _) = patch(ResourceType::User, &body.to_string());
    assert_eq!(
        result.unwrap(),
        operations(json!([
            {"op": "replace", "path": format!("{ENTERPRISE}:employeeNumber"), "value": "7"},
            {"op": "replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "m"}},
            {"op": "remove", "path": ENTERPRISE}
        ]))
    );
    let error = refusal(ResourceType::User, json!([{"op": "add", "path": ENTERPRISE, "value": "x"}]));
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
}

const MANAGER_ADD_NOFLAG: &str = include_str!("../../../tests/fixtures/entra/manager-add-noflag.json");
const MANAGER_ADD_REF: &str = include_str!("../../../tests/fixtures/entra/manager-add-ref.json");
const MANAGER_REPLACE_FLAG: &str = include_str!("../../../tests/fixtures/entra/manager-replace-flag.json");
const MANAGER_REMOVE: &str = include_str!("../../../tests/fixtures/entra/manager-remove.json");
const MANAGER_REMOVE_VALUE: &str = include_str!("../../../tests/fixtures/entra/manager-remove-value.json");
const MANAGER_ID: &str = "2819c223-7f76-453a-919d-413861904646";

#[test]
fn entra_manager_in_every_form_is_the_rfc_complex_value() {
    let manager = format!("{ENTERPRISE}:manager");
    let (bare, kinds) = patch(ResourceType::User, MANAGER_ADD_NOFLAG);
    assert_eq!(bare.unwrap(), operations(json!([{"op": "add", "path": manager, "value": {"value": MANAGER_ID}}])));
    assert_eq!(kinds, [Normalisation::ManagerShape, Normalisation::OpCase]);

    let (listed, kinds) = patch(ResourceType::User, MANAGER_ADD_REF);
    assert_eq!(listed.unwrap(), operations(json!([{"op": "add", "path": manager, "value": {"value": MANAGER_ID}}])));
    assert_eq!(kinds, [Normalisation::ManagerShape, Normalisation::NullDropped, Normalisation::OpCase]);

    // The flag form's pathless replace with the URN-qualified key.
    let (flag, kinds) = patch(ResourceType::User, MANAGER_REPLACE_FLAG);
    assert_eq!(flag.unwrap(), operations(json!([{"op": "replace", "path": manager, "value": {"value": MANAGER_ID}}])));
    assert_eq!(kinds, [Normalisation::ManagerShape, Normalisation::PathlessValueSplit]);

    // The RFC's nested pathless form, and the sub-attribute path, take a bare id too.
    let nested = operations(json!([{"op": "replace", "value": {ENTERPRISE: {"manager": MANAGER_ID}}}]));
    let (result, _) = patch(ResourceType::User, &nested.to_string());
    assert_eq!(
        result.unwrap(),
        operations(json!([{"op": "replace", "path": manager, "value": {"value": MANAGER_ID}}]))
    );
    let sub = operations(json!([{"op": "Replace", "path": format!("{manager}.value"), "value": MANAGER_ID}]));
    let (result, _) = patch(ResourceType::User, &sub.to_string());
    let expected = json!([{"op": "replace", "path": format!("{manager}.value"), "value": MANAGER_ID}]);
    assert_eq!(result.unwrap(), operations(expected));
}

#[test]
fn entra_manager_removal_with_or_without_a_value_is_one_remove() {
    let expected = operations(json!([{"op": "remove", "path": format!("{ENTERPRISE}:manager")}]));
    for body in [MANAGER_REMOVE, MANAGER_REMOVE_VALUE] {
        let (result, kinds) = patch(ResourceType::User, body);
        assert_eq!((result.unwrap(), kinds), (expected.clone(), vec![Normalisation::OpCase]), "{body}");
    }
    let bare = operations(json!([{"op": "Remove", "path": format!("{ENTERPRISE}:manager"), "value": MANAGER_ID}]));
    assert_eq!(patch(ResourceType::User, &bare.to_string()).0.unwrap(), expected);
    // `replace` with null is a removal too (RFC 7643 §2.5).
    let null = operations(json!([{"op": "replace", "value": {format!("{ENTERPRISE}:manager"): null}}]));
    assert_eq!(patch(ResourceType::User, &null.to_string()).0.unwrap(), expected);
}
