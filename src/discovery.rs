//! The discovery endpoints of RFC 7644 §4, answered by the edge itself: `/ServiceProviderConfig`
//! (RFC 7643 §5), `/ResourceTypes` (§6) and `/Schemas` (§7).
//!
//! They describe the edge, not the upstream behind it: the schemas list only the attributes the
//! mapping lets through (a client sees nothing it could not send or read), and the service provider
//! configuration announces only what the edge can vouch for. Everything here is pure: the
//! configuration and the edge's public base URL in, JSON documents out.
//!
//! Authentication: RFC 7644 §4 defines these endpoints without requiring them to be open, and
//! RFC 7643 §5 only recommends, for one attribute: "To enable seamless discovery of
//! configurations, the service provider SHOULD, with the appropriate security considerations, make
//! the authenticationSchemes attribute publicly accessible without prior authentication." The edge
//! keeps them behind the same bearer-token check as every other SCIM endpoint (fail closed): the
//! schemas tell which attributes reach Omni, which is nobody's business but the tenant's.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::mapping::{Mapping, Policy};
use crate::route::{Discovery, ResourceType};
use crate::scim::query::MAX_RESULTS;
use crate::scim::schema::{
    AttrRef, AttrType, Attribute, Mutability, Schema, ENTERPRISE_USER_URN, GROUP_URN, OMNI_USER_ATTRIBUTE_URN, USER_URN,
};
use crate::scim::value::{object, parse_json};
use crate::scim_error::ScimError;
use crate::text::comma_join;
use crate::upstream::PublicBase;

pub const SERVICE_PROVIDER_CONFIG_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The answer to a discovery GET: the document, or a 404 for an unknown schema or resource type.
/// `id` is the path segment after `/Schemas` or `/ResourceTypes`, as the client sent it.
pub fn answer(config: &Config, public: &PublicBase, endpoint: Discovery, id: Option<&str>) -> Result<Value, ScimError> {
    match (endpoint, id) {
        (Discovery::ServiceProviderConfig, _) => Ok(service_provider_config(config, public)),
        (Discovery::Schemas, None) => Ok(schemas(&config.mapping, public)),
        (Discovery::Schemas, Some(id)) => schema(&config.mapping, public, id),
        (Discovery::ResourceTypes, None) => Ok(resource_types(&config.mapping, public)),
        (Discovery::ResourceTypes, Some(id)) => resource_type(&config.mapping, public, id),
    }
}

/// RFC 7643 §5, for this edge:
/// - `patch`: supported; `bulk`: not served (`/Bulk` is a 501), `maxPayloadSize` is the largest
///   body the edge accepts; `changePassword`: not offered.
/// - `filter`: supported, at most [`MAX_RESULTS`] resources per page (a larger `count` is reduced).
/// - `sort`: false under both profiles. Under `omni` the edge drops `sortBy` (Omni's API cannot
///   sort); under `rfc` it forwards `sortBy`, but whether the upstream sorts is not the edge's to
///   promise.
/// - `etag`: false. The edge forwards `If-Match`/`If-None-Match` and relays `ETag`, but it keeps no
///   versions itself and cannot vouch that the upstream does (Omni's API documents none).
pub fn service_provider_config(config: &Config, public: &PublicBase) -> Value {
    // Static text parsed on demand: far less code than building the same document member by member.
    let text = format!(
        r#"{{"schemas":["{SERVICE_PROVIDER_CONFIG_URN}"],"patch":{{"supported":true}},"bulk":{{"supported":false,"maxOperations":0,"maxPayloadSize":{}}},"filter":{{"supported":true,"maxResults":{MAX_RESULTS}}},"changePassword":{{"supported":false}},"sort":{{"supported":false}},"etag":{{"supported":false}},"authenticationSchemes":[{{"type":"oauthbearertoken","name":"OAuth Bearer Token","description":"Authentication with a bearer token in the Authorization header","specUri":"https://www.rfc-editor.org/info/rfc6750","primary":true}}]}}"#,
        config.max_body_bytes
    );
    let mut document = match parse_json(text.as_bytes(), false) {
        Ok(Value::Object(document)) => document,
        _ => Map::new(),
    };
    document.insert("meta".into(), meta("ServiceProviderConfig", public, "ServiceProviderConfig".to_string()));
    Value::Object(document)
}

