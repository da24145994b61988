use super::*;
use crate::config::{no_env, Config};
use crate::http::Method;
use crate::scim::patch::prepare_patch;
use crate::scim::query::parse_query;
use crate::scim::resource::prepare_resource;
use serde_json::json;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const OMNI: &str = "urn:omni:params:1.0:UserAttribute";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ENTRA_CREATE_USER: &str = include_str!("../../tests/fixtures/entra/create-user.json");
const MULTI_REPLACE: &str = include_str!("../../tests/fixtures/entra/multi-replace-flag.json");

fn config(mapping: Value) -> Result<Config, crate::config::ConfigError> {
    let mut json = json!({
        "version": 1,
        "tokens": [{"name": "t", "sha256": crate::auth::sha256_hex(b"t")}],
        "upstream": {"cluster": "c", "authority": "a", "base_path": "", "bearer_token": "u"},
    });
    if !mapping.is_null() {
        json["mapping"] = mapping;
    }
    Config::from_json(json.to_string().as_bytes(), &no_env)
}

fn mapping(value: Value) -> Mapping {
    config(value).unwrap().mapping
}

fn config_error(value: Value) -> String {
    config(value).unwrap_err().to_string()
}

fn create(policy: &Policy, body: &Value) -> (Result<Value, ScimError>, Changes) {
    let mut changes = Changes::default();
    (prepare_resource(policy, Method::Post, None, body.to_string().as_bytes(), &mut changes), changes)
}

fn patch(policy: &Policy, operations: Value) -> (Result<Option<Value>, ScimError>, Changes) {
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations});
    let mut changes = Changes::default();
    (prepare_patch(policy, body.to_string().as_bytes(), &mut changes), changes)
}

fn forwarded_operations(result: Result<Option<Value>, ScimError>) -> Value {
    result.unwrap().expect("something is forwarded")["Operations"].clone()
}

#[test]
fn without_a_mapping_the_omni_profile_applies() {
    let default = mapping(Value::Null);
    assert_eq!(default.users.profile, Profile::Omni);
    assert_eq!(default, mapping(json!({"profile": "omni"})));
}

#[test]
fn entra_create_user_keeps_only_the_omni_attributes() {
    let omni = mapping(Value::Null);
    let (created, changes) = create(&omni.users, &serde_json::from_str(ENTRA_CREATE_USER).unwrap());
    assert_eq!(
        created.unwrap(),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Test_User_00aa00aa@testuser.com",
            "active": true,
            "displayName": "Test User"
        })
    );
    let mut stripped = changes.stripped().to_vec();
    stripped.sort();
    assert_eq!(stripped, ["emails", "externalId", "name", "roles"]);
}

#[test]
fn configured_omni_user_attributes_travel_and_others_are_stripped() {
    let omni = mapping(json!({"users": {"add": [format!("{OMNI}:department")]}}));
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com",
        "displayName": "Ada",
        format!("{OMNI}:department"): "R&D",
        format!("{OMNI}:shoe_size"): 42,
        format!("{ENTERPRISE}:employeeNumber"): "7",
    });
    let (created, changes) = create(&omni.users, &body);
    assert_eq!(
        created.unwrap(),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", OMNI],
            "userName": "ada@example.com",
            "displayName": "Ada",
            OMNI: {"department": "R&D"}
        })
    );
    assert!(changes.stripped().contains(&UNLISTED_CUSTOM.to_string()));
    assert!(changes.stripped().iter().any(|s| s.ends_with("employeeNumber")));
}

#[test]
fn omni_system_attributes_are_refused_in_every_shape() {
    let omni = mapping(Value::Null);
    let user = |extra: Value| {
        let mut body =
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.c", "displayName": "A"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let refusals = [
        create(&omni.users, &user(json!({format!("{OMNI}:omni_is_org_admin"): true}))).0.unwrap_err(),
        create(&omni.users, &user(json!({OMNI: {"omni_user_groups": ["admins"]}}))).0.unwrap_err(),
        patch(&omni.users, json!([{"op": "replace", "path": format!("{OMNI}:omni_is_org_admin"), "value": true}]))
            .0
            .unwrap_err(),
        patch(&omni.users, json!([{"op": "add", "value": {format!("{OMNI}:omni_user_email"): "x@y.z"}}]))
            .0
            .unwrap_err(),
        patch(&omni.users, json!([{"op": "add", "value": {OMNI: {"omni_user_timezone": "UTC"}}}])).0.unwrap_err(),
        patch(&omni.users, json!([{"op": "replace", "path": OMNI, "value": {"omni_user_name": "x"}}])).0.unwrap_err(),
    ];
    for error in refusals {
        assert_eq!((error.status, error.scim_type), (400, Some(ScimType::Mutability)), "{}", error.detail);
        assert!(error.detail.contains(&format!("'{OMNI}:omni_")), "{}", error.detail);
    }

    let stripping = mapping(json!({"omni_system_attributes": "strip"}));
    let (created, changes) = create(&stripping.users, &user(json!({format!("{OMNI}:omni_is_org_admin"): true})));
    assert_eq!(created.unwrap().get(OMNI), None);
    assert_eq!(changes.stripped(), [format!("{}_omni_is_org_admin", stripped_name(OMNI))]);
}

