use super::*;
use crate::fixtures::rfc_rules;
use crate::route::ResourceType;
use crate::scim::rules::AttributeRules;
use serde_json::json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const USER_MINIMAL: &str = include_str!("../../../tests/fixtures/rfc7643/user-minimal.json");
const USER_FULL: &str = include_str!("../../../tests/fixtures/rfc7643/user-full.json");
const USER_ENTERPRISE: &str = include_str!("../../../tests/fixtures/rfc7643/user-enterprise.json");
const GROUP: &str = include_str!("../../../tests/fixtures/rfc7643/group.json");
const ENTRA_CREATE_USER: &str = include_str!("../../../tests/fixtures/entra/create-user.json");
const ENTRA_CREATE_GROUP: &str = include_str!("../../../tests/fixtures/entra/create-group.json");

fn users() -> &'static dyn AttributeRules {
    Box::leak(Box::new(rfc_rules(ResourceType::User)))
}

fn groups() -> &'static dyn AttributeRules {
    Box::leak(Box::new(rfc_rules(ResourceType::Group)))
}

fn prepare(schema: &dyn AttributeRules, body: &Value) -> (Result<Value, ScimError>, Changes) {
    let mut changes = Changes::default();
    let result = prepare_resource(schema, Method::Post, None, body.to_string().as_bytes(), &mut changes);
    (result, changes)
}

fn refusal(schema: &dyn AttributeRules, body: Value) -> ScimError {
    prepare(schema, &body).0.unwrap_err()
}

/// A fixture as the client would send it back: without what RFC 7643 makes read-only.
fn without_read_only(mut value: Value) -> Value {
    let map = value.as_object_mut().unwrap();
    for key in ["id", "meta", "groups"] {
        map.remove(key);
    }
    if let Some(manager) = value.pointer_mut("/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager") {
        manager.as_object_mut().unwrap().remove("displayName");
    }
    value
}

#[test]
fn rfc7643_examples_round_trip() {
    for (schema, fixture) in
        [(users(), USER_MINIMAL), (users(), USER_FULL), (users(), USER_ENTERPRISE), (groups(), GROUP)]
    {
        let sent: Value = serde_json::from_str(fixture).unwrap();
        let (prepared, _) = prepare(schema, &sent);
        let prepared = prepared.unwrap();
        assert_eq!(prepared, without_read_only(sent.clone()), "{fixture}");
        let (again, changes) = prepare(schema, &prepared);
        assert_eq!(again.unwrap(), prepared, "normalising twice changes nothing");
        assert!(changes.is_empty(), "a canonical resource needs no normalisation: {changes:?}");
    }
}

#[test]
fn a_put_may_repeat_its_own_id_but_not_change_it() {
    let body: Value = serde_json::from_str(USER_MINIMAL).unwrap();
    let id = "2819c223-7f76-453a-919d-413861904646";
    let mut changes = Changes::default();
    let prepared = prepare_resource(users(), Method::Put, Some(id), body.to_string().as_bytes(), &mut changes).unwrap();
    assert_eq!(prepared.get("id"), None);
    let error = prepare_resource(users(), Method::Put, Some("other"), body.to_string().as_bytes(), &mut changes);
    assert_eq!(error.unwrap_err().scim_type, Some(ScimType::Mutability));
}

#[test]
fn entra_create_user_drops_meta_and_keeps_everything_else() {
    let sent: Value = serde_json::from_str(ENTRA_CREATE_USER).unwrap();
    let (prepared, changes) = prepare(users(), &sent);
    assert_eq!(
        prepared.unwrap(),
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_00aa00aa@testuser.com",
            "active": true,
            "displayName": "Test User",
            "emails": [{"primary": true, "type": "work", "value": "Test_User_11bb@testuser.com"}],
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": []
        })
    );
    assert_eq!(changes.kinds(), [Normalisation::MetaDropped]);
}

#[test]
fn entra_create_group_drops_the_foreign_schema_and_meta() {
    let sent: Value = serde_json::from_str(ENTRA_CREATE_GROUP).unwrap();
    let (prepared, changes) = prepare(groups(), &sent);
    assert_eq!(
        prepared.unwrap(),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName"
        })
    );
    let mut kinds = changes.kinds().to_vec();
    kinds.sort_by_key(|k| k.as_str());
    assert_eq!(kinds, [Normalisation::ForeignSchemaDropped, Normalisation::MetaDropped]);
}

#[test]
fn flat_extension_attributes_are_nested_and_their_schema_declared() {
    let (prepared, changes) = prepare(
        users(),
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "m-7",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:department": "R&D"
        }),
    );
    assert_eq!(
        prepared.unwrap(),
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "userName": "ada",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "42",
                "manager": {"value": "m-7"},
                "department": "R&D"
            }
        })
    );
    assert!(changes.kinds().contains(&Normalisation::FlatExtension));
    assert!(changes.kinds().contains(&Normalisation::SchemaAdded));
}