/// `/Schemas`: every published schema, as a ListResponse (RFC 7644 §4).
pub fn schemas(mapping: &Mapping, public: &PublicBase) -> Value {
    let mut documents = Vec::new();
    for (policy, schema) in published(mapping) {
        documents.push(schema_document(policy, schema, public));
    }
    list(documents)
}

/// `/Schemas/{id}`: one published schema by URN (percent-decoded, compared case-insensitively).
pub fn schema(mapping: &Mapping, public: &PublicBase, id: &str) -> Result<Value, ScimError> {
    // Schema ids are ASCII: comparing the decoded bytes is comparing the decoded text.
    let id = Cow::<[u8]>::from(percent_decode_str(id));
    let published = published(mapping);
    match published.iter().find(|(_, schema)| schema.id.as_bytes().eq_ignore_ascii_case(&id)) {
        Some((policy, schema)) => Ok(schema_document(policy, schema, public)),
        None => {
            let ids = comma_join(&mut published.iter().map(|(_, schema)| schema.id));
            Err(ScimError::new(404, format!("No such schema; this gateway publishes {ids}")))
        }
    }
}

/// `/ResourceTypes`: User and Group, as a ListResponse (RFC 7644 §4).
pub fn resource_types(mapping: &Mapping, public: &PublicBase) -> Value {
    list(vec![resource_type_document(&mapping.users, public), resource_type_document(&mapping.groups, public)])
}

/// `/ResourceTypes/{id}`: `User` or `Group`.
pub fn resource_type(mapping: &Mapping, public: &PublicBase, id: &str) -> Result<Value, ScimError> {
    let policy = match id {
        "User" => &mapping.users,
        "Group" => &mapping.groups,
        _ => return Err(ScimError::new(404, "No such resource type; this gateway serves User and Group")),
    };
    Ok(resource_type_document(policy, public))
}

/// The schemas the edge publishes, with the policy that governs each: per resource type the core
/// schema, then the extensions with at least one attribute that passes.
fn published(mapping: &Mapping) -> Vec<(&Policy, &'static Schema)> {
    let mut schemas = Vec::new();
    for policy in [&mapping.users, &mapping.groups] {
        schemas.push((policy, policy.schema.core));
        for schema in extensions(policy) {
            schemas.push((policy, schema));
        }
    }
    schemas
}

fn extensions(policy: &Policy) -> Vec<&'static Schema> {
    let mut exposed = Vec::new();
    for &schema in policy.schema.extensions {
        let attr = |attribute| AttrRef { schema: Some(schema), attribute, sub_attribute: None };
        if schema.attributes.iter().any(|attribute| policy.exposes(&attr(attribute))) {
            exposed.push(schema);
        }
    }
    exposed
}

fn resource_type_document(policy: &Policy, public: &PublicBase) -> Value {
    let (name, description) = match policy.resource_type() {
        ResourceType::User => ("User", "User Account"),
        ResourceType::Group => ("Group", "Group"),
    };
    let mut document = vec![
        ("schemas", strings(&[RESOURCE_TYPE_URN])),
        ("id", name.into()),
        ("name", name.into()),
        ("description", description.into()),
        ("endpoint", format!("/{}", policy.resource_type().endpoint()).into()),
        ("schema", policy.schema.core.id.into()),
    ];
    let mut extensions = Vec::new();
    for schema in self::extensions(policy) {
        extensions.push(object(&mut [("schema", schema.id.into()), ("required", false.into())]));
    }
    if !extensions.is_empty() {
        document.push(("schemaExtensions", Value::Array(extensions)));
    }
    document.push(("meta", meta("ResourceType", public, format!("ResourceTypes/{name}"))));
    object(&mut document)
}