#[test]
fn privilege_bearing_attributes_need_an_explicit_opt_in_under_omni() {
    assert_eq!(
        config_error(json!({"users": {"add": ["roles"]}})),
        "mapping.users.add[0]: privilege-bearing: list it in mapping.allow_privileged as well to forward it"
    );
    let opted_in = mapping(json!({"users": {"add": ["roles"]}, "allow_privileged": ["roles"]}));
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.c", "displayName": "A", "roles": [{"value": "analyst"}]});
    assert_eq!(create(&opted_in.users, &body).0.unwrap()["roles"], json!([{"value": "analyst"}]));
    let (created, _) = create(&mapping(Value::Null).users, &body);
    assert_eq!(created.unwrap().get("roles"), None);
}

#[test]
fn configuration_errors_name_the_field() {
    for (value, expected) in [
        (json!({"profile": "strict"}), "mapping.profile: expected \"omni\" or \"rfc\""),
        (json!({"users": {"add": ["nickname2"]}}), "mapping.users.add[0]: unknown attribute for the omni profile"),
        (json!({"users": {"add": [format!("{OMNI}:omni_user_id")]}}), "mapping.users.add[0]: an Omni system attribute is read-only and cannot be mapped"),
        (json!({"profile": "rfc", "users": {"add": [format!("{OMNI}:department")]}}), "mapping.users.add[0]: unknown attribute for the rfc profile"),
        (json!({"users": {"add": ["meta"]}}), "mapping.users.add[0]: read-only: the upstream never receives it"),
        (json!({"users": {"remove": ["userName"]}}), "mapping.users.remove[0]: required by the schema: it cannot be unmapped"),
        (json!({"groups": {"remove": ["displayName"]}}), "mapping.groups.remove[0]: required by the schema: it cannot be unmapped"),
        (json!({"groups": {"remove": ["nope"]}}), "mapping.groups.remove[0]: unknown attribute"),
        (json!({"allow_privileged": ["displayName"]}), "mapping.allow_privileged[0]: not a privilege-bearing attribute; those are roles, entitlements, groups, x509Certificates"),
        (json!({"users": {"drop": []}}), "mapping.users.drop: unknown field; known fields: add, remove"),
        (json!({"omni_system_attributes": "ignore"}), "mapping.omni_system_attributes: expected \"reject\" or \"strip\""),
    ] {
        assert_eq!(config_error(value), expected);
    }
}

#[test]
fn a_profile_can_lose_attributes_and_sub_attributes() {
    let rfc = mapping(json!({"profile": "rfc", "users": {"remove": ["emails", "name.middleName"]}}));
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada",
        "emails": [{"value": "a@example.com"}],
        "name": {"givenName": "Ada", "middleName": "King"}
    });
    let (created, changes) = create(&rfc.users, &body);
    let created = created.unwrap();
    assert_eq!(created.get("emails"), None);
    assert_eq!(created["name"], json!({"givenName": "Ada"}));
    assert_eq!(changes.stripped(), ["emails", "name_middleName"]);
}

#[test]
fn entra_patch_touching_unmapped_attributes_reaches_the_upstream_as_the_display_name_change() {
    let omni = mapping(Value::Null);
    let mut changes = Changes::default();
    let result = prepare_patch(&omni.users, MULTI_REPLACE.as_bytes(), &mut changes);
    assert_eq!(forwarded_operations(result), json!([{"op": "replace", "value": {"displayName": "Bjfe"}}]));
    let mut stripped = changes.stripped().to_vec();
    stripped.sort();
    assert_eq!(stripped.len(), 4, "{stripped:?}");
}

