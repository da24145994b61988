//! Omni's SCIM contract (its OpenAPI document and its guide to Entra provisioning), in one place.
//! Under the `omni` profile the edge holds requests to these rules; under `rfc` it holds them
//! to RFC 7643/7644 alone ([`Contract::Rfc`]).
//!
//! - Users keep `userName`, `active`, `displayName` and the Omni user attributes
//!   (`urn:omni:params:1.0:UserAttribute:<name>`, a name of 1 to 128 of A-Z a-z 0-9 _ -) the
//!   configuration lists; groups keep `displayName` and `members` and take no additions;
//!   privilege-bearing attributes pass only by explicit opt-in (`mapping.allow_privileged`).
//! - Omni's system attributes in `urn:omni:params:1.0:UserAttribute` are read-only: a request
//!   setting one is refused (`mutability`), or stripped if the configuration says so.
//! - A user is created with a `displayName` and an email address as `userName`; `schemas` lists
//!   only the schemas in use; a group replaced with PUT lists its `members`, each with `display`
//!   and `value`.
//! - PATCH: every user operation carries a `value` (removing an Omni user attribute becomes
//!   `replace` with `null`; other removals are refused); group operations take four shapes:
//!   `replace` of `displayName`, `add`/`replace` of `members`, and `remove` of one member by
//!   `members[value eq "<id>"]`.
//! - Queries: `filter`, `startIndex`, `count`, and on groups `excludedAttributes=members`; the
//!   edge applies other attribute selection to the response itself and drops sorting.
//! - Omni has no `.search`: `/Users/.search` and `/Groups/.search` are forwarded as the equivalent
//!   GET (RFC 7644 §3.4.3); the root `/.search` is answered 501.
//! - Omni's published API limit is the default rate limit ([`OMNI_RATE_LIMIT`]).

use serde_json::{Map, Value};

use crate::http::Method;
use crate::ratelimit::{Pacing, RateLimit};
use crate::route::ResourceType;
use crate::scim::query::{retain_strings, Projection, Query};
use crate::scim::schema::{AttrRef, ResourceSchema, Schema, OMNI_SYSTEM_ATTRIBUTES, OMNI_USER_ATTRIBUTE_URN};
use crate::scim::value::{invalid_value, object, shown};
use crate::scim_error::ScimError;

/// Omni's published API limit: 60 requests per minute per API key. What a configuration under
/// the `omni` profile without `rate_limit` gets.
pub const OMNI_RATE_LIMIT: RateLimit = RateLimit { requests_per_minute: 60, burst: 60, pacing: Pacing::DEFAULT };

/// The upstream's contract beyond RFC 7644: Omni's, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    Omni,
    Rfc,
}

/// Omni's system attributes in `urn:omni:params:1.0:UserAttribute`: read-only in Omni.
pub fn is_system_attribute(attr: &AttrRef) -> bool {
    attr.schema.is_some_and(|s| s.id == OMNI_USER_ATTRIBUTE_URN)
        && OMNI_SYSTEM_ATTRIBUTES.contains(&attr.attribute.name)
}