fn schema_document(policy: &Policy, schema: &'static Schema, public: &PublicBase) -> Value {
    let mut attributes = Vec::new();
    for attribute in schema.attributes {
        if policy.exposes(&AttrRef { schema: Some(schema), attribute, sub_attribute: None }) {
            attributes.push(attribute_document(policy, schema, attribute));
        }
    }
    object(&mut [
        ("schemas", strings(&[SCHEMA_URN])),
        ("id", schema.id.into()),
        ("name", schema_name(schema.id).into()),
        ("description", schema_description(policy, schema).into()),
        ("attributes", Value::Array(attributes)),
        ("meta", meta("Schema", public, format!("Schemas/{}", schema.id))),
    ])
}

fn schema_name(id: &str) -> &'static str {
    match id {
        USER_URN => "User",
        GROUP_URN => "Group",
        ENTERPRISE_USER_URN => "EnterpriseUser",
        OMNI_USER_ATTRIBUTE_URN => "OmniUserAttribute",
        _ => "Extension",
    }
}

/// What the schema is and how the edge narrows it. Common attributes (RFC 7643 §3.1) are not
/// listed in a schema's attributes, by that section's convention; the core schemas say here which
/// of them pass.
fn schema_description(policy: &Policy, schema: &Schema) -> String {
    let scope = format!("as this gateway passes it to and from the upstream ({} mapping)", policy.profile.as_str());
    let common = || {
        let external_id = policy.schema.core_attribute("externalId").is_some_and(|attr| policy.exposes(&attr));
        format!(
            "Common attributes (RFC 7643 §3.1) are not listed: id and meta are always returned, externalId {}.",
            if external_id { "passes" } else { "is not forwarded" }
        )
    };
    match schema.id {
        USER_URN => format!("User Account (RFC 7643 §4.1), {scope}. {}", common()),
        GROUP_URN => format!("Group (RFC 7643 §4.2), {scope}. {}", common()),
        ENTERPRISE_USER_URN => format!("Enterprise User extension (RFC 7643 §4.3), {scope}."),
        OMNI_USER_ATTRIBUTE_URN => format!(
            "Omni user attributes, {scope}: the ones the configuration maps. Omni stores any JSON value in \
             them (string, number, boolean, list or object) and the gateway forwards values unchanged; RFC 7643 \
             §2.3 has no type for that, so they are declared as string, the form Entra sends. Omni's system \
             attributes are read-only and never accepted."
        ),
        _ => format!("Extension schema, {scope}."),
    }
}

fn attribute_document(policy: &Policy, schema: &'static Schema, attribute: &'static Attribute) -> Value {
    let mut document = characteristics(schema, attribute, None);
    if attribute.is_complex() {
        let mut subs = Vec::new();
        for sub in attribute.sub_attributes {
            if policy.exposes(&AttrRef { schema: Some(schema), attribute, sub_attribute: Some(sub) }) {
                subs.push(Value::Object(characteristics(schema, attribute, Some(sub))));
            }
        }
        document.insert("subAttributes".into(), Value::Array(subs));
    }
    Value::Object(document)
}

/// RFC 7643 §7's attribute characteristics, from the schema table and RFC 7643 §4 and §8.7.
fn characteristics(schema: &Schema, attribute: &Attribute, sub: Option<&Attribute>) -> Map<String, Value> {
    let target = sub.unwrap_or(attribute);
    let path = (attribute.name, sub.map(|s| s.name));
    let mut document = Map::new();
    document.insert("name".into(), target.name.into());
    document.insert("type".into(), type_name(target.ty).into());
    document.insert("multiValued".into(), target.multi_valued.into());
    document.insert("description".into(), describe(schema, attribute, sub).into());
    document.insert("required".into(), target.required.into());
    document.insert("caseExact".into(), matches!(target.ty, AttrType::Reference | AttrType::Binary).into());
    document.insert("mutability".into(), mutability_name(target.mutability).into());
    let returned = if target.mutability == Mutability::WriteOnly { "never" } else { "default" };
    document.insert("returned".into(), returned.into());
    let uniqueness = if schema.id == USER_URN && path == ("userName", None) { "server" } else { "none" };
    document.insert("uniqueness".into(), uniqueness.into());
    if target.ty == AttrType::Reference {
        let types: &[&str] = match path {
            ("groups" | "members", Some("$ref")) => &["User", "Group"],
            ("manager", Some("$ref")) => &["User"],
            _ => &["external"],
        };
        document.insert("referenceTypes".into(), strings(types));
    }
    if path == ("members", Some("type")) {
        document.insert("canonicalValues".into(), strings(&["User", "Group"]));
    }
    document
}