#[test]
fn a_patch_with_nothing_mapped_left_is_answered_at_the_edge() {
    let omni = mapping(Value::Null);
    let (result, changes) = patch(
        &omni.users,
        json!([{"op": "replace", "path": "name.givenName", "value": "A"}, {"op": "add", "path": "roles", "value": [{"value": "r"}]}]),
    );
    assert_eq!(result.unwrap(), None);
    assert_eq!(changes.stripped(), ["name_givenName", "roles"]);
}

#[test]
fn omni_user_patches_always_carry_a_value() {
    let omni = mapping(json!({"users": {"add": [format!("{OMNI}:department")]}}));
    let (result, _) = patch(&omni.users, json!([{"op": "remove", "path": format!("{OMNI}:department")}]));
    assert_eq!(
        forwarded_operations(result),
        json!([{"op": "replace", "path": format!("{OMNI}:department"), "value": null}])
    );
    let (result, _) = patch(&omni.users, json!([{"op": "remove", "path": "displayName"}]));
    assert_eq!(result.unwrap_err().scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn omni_group_patches_take_the_shapes_of_the_contract() {
    let omni = mapping(Value::Null);
    let (result, _) = patch(
        &omni.groups,
        json!([
            {"op": "Add", "value": {"displayName": "G", "members": [{"value": "u1"}]}},
            {"op": "add", "path": "displayName", "value": "H"},
            {"op": "Remove", "path": "members", "value": [{"value": "u2"}]}
        ]),
    );
    assert_eq!(
        forwarded_operations(result),
        json!([
            {"op": "replace", "value": {"displayName": "G"}},
            {"op": "add", "path": "members", "value": [{"value": "u1"}]},
            {"op": "replace", "value": {"displayName": "H"}},
            {"op": "remove", "path": "members[value eq \"u2\"]"}
        ])
    );
    let (result, _) = patch(&omni.groups, json!([{"op": "remove", "path": "members"}]));
    assert!(result.unwrap_err().detail.contains("one at a time"));
}

#[test]
fn omni_user_creation_needs_an_email_user_name_and_a_display_name() {
    let omni = mapping(Value::Null);
    let (result, _) =
        create(&omni.users, &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.c"}));
    assert!(result.unwrap_err().detail.contains("'displayName'"));
    let (result, _) = create(
        &omni.users,
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada", "displayName": "A"}),
    );
    assert!(result.unwrap_err().detail.contains("email"));
}

#[test]
fn filters_on_attributes_the_upstream_never_receives_match_nothing() {
    let omni = mapping(Value::Null);
    let restrict = |raw: &str| {
        let mut query = parse_query(raw, Method::Get, true, omni.users.schema).unwrap();
        let mut changes = Changes::default();
        omni.users.restrict_query(&mut query, &mut changes).then(|| query.to_query_string())
    };
    let q = |filter: &str| format!("filter={}", filter.replace(' ', "%20").replace('"', "%22"));
    assert_eq!(restrict(&q(r#"externalId eq "x""#)), None);
    assert_eq!(restrict(&q(r#"id eq "1" and manager eq "2""#)), None);
    assert_eq!(restrict(&q(r#"userName eq "a" or emails.value eq "b""#)), Some(q(r#"userName eq "a""#)));
    assert_eq!(restrict(&q(r#"userName eq "a" and not (title pr)"#)), Some(q(r#"userName eq "a""#)));
    assert_eq!(restrict(&q(r#"not (externalId eq "x")"#)), Some(String::new()));
    assert_eq!(
        restrict("attributes=userName,emails&sortBy=name.familyName&count=5"),
        Some("count=5&attributes=userName".to_string())
    );
}

#[test]
fn responses_carry_only_mapped_attributes() {
    let omni = mapping(Value::Null);
    let stored = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "id": "7",
        "externalId": "e",
        "userName": "ada@example.com",
        "displayName": "Ada",
        "emails": [{"value": "a@example.com"}],
        ENTERPRISE: {"employeeNumber": "1"},
        "meta": {"resourceType": "User"}
    });
    let expected = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "7",
        "userName": "ada@example.com",
        "displayName": "Ada",
        "meta": {"resourceType": "User"}
    });
    let mut single = stored.clone();
    omni.users.strip_response(&mut single);
    assert_eq!(single, expected);
    let mut list = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 1, "Resources": [stored]});
    omni.users.strip_response(&mut list);
    assert_eq!(list["Resources"], json!([expected]));
    assert_eq!(list["totalResults"], 1);
}

#[test]
fn the_rfc_profile_strips_nothing() {
    let rfc = mapping(json!({"profile": "rfc"}));
    assert!(rfc.users.strips_nothing && rfc.groups.strips_nothing);
    let body: Value = serde_json::from_str(ENTRA_CREATE_USER).unwrap();
    let (created, changes) = create(&rfc.users, &body);
    assert!(created.unwrap().get("emails").is_some());
    assert!(changes.stripped().is_empty());
}

#[test]
fn entra_manager_never_reaches_the_upstream_under_omni_whatever_its_shape() {
    let omni = mapping(Value::Null);
    let manager = format!("{ENTERPRISE}:manager");
    let user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.c", "displayName": "A"});
    for (key, value) in [
        (manager.clone(), json!("m1")),
        (manager.clone(), json!([{"$ref": null, "value": "m1"}])),
        (ENTERPRISE.to_string(), json!({"manager": "m1"})),
        (format!("{manager}.value"), json!("m1")),
    ] {
        let mut body = user.clone();
        body[&key] = value;
        let (created, changes) = create(&omni.users, &body);
        assert_eq!(created.unwrap(), user, "{body}");
        assert_eq!(changes.stripped(), [stripped_name(&manager)], "{body}");
    }
    for operation in [
        json!({"op": "Add", "path": manager, "value": "m1"}),
        json!({"op": "Add", "path": manager, "value": [{"$ref": null, "value": "m1"}]}),
        json!({"op": "replace", "value": {manager.clone(): "m1"}}),
        json!({"op": "Remove", "path": manager}),
        json!({"op": "Remove", "path": manager, "value": [{"$ref": null, "value": "m1"}]}),
    ] {
        let (result, changes) = patch(&omni.users, json!([operation]));
        assert_eq!(result.unwrap(), None, "nothing is left to forward: {operation}");
        assert_eq!(changes.stripped(), [stripped_name(&manager)], "{operation}");
    }
    // Beside a mapped attribute, only that one travels.
    let (result, _) =
        patch(&omni.users, json!([{"op": "replace", "value": {manager.clone(): "m1", "displayName": "B"}}]));
    assert_eq!(forwarded_operations(result), json!([{"op": "replace", "value": {"displayName": "B"}}]));
}

#[test]
fn an_attribute_the_mapping_strips_cannot_fail_a_create_by_its_shape() {
    // Entra sends what its attribute mapping computes: an integer directory attribute mapped onto
    // employeeNumber arrives as a number, a single phone number as a string. The upstream never
    // sees them under omni, so their shape does not matter there; under rfc it does.
    let omni = mapping(Value::Null);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "a@b.c",
        "displayName": "A",
        "phoneNumbers": "+1 555 0100",
        "name": "Ada",
        format!("{ENTERPRISE}:employeeNumber"): 42,
        ENTERPRISE: {"costCenter": ["CC1"]},
    });
    let (created, changes) = create(&omni.users, &body);
    assert_eq!(
        created.unwrap(),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.c", "displayName": "A"})
    );
    let mut stripped = changes.stripped().to_vec();
    stripped.sort();
    let expected = [
        "name".to_string(),
        "phoneNumbers".to_string(),
        stripped_name(&format!("{ENTERPRISE}:costCenter")),
        stripped_name(&format!("{ENTERPRISE}:employeeNumber")),
    ];
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(stripped, expected);

    let rfc = mapping(json!({"profile": "rfc"}));
    let error = create(&rfc.users, &body).0.unwrap_err();
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{}", error.detail);
}

#[test]
fn a_patch_of_a_whole_complex_value_loses_the_sub_attributes_the_mapping_removes() {
    let rfc = mapping(json!({"profile": "rfc", "users": {"remove": ["name.middleName", "emails.display"]}}));
    let (result, changes) = patch(
        &rfc.users,
        json!([
            {"op": "replace", "path": "name", "value": {"givenName": "A", "middleName": "K"}},
            {"op": "add", "path": "emails[type eq \"work\"]", "value": {"value": "a@b.c", "display": "A"}},
            {"op": "add", "path": "emails", "value": [{"value": "d@e.f", "display": "D"}]},
            {"op": "replace", "path": "name", "value": {"middleName": "K"}},
        ]),
    );
    assert_eq!(
        forwarded_operations(result),
        json!([
            {"op": "replace", "path": "name", "value": {"givenName": "A"}},
            {"op": "add", "path": "emails[type eq \"work\"]", "value": {"value": "a@b.c"}},
            {"op": "add", "path": "emails", "value": [{"value": "d@e.f"}]},
        ])
    );
    assert_eq!(changes.stripped(), ["name_middleName", "emails_display"]);
}