impl Contract {
    /// The attributes the contract keeps before the configuration's additions and removals;
    /// `None` when it keeps what RFC 7643 lets a client write.
    pub fn attributes(self, resource_type: ResourceType) -> Option<&'static [&'static str]> {
        match (self, resource_type) {
            (Contract::Omni, ResourceType::User) => Some(&["userName", "active", "displayName"]),
            (Contract::Omni, ResourceType::Group) => Some(&["displayName", "members"]),
            (Contract::Rfc, _) => None,
        }
    }

    /// The schemas a resource type is validated against: Omni's users carry the Omni user
    /// attributes `add` lists (`urn:omni:params:1.0:UserAttribute:<name>`, a name of 1 to 128 of
    /// A-Z a-z 0-9 _ -). An invalid name is refused with the index of its entry in `add`.
    pub fn schema(
        self,
        resource_type: ResourceType,
        add: &[String],
    ) -> Result<&'static ResourceSchema, (usize, &'static str)> {
        if self != Contract::Omni || resource_type != ResourceType::User {
            return Ok(ResourceSchema::for_type(resource_type));
        }
        let omni_prefix = format!("{OMNI_USER_ATTRIBUTE_URN}:");
        let mut custom = Vec::new();
        for (index, name) in add.iter().enumerate() {
            if let Some(custom_name) = name.strip_prefix(&omni_prefix) {
                if custom_name.is_empty()
                    || custom_name.len() > 128
                    || !custom_name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
                {
                    return Err((index, "an Omni user attribute name is 1 to 128 of A-Z a-z 0-9 _ -"));
                }
                custom.push(custom_name.to_string());
            }
        }
        Ok(ResourceSchema::omni_users(&custom))
    }

    /// Why the configuration may not add attributes to a resource type, if it may not.
    pub fn refuses_additions(self, resource_type: ResourceType) -> Option<&'static str> {
        (self == Contract::Omni && resource_type == ResourceType::Group)
            .then_some("Omni's SCIM API takes only displayName and members on groups")
    }

    /// Whether privilege-bearing attributes need an explicit opt-in (`mapping.allow_privileged`).
    pub fn guards_privileges(self) -> bool {
        self == Contract::Omni
    }

    /// The rate limit a configuration without `rate_limit` gets.
    pub fn default_rate_limit(self) -> Option<RateLimit> {
        (self == Contract::Omni).then_some(OMNI_RATE_LIMIT)
    }

    /// The contract for a POST or PUT body in canonical form.
    pub fn resource(
        self,
        schema: &ResourceSchema,
        method: Method,
        core: &mut Map<String, Value>,
        declared: &mut Vec<&'static str>,
        extensions: &[(&'static Schema, Map<String, Value>)],
    ) -> Result<(), ScimError> {
        match self {
            Contract::Omni => resource_contract(schema, method, core, declared, extensions),
            Contract::Rfc => Ok(()),
        }
    }

    /// The contract for the operations of a PATCH.
    pub fn patch(self, resource_type: ResourceType, operations: Vec<Value>) -> Result<Vec<Value>, ScimError> {
        match self {
            Contract::Omni => patch_contract(resource_type, operations),
            Contract::Rfc => Ok(operations),
        }
    }

    /// The contract for query parameters: what it cannot take is removed from `query` and
    /// returned as the selection the edge applies to the response.
    pub fn query(self, resource_type: ResourceType, query: &mut Query) -> Projection {
        match self {
            Contract::Omni => contract_query(resource_type, query),
            Contract::Rfc => Projection::default(),
        }
    }

    /// Whether a `.search` is forwarded as the equivalent GET (RFC 7644 §3.4.3).
    pub fn search_as_get(self) -> bool {
        self == Contract::Omni
    }

    /// The root `/.search`: refused (501) when the upstream has none.
    pub fn root_search(self, label: &str) -> Result<(), ScimError> {
        match self {
            Contract::Omni => Err(ScimError::new(
                501,
                format!("/{label} is not part of Omni's SCIM API, which this gateway forwards to"),
            )),
            Contract::Rfc => Ok(()),
        }
    }
}

/// Omni's SCIM contract (its OpenAPI document) for what survives the mapping: a user is created
/// with a `displayName` and an email `userName`; `schemas` lists only the schemas in use; a group
/// replaced with PUT lists its `members`, each with `display` and `value`.
pub fn resource_contract(
    schema: &ResourceSchema,
    method: Method,
    core: &mut Map<String, Value>,
    declared: &mut Vec<&'static str>,
    extensions: &[(&'static Schema, Map<String, Value>)],
) -> Result<(), ScimError> {
    declared
        .retain(|urn| *urn == schema.core.id || extensions.iter().any(|(s, attrs)| s.id == *urn && !attrs.is_empty()));
    match schema.resource_type {
        ResourceType::User => {
            if core.get("userName").and_then(Value::as_str).is_some_and(|name| !name.contains('@')) {
                return Err(invalid_value("Omni user names are email addresses: 'userName' must be one"));
            }
            if method == Method::Post && !core.contains_key("displayName") {
                return Err(invalid_value(
                    "Omni requires 'displayName' to create a user: keep displayName in the Entra attribute mapping",
                ));
            }
        }
        ResourceType::Group => {
            if method == Method::Put {
                let members = core.entry("members").or_insert_with(|| Value::Array(Vec::new()));
                let complete = members
                    .as_array()
                    .is_some_and(|m| m.iter().all(|m| m.get("display").is_some() && m.get("value").is_some()));
                if !complete {
                    return Err(invalid_value(
                        "Omni requires 'display' and 'value' for every member when a group is replaced with PUT",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Omni's SCIM contract (its OpenAPI document) for PATCH: every user operation carries a `value`
/// (a removed Omni user attribute is replaced with `null`, other removals cannot be expressed);
/// group operations take the four shapes the contract lists: `replace` of `displayName`, `add`
/// and `replace` of `members`, and `remove` of one member by `members[value eq "<id>"]`.
pub fn patch_contract(resource_type: ResourceType, operations: Vec<Value>) -> Result<Vec<Value>, ScimError> {
    let mut shaped = Vec::with_capacity(operations.len());
    for mut operation in operations {
        let op = operation.get("op").and_then(Value::as_str).unwrap_or_default().to_string();
        let path = operation.get("path").and_then(Value::as_str).map(str::to_string);
        // Taken out rather than cloned; an operation forwarded as it is gets it back.
        let value = operation.as_object_mut().and_then(|fields| fields.remove("value"));
        match (resource_type, op.as_str(), path, value) {
            (ResourceType::User, "remove", Some(path), _) => {
                if path.starts_with(OMNI_USER_ATTRIBUTE_URN) {
                    shaped.push(object(&mut [("op", "replace".into()), ("path", path.into()), ("value", Value::Null)]));
                } else {
                    return Err(invalid_value(format!(
                        "Omni's SCIM API takes a value in every user operation: '{}' cannot be removed, replace it instead",
                        shown(&path)
                    )));
                }
            }
            (ResourceType::User, _, _, value) => shaped.push(with_value(operation, value)),
            (ResourceType::Group, "remove", Some(path), value) if path.starts_with("members[value eq ") => {
                shaped.push(with_value(operation, value))
            }
            (ResourceType::Group, "remove", Some(path), _) => {
                return Err(invalid_value(format!(
                    "Omni's SCIM API removes group members one at a time (members[value eq \"<id>\"]): '{}' cannot be removed",
                    shown(&path)
                )))
            }
            (ResourceType::Group, "add" | "replace", Some(path), Some(value)) if path == "members" => {
                shaped.push(object(&mut [("op", op.into()), ("path", "members".into()), ("value", value)]));
            }
            (ResourceType::Group, "add" | "replace", Some(path), Some(value)) if path == "displayName" => {
                shaped.push(replace_display_name(value));
            }
            (ResourceType::Group, "add" | "replace", None, Some(Value::Object(attributes))) => {
                for (name, value) in attributes {
                    match name.as_str() {
                        "displayName" => shaped.push(replace_display_name(value)),
                        _ => shaped.push(object(&mut [("op", op.as_str().into()), ("path", name.into()), ("value", value)])),
                    }
                }
            }
            (ResourceType::Group, _, path, _) => {
                return Err(invalid_value(format!(
                    "Omni's SCIM API cannot apply this group operation ({op} {})",
                    path.as_deref().map_or("without a path".to_string(), shown)
                )))
            }
        }
    }
    Ok(shaped)
}

/// `operation` with the `value` [`patch_contract`] took out of it put back.
fn with_value(mut operation: Value, value: Option<Value>) -> Value {
    if let (Value::Object(fields), Some(value)) = (&mut operation, value) {
        fields.insert("value".to_string(), value);
    }
    operation
}

fn replace_display_name(value: Value) -> Value {
    object(&mut [("op", "replace".into()), ("value", object(&mut [("displayName", value)]))])
}

/// Omni's contract for query parameters: `filter`, `startIndex`, `count`, and on groups
/// `excludedAttributes=members`. Attribute selection is left to the edge (the returned
/// [`Projection`]); sorting, which Omni's API does not offer, is dropped.
pub fn contract_query(resource_type: ResourceType, query: &mut Query) -> Projection {
    query.sort_by = None;
    query.sort_order = None;
    let attributes = std::mem::take(&mut query.attributes);
    let mut excluded = std::mem::take(&mut query.excluded_attributes);
    if resource_type == ResourceType::Group && excluded.iter().any(|e| e == "members") {
        retain_strings(&mut excluded, &mut |e| e != "members");
        query.excluded_attributes = vec!["members".to_string()];
    }
    Projection::new(attributes, excluded)
}