fn type_name(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "string",
        AttrType::Boolean => "boolean",
        AttrType::Decimal => "decimal",
        AttrType::Integer => "integer",
        AttrType::DateTime => "dateTime",
        AttrType::Binary => "binary",
        AttrType::Reference => "reference",
        AttrType::Complex => "complex",
        // Omni's user attributes take any JSON value; RFC 7643 §2.3 has no such type (see
        // `schema_description`).
        AttrType::Any => "string",
    }
}

fn mutability_name(mutability: Mutability) -> &'static str {
    match mutability {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    }
}

/// Short descriptions after RFC 7643 §4.
fn describe(schema: &Schema, attribute: &Attribute, sub: Option<&Attribute>) -> String {
    if schema.id == OMNI_USER_ATTRIBUTE_URN {
        return format!(
            "Omni user attribute '{}': any JSON value, forwarded unchanged (declared as string).",
            attribute.name
        );
    }
    let key = (attribute.name, sub.map(|s| s.name));
    if schema.id == GROUP_URN && key == ("displayName", None) {
        return "A human-readable name for the Group. REQUIRED.".to_string();
    }
    DESCRIPTIONS
        .iter()
        .find(|(name, sub, _)| (*name == "*" || *name == key.0) && *sub == key.1)
        .map_or("", |(_, _, text)| text)
        .to_string()
}

/// `(attribute, sub-attribute, description)`, first match wins; `*` stands for any attribute.
/// A table rather than a `match`: the same lookup in a fraction of the code.
#[rustfmt::skip]
const DESCRIPTIONS: &[(&str, Option<&str>, &str)] = &[
    ("userName", None, "Unique identifier for the User, used to authenticate; unique across the service provider. REQUIRED."),
    ("name", None, "The components of the User's real name."),
    ("name", Some("formatted"), "The full name, formatted for display."),
    ("name", Some("familyName"), "The family name."),
    ("name", Some("givenName"), "The given name."),
    ("name", Some("middleName"), "The middle name(s)."),
    ("name", Some("honorificPrefix"), "The honorific prefix(es), or title."),
    ("name", Some("honorificSuffix"), "The honorific suffix(es)."),
    ("displayName", None, "The name of the User, suitable for display to end-users."),
    ("nickName", None, "The casual way to address the User."),
    ("profileUrl", None, "A URI of the User's online profile."),
    ("title", None, "The User's title, such as 'Vice President'."),
    ("userType", None, "The relationship between the organization and the User, such as 'Employee'."),
    ("preferredLanguage", None, "The User's preferred written or spoken language."),
    ("locale", None, "The User's default location for localization, such as 'en-US'."),
    ("timezone", None, "The User's time zone, in IANA Time Zone database format."),
    ("active", None, "The User's administrative status."),
    ("password", None, "The User's cleartext password: written, never returned."),
    ("emails", None, "Email addresses of the User."),
    ("phoneNumbers", None, "Phone numbers of the User."),
    ("ims", None, "Instant messaging addresses of the User."),
    ("photos", None, "URLs of photos of the User."),
    ("addresses", None, "Physical mailing addresses of the User."),
    ("addresses", Some("formatted"), "The full mailing address, formatted for display."),
    ("addresses", Some("streetAddress"), "The full street address."),
    ("addresses", Some("locality"), "The city or locality."),
    ("addresses", Some("region"), "The state or region."),
    ("addresses", Some("postalCode"), "The zip code or postal code."),
    ("addresses", Some("country"), "The country, as an ISO 3166-1 alpha-2 code."),
    ("groups", None, "The Groups the User belongs to. Read-only: membership is changed on the Group."),
    ("entitlements", None, "Entitlements of the User."),
    ("roles", None, "Roles of the User."),
    ("x509Certificates", None, "X.509 certificates issued to the User."),
    ("employeeNumber", None, "Identifier assigned to the User by the organization, such as an employee number."),
    ("costCenter", None, "The name of a cost center."),
    ("organization", None, "The name of an organization."),
    ("division", None, "The name of a division."),
    ("department", None, "The name of a department."),
    ("manager", None, "The User's manager."),
    ("manager", Some("value"), "The id of the SCIM resource representing the User's manager."),
    ("manager", Some("$ref"), "The URI of the SCIM resource representing the User's manager."),
    ("manager", Some("displayName"), "The displayName of the User's manager."),
    ("members", None, "The members of the Group."),
    ("members", Some("value"), "The id of a member of the Group."),
    ("members", Some("$ref"), "The URI of the SCIM resource that is a member of the Group."),
    ("members", Some("type"), "The type of the member: 'User' or 'Group'."),
    ("members", Some("display"), "A human-readable name of the member."),
    ("*", Some("value"), "The value."),
    ("*", Some("display"), "A human-readable name, primarily for display."),
    ("*", Some("type"), "A label for the value's function, such as 'work' or 'home'."),
    ("*", Some("primary"), "Whether this is the primary value; at most one value is primary."),
    ("*", Some("$ref"), "The URI of the corresponding SCIM resource."),
];