#[test]
fn attribute_names_get_the_schema_case_and_string_booleans_become_booleans() {
    let (prepared, changes) = prepare(
        users(),
        &json!({
            "Schemas": ["URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"],
            "USERNAME": "ada",
            "Active": "False",
            "urn:ietf:params:scim:schemas:core:2.0:User:displayName": "Ada",
            "emails": [{"Value": "a@example.com", "Primary": "true"}]
        }),
    );
    assert_eq!(
        prepared.unwrap(),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada",
            "active": false,
            "displayName": "Ada",
            "emails": [{"value": "a@example.com", "primary": true}]
        })
    );
    assert!(changes.kinds().contains(&Normalisation::AttributeCase));
    assert!(changes.kinds().contains(&Normalisation::StringBoolean));
}

#[test]
fn nulls_and_null_refs_are_dropped() {
    let (prepared, changes) = prepare(
        groups(),
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "G",
            "externalId": null,
            "members": [{"value": "u1", "$ref": null}, null]
        }),
    );
    assert_eq!(
        prepared.unwrap(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": "u1"}]})
    );
    assert_eq!(changes.kinds(), [Normalisation::NullDropped]);
}

#[test]
fn schemas_must_match_the_endpoint() {
    let error = refusal(users(), json!({"userName": "a"}));
    assert_eq!((error.status, error.scim_type), (400, Some(ScimType::InvalidValue)));
    assert!(error.detail.contains("'schemas' is required"));
    let error = refusal(users(), json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a"}));
    assert!(error.detail.contains("Unknown schema"), "{}", error.detail);
    let error = refusal(groups(), json!({"schemas": ["urn:x:custom"], "displayName": "a"}));
    assert!(error.detail.contains("Unknown schema"));
    let error = refusal(users(), json!({"schemas": "urn:ietf:params:scim:schemas:core:2.0:User", "userName": "a"}));
    assert_eq!(error.detail, "'schemas' must be an array of schema URNs");
    let error = refusal(
        users(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"], "userName": "a"}),
    );
    assert_eq!(error.detail, "'schemas' must include urn:ietf:params:scim:schemas:core:2.0:User");
}

#[test]
fn required_attributes_types_and_unknown_attributes_are_checked() {
    let user = |extra: Value| {
        let mut body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(
        refusal(users(), json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})).detail,
        "Required attribute 'userName' is missing or empty"
    );
    assert_eq!(
        refusal(groups(), json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": ""}))
            .detail,
        "Required attribute 'displayName' is missing or empty"
    );
    assert_eq!(refusal(users(), user(json!({"userName": 7}))).detail, "Attribute 'userName' must be a string");
    assert_eq!(refusal(users(), user(json!({"nickname2": "x"}))).detail, "Unknown attribute 'nickname2'");
    assert_eq!(
        refusal(users(), user(json!({"name": "Ada"}))).detail,
        "Attribute 'name' is complex: send a JSON object"
    );
    assert_eq!(
        refusal(users(), user(json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge": "1"}))).detail,
        "Unknown attribute 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge'"
    );
    assert_eq!(
        refusal(users(), user(json!({"urn:example:custom:attr": "1"}))).detail,
        "Unknown attribute 'urn:example:custom:attr'"
    );
    assert_eq!(
        refusal(users(), user(json!({"userName": "a", "USERNAME": "b"}))).detail,
        "Attribute 'userName' appears more than once"
    );
}

#[test]
fn read_only_attributes_are_dropped_not_forwarded() {
    let (prepared, changes) = prepare(
        users(),
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ada",
            "id": "chosen-by-client",
            "groups": [{"value": "admins"}]
        }),
    );
    assert_eq!(
        prepared.unwrap(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada"})
    );
    assert_eq!(changes.kinds(), [Normalisation::ReadOnlyDropped]);
}

const ENTRA_CREATE_USER_MANAGER: &str = include_str!("../../../tests/fixtures/entra/create-user-manager.json");
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

#[test]
fn entra_manager_in_a_resource_is_the_rfc_complex_value() {
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const ID: &str = "2819c223-7f76-453a-919d-413861904646";
    let nested: Value = serde_json::from_str(ENTRA_CREATE_USER_MANAGER).unwrap();
    let (prepared, changes) = prepare(users(), &nested);
    let prepared = prepared.unwrap();
    assert_eq!(prepared[ENTERPRISE], json!({"manager": {"value": ID}, "department": "R&D"}));
    assert!(changes.kinds().contains(&Normalisation::ManagerShape), "{changes:?}");

    let user = json!({"schemas": [USER_SCHEMA], "userName": "a"});
    for (key, value) in [
        (format!("{ENTERPRISE}:manager"), json!(ID)),
        (format!("{ENTERPRISE}:manager"), json!([{"$ref": null, "value": ID}])),
        (ENTERPRISE.to_string(), json!({"manager": ID})),
        (ENTERPRISE.to_string(), json!({"manager": [{"value": ID}]})),
    ] {
        let mut body = user.clone();
        body[&key] = value;
        let (prepared, changes) = prepare(users(), &body);
        let prepared = prepared.unwrap();
        assert_eq!(prepared[ENTERPRISE], json!({"manager": {"value": ID}}), "{body}");
        assert_eq!(prepared["schemas"], json!([USER_SCHEMA, ENTERPRISE]));
        assert!(changes.kinds().contains(&Normalisation::ManagerShape), "{body}");
    }
}