fn meta(resource_type: &str, public: &PublicBase, path: String) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceType".into(), resource_type.into());
    // Without a usable public base (an odd :authority) there is no location to give.
    if let Some(base) = &public.0 {
        meta.insert("location".into(), format!("{base}/{path}").into());
    }
    Value::Object(meta)
}

/// RFC 7644 §3.4.2 ListResponse holding every resource at once.
fn list(resources: Vec<Value>) -> Value {
    object(&mut [
        ("schemas", strings(&[LIST_RESPONSE_URN])),
        ("totalResults", resources.len().into()),
        ("itemsPerPage", resources.len().into()),
        ("startIndex", 1.into()),
        ("Resources", Value::Array(resources)),
    ])
}

fn strings(items: &[&str]) -> Value {
    let mut values = Vec::with_capacity(items.len());
    for &item in items {
        values.push(item.into());
    }
    Value::Array(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sha256_hex;
    use serde_json::json;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const BASE: &str = "https://edge.example/api/scim/v2";

    fn config(mapping: Value) -> Config {
        let json = json!({
            "version": 1,
            "max_body_bytes": 65536,
            "tokens": [{"name": "entra", "sha256": sha256_hex(b"t")}],
            "upstream": {"cluster": "omni", "authority": "acme.omniapp.co", "base_path": "/api/scim/v2", "bearer_token": "k"},
            "mapping": mapping,
        });
        Config::from_json(json.to_string().as_bytes(), &crate::config::no_env).unwrap()
    }

    fn public() -> PublicBase {
        PublicBase::new(Some("https"), Some("edge.example"), "/api/scim/v2")
    }

    fn get(config: &Config, endpoint: Discovery, id: Option<&str>) -> Value {
        answer(config, &public(), endpoint, id).unwrap()
    }

    /// Attribute names of a schema document, sub-attributes as `attr.sub`.
    fn names(schema: &Value) -> Vec<String> {
        let mut names = Vec::new();
        for attribute in schema["attributes"].as_array().unwrap() {
            let name = attribute["name"].as_str().unwrap();
            names.push(name.to_string());
            for sub in attribute["subAttributes"].as_array().into_iter().flatten() {
                names.push(format!("{name}.{}", sub["name"].as_str().unwrap()));
            }
        }
        names
    }

    fn ids(list: &Value) -> Vec<String> {
        list["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn the_omni_user_schema_lists_only_what_the_mapping_passes() {
        let omni = config(json!({"profile": "omni"}));
        let user = get(&omni, Discovery::Schemas, Some(USER_URN));
        assert_eq!(names(&user), ["userName", "displayName", "active"]);
        assert_eq!(user["meta"], json!({"resourceType": "Schema", "location": format!("{BASE}/Schemas/{USER_URN}")}));
        assert!(user["description"].as_str().unwrap().contains("externalId is not forwarded"));
        let group = get(&omni, Discovery::Schemas, Some(GROUP_URN));
        assert_eq!(
            names(&group),
            ["displayName", "members", "members.value", "members.$ref", "members.type", "members.display"]
        );
        // No extension has a mapped attribute: only the two core schemas.
        assert_eq!(ids(&get(&omni, Discovery::Schemas, None)), [USER_URN, GROUP_URN]);
        let text = get(&omni, Discovery::Schemas, None).to_string();
        for privileged in ["roles", "entitlements", "groups", "x509Certificates", "password", "omni_", "enterprise"] {
            assert!(
                !text.contains(&format!("\"{privileged}")) && !text.contains(&format!(":{privileged}")),
                "{privileged}"
            );
        }
    }

    #[test]
    fn mapped_omni_attributes_publish_their_extension() {
        let omni = config(json!({
            "profile": "omni",
            "users": {"add": ["title", "urn:omni:params:1.0:UserAttribute:department"]},
        }));
        let user = get(&omni, Discovery::Schemas, Some(USER_URN));
        assert_eq!(names(&user), ["userName", "displayName", "title", "active"]);
        let extension = get(&omni, Discovery::Schemas, Some(OMNI_USER_ATTRIBUTE_URN));
        assert_eq!(names(&extension), ["department"]);
        assert_eq!(extension["attributes"][0]["type"], "string");
        assert_eq!(extension["attributes"][0]["required"], false);
        let listed = get(&omni, Discovery::Schemas, None);
        assert_eq!(ids(&listed), [USER_URN, OMNI_USER_ATTRIBUTE_URN, GROUP_URN]);
        assert!(!listed.to_string().contains("omni_is_org_admin"));
        let resource_type = get(&omni, Discovery::ResourceTypes, Some("User"));
        assert_eq!(resource_type["schemaExtensions"], json!([{"schema": OMNI_USER_ATTRIBUTE_URN, "required": false}]));
    }

    #[test]
    fn the_rfc_schemas_list_everything() {
        let rfc = config(json!({"profile": "rfc"}));
        let listed = get(&rfc, Discovery::Schemas, None);
        assert_eq!(ids(&listed), [USER_URN, ENTERPRISE_USER_URN, GROUP_URN]);
        assert_eq!(listed["totalResults"], 3);
        assert_eq!(listed["schemas"], json!([LIST_RESPONSE_URN]));
        let user = get(&rfc, Discovery::Schemas, Some(USER_URN));
        let top: Vec<&str> =
            user["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        let all: Vec<&str> = crate::scim::schema::USER.attributes.iter().map(|a| a.name).collect();
        assert_eq!(top, all);
        assert!(names(&user).contains(&"name.givenName".to_string()));
        assert!(user["description"].as_str().unwrap().contains("externalId passes"));
        let enterprise = get(&rfc, Discovery::Schemas, Some(ENTERPRISE_USER_URN));
        assert_eq!(names(&enterprise).len(), 9);
        let group = get(&rfc, Discovery::Schemas, Some(GROUP_URN));
        assert_eq!(names(&group).len(), 6);

        let attribute =
            |name: &str| user["attributes"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap().clone();
        assert_eq!(
            attribute("userName"),
            json!({
                "name": "userName", "type": "string", "multiValued": false, "required": true, "caseExact": false,
                "mutability": "readWrite", "returned": "default", "uniqueness": "server",
                "description": "Unique identifier for the User, used to authenticate; unique across the service provider. REQUIRED.",
            })
        );
        assert_eq!(
            (attribute("password")["returned"].clone(), attribute("password")["mutability"].clone()),
            (json!("never"), json!("writeOnly"))
        );
        assert_eq!(attribute("groups")["mutability"], "readOnly");
        assert_eq!(attribute("emails")["multiValued"], true);
        assert_eq!(attribute("profileUrl")["referenceTypes"], json!(["external"]));
    }

    #[test]
    fn removals_under_rfc_are_not_published() {
        let rfc = config(json!({"profile": "rfc", "users": {"remove": ["name.middleName", "nickName"]}}));
        let user = get(&rfc, Discovery::Schemas, Some(USER_URN));
        let names = names(&user);
        assert!(names.contains(&"name.givenName".to_string()));
        assert!(!names.contains(&"name.middleName".to_string()) && !names.contains(&"nickName".to_string()));
        // With removals the edge strips responses: read-only `groups` is not passed either.
        assert!(!names.contains(&"groups".to_string()));
    }

    #[test]
    fn the_service_provider_config_tells_what_the_edge_does() {
        for profile in ["omni", "rfc"] {
            let config = config(json!({"profile": profile}));
            let spc = get(&config, Discovery::ServiceProviderConfig, None);
            assert_eq!(spc["schemas"], json!([SERVICE_PROVIDER_CONFIG_URN]));
            assert_eq!(spc["patch"], json!({"supported": true}));
            assert_eq!(spc["bulk"], json!({"supported": false, "maxOperations": 0, "maxPayloadSize": 65536}));
            assert_eq!(spc["filter"], json!({"supported": true, "maxResults": MAX_RESULTS}));
            assert_eq!(spc["changePassword"], json!({"supported": false}));
            assert_eq!(spc["sort"], json!({"supported": false}), "{profile}");
            assert_eq!(spc["etag"], json!({"supported": false}), "{profile}");
            let [scheme] = spc["authenticationSchemes"].as_array().unwrap().as_slice() else { panic!("one scheme") };
            assert_eq!(scheme["type"], "oauthbearertoken");
            assert_eq!(scheme["name"], "OAuth Bearer Token");
            assert_eq!(scheme["specUri"], "https://www.rfc-editor.org/info/rfc6750");
            assert_eq!(
                spc["meta"],
                json!({"resourceType": "ServiceProviderConfig", "location": format!("{BASE}/ServiceProviderConfig")})
            );
        }
    }

    #[test]
    fn resource_types_list_user_and_group() {
        let rfc = config(json!({"profile": "rfc"}));
        let listed = get(&rfc, Discovery::ResourceTypes, None);
        assert_eq!(ids(&listed), ["User", "Group"]);
        assert_eq!(
            get(&rfc, Discovery::ResourceTypes, Some("User")),
            json!({
                "schemas": [RESOURCE_TYPE_URN], "id": "User", "name": "User", "description": "User Account",
                "endpoint": "/Users", "schema": USER_URN,
                "schemaExtensions": [{"schema": ENTERPRISE_USER_URN, "required": false}],
                "meta": {"resourceType": "ResourceType", "location": format!("{BASE}/ResourceTypes/User")},
            })
        );
        let group = get(&rfc, Discovery::ResourceTypes, Some("Group"));
        assert_eq!((group["endpoint"].clone(), group.get("schemaExtensions")), (json!("/Groups"), None));
        let omni = config(json!({"profile": "omni"}));
        assert_eq!(get(&omni, Discovery::ResourceTypes, Some("User")).get("schemaExtensions"), None);
    }

    #[test]
    fn unknown_ids_are_404() {
        let omni = config(json!({"profile": "omni"}));
        for (endpoint, id) in [
            (Discovery::Schemas, "urn:nope"),
            (Discovery::Schemas, ENTERPRISE_USER_URN),
            (Discovery::Schemas, "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"),
            (Discovery::ResourceTypes, "Users"),
            (Discovery::ResourceTypes, "Agent"),
        ] {
            let error = answer(&omni, &public(), endpoint, Some(id)).unwrap_err();
            assert_eq!(error.status, 404, "{id}");
            assert!(!error.detail.contains("nope") && !error.detail.contains("Agent"), "never echoes the id");
        }
        // Percent-encoded and differently cased URNs name the same schema.
        let id = "URN%3Aietf%3Aparams%3Ascim%3Aschemas%3Acore%3A2.0%3AUser";
        assert_eq!(get(&omni, Discovery::Schemas, Some(id))["id"], USER_URN);
    }

    #[test]
    fn without_a_public_base_there_is_no_location() {
        let omni = config(json!({"profile": "omni"}));
        let spc = answer(&omni, &PublicBase(None), Discovery::ServiceProviderConfig, None).unwrap();
        assert_eq!(spc["meta"], json!({"resourceType": "ServiceProviderConfig"}));
    }
}
