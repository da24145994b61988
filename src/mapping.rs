//! The attribute mapping: which attributes may reach the upstream, per resource type, and what
//! the edge does with the others (strips them) and with Omni's system attributes (refuses them).
//!
//! Two profiles: `omni` (Omni's guide to Entra provisioning: users keep `userName`, `active`,
//! `displayName` and the Omni user attributes the configuration lists; groups keep `displayName`,
//! `members`; privilege-bearing attributes only by explicit opt-in) and `rfc` (everything RFC 7643
//! defines; strips nothing).

use serde_json::{Map, Value};

use crate::http::Method;
use crate::omni::{self, Contract};
use crate::route::ResourceType;
use crate::scim::filter::{resolve_attr, Filter};
use crate::scim::normalisation::Changes;
use crate::scim::query::{retain, retain_strings, Query};
use crate::scim::rules::AttributeRules;
pub use crate::scim::rules::{stripped_name, Verdict, UNLISTED_CUSTOM};
use crate::scim::schema::{AttrRef, Mutability, ResourceSchema, Schema, ENTERPRISE_USER, GROUP, USER};
use crate::scim_error::{ScimError, ScimType};

/// Attributes that grant privileges in the upstream: never forwarded under `omni` unless the
/// configuration opts in (`mapping.allow_privileged`).
pub const PRIVILEGED: &[&str] = &["roles", "entitlements", "groups", "x509Certificates"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Omni,
    Rfc,
}

impl Profile {
    pub fn parse(name: &str) -> Option<Profile> {
        match name {
            "omni" => Some(Profile::Omni),
            "rfc" => Some(Profile::Rfc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Omni => "omni",
            Profile::Rfc => "rfc",
        }
    }

    /// The upstream contract the profile holds requests to.
    pub fn contract(self) -> Contract {
        match self {
            Profile::Omni => Contract::Omni,
            Profile::Rfc => Contract::Rfc,
        }
    }
}

/// What to do with an Omni system attribute a client tries to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemAttributes {
    Reject,
    Strip,
}

/// The mapping of one resource type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub schema: &'static ResourceSchema,
    pub profile: Profile,
    /// The upstream's contract beyond RFC 7644 (Omni's under the `omni` profile).
    pub contract: Contract,
    /// Canonical paths: a top-level attribute (all its sub-attributes) or `attr.sub`.
    allowed: Vec<String>,
    system: SystemAttributes,
    /// Nothing is ever stripped (the `rfc` profile without removals): responses need no parsing.
    pub strips_nothing: bool,
}

impl Policy {
    /// A policy over `schema`: `allowed` holds the canonical paths (resolved against `schema`) that
    /// may reach the upstream, after the profile's base, additions and removals
    /// ([`Policy::compile`] works them out from the configuration); `system` says what happens to
    /// Omni's read-only system attributes; `strips_nothing` when the mapping removes nothing.
    pub fn new(
        schema: &'static ResourceSchema,
        profile: Profile,
        allowed: Vec<String>,
        system: SystemAttributes,
        strips_nothing: bool,
    ) -> Self {
        Policy { schema, profile, contract: profile.contract(), allowed, system, strips_nothing }
    }

    /// The `rfc` profile without removals: validation and normalisation only.
    pub fn rfc(resource_type: ResourceType) -> Policy {
        Policy::new(
            ResourceSchema::for_type(resource_type),
            Profile::Rfc,
            Policy::base(Profile::Rfc, resource_type),
            SystemAttributes::Reject,
            true,
        )
    }

    /// The profile's attributes before additions and removals.
    pub fn base(profile: Profile, resource_type: ResourceType) -> Vec<String> {
        // Loops rather than chained iterators: each `collect` of an iterator type is its own copy
        // of Vec's extend code.
        fn push_writable(allowed: &mut Vec<String>, schema: &Schema, qualified: bool) {
            for a in schema.attributes.iter().filter(|a| a.mutability != Mutability::ReadOnly) {
                allowed.push(if qualified { format!("{}:{}", schema.id, a.name) } else { a.name.to_string() });
            }
        }
        let mut allowed = Vec::new();
        if let Some(fixed) = profile.contract().attributes(resource_type) {
            for name in fixed {
                allowed.push(name.to_string());
            }
            return allowed;
        }
        match resource_type {
            ResourceType::User => {
                push_writable(&mut allowed, &USER, false);
                push_writable(&mut allowed, &ENTERPRISE_USER, true);
            }
            ResourceType::Group => push_writable(&mut allowed, &GROUP, false),
        }
        allowed.push("externalId".to_string());
        allowed
    }

    pub fn resource_type(&self) -> ResourceType {
        self.schema.resource_type
    }

    /// The verdict for an attribute (or sub-attribute) a request would send upstream.
    pub fn verdict(&self, attr: &AttrRef) -> Verdict {
        if omni::is_system_attribute(attr) {
            return match self.system {
                SystemAttributes::Strip => Verdict::Strip,
                SystemAttributes::Reject => Verdict::Reject(ScimError::bad_request(
                    ScimType::Mutability,
                    format!(
                        "'{}' is an Omni system attribute: read-only, it cannot be set over SCIM",
                        attr.top_level()
                    ),
                )),
            };
        }
        if self.allows(attr) || (attr.sub_attribute.is_none() && self.allows_any_part(attr)) {
            Verdict::Forward
        } else {
            Verdict::Strip
        }
    }

    /// Whether an attribute (or sub-attribute) is mapped. `id`, `schemas` and `meta` are the
    /// resource's own and always pass (they are read-only, so only responses carry them).
    pub fn allows(&self, attr: &AttrRef) -> bool {
        if attr.schema.is_none() && matches!(attr.attribute.name, "id" | "schemas" | "meta") {
            return true;
        }
        let top = attr.top_level();
        self.allowed.contains(&top) || (attr.sub_attribute.is_some() && self.allowed.contains(&attr.canonical()))
    }

    /// Whether any part of an attribute is mapped (a sub-attribute mapping keeps the attribute).
    pub fn allows_any_part(&self, attr: &AttrRef) -> bool {
        let top = attr.top_level();
        self.allows(attr)
            || self.allowed.iter().any(|a| a.strip_prefix(top.as_str()).is_some_and(|r| r.starts_with('.')))
    }

    /// Whether an attribute (or, with `sub_attribute`, a sub-attribute) passes the edge in both
    /// directions: a client may send it and sees it in responses. What the discovery endpoints
    /// publish. A profile that strips nothing passes everything, read-only attributes included.
    pub fn exposes(&self, attr: &AttrRef) -> bool {
        if self.strips_nothing {
            return true;
        }
        match attr.sub_attribute {
            Some(_) => self.allows(attr),
            None => self.allows_any_part(attr),
        }
    }

    /// Keeps only the mapped sub-attributes of a complex value (or of each item of a multi-valued
    /// one) of `attr`.
    pub fn strip_sub_attributes(&self, attr: &AttrRef, value: &mut Value, changes: &mut Changes) {
        if self.allows(attr) || !attr.attribute.is_complex() {
            return;
        }
        let mut strip = |item: &mut Value| {
            if let Value::Object(map) = item {
                retain(map, &mut |name, _| {
                    let sub = attr.attribute.sub_attribute(name);
                    let keep = sub.is_some_and(|sub| self.allows(&AttrRef { sub_attribute: Some(sub), ..*attr }));
                    if !keep {
                        changes.strip_with(|| stripped_name(&format!("{}.{name}", attr.top_level())));
                    }
                    keep
                });
            }
        };
        match value {
            Value::Array(items) => items.iter_mut().for_each(strip),
            other => strip(other),
        }
    }

    /// Restricts a query to what the upstream stores. `false` when its filter can match nothing:
    /// a comparison on an attribute the upstream never receives cannot be true of anything the
    /// upstream stores, so the edge answers an empty list itself.
    pub fn restrict_query(&self, query: &mut Query, changes: &mut Changes) -> bool {
        if self.strips_nothing {
            return true;
        }
        let mut keep_path = |path: &String| {
            let keep = resolve_attr(self.schema, path).is_some_and(|attr| self.allows_any_part(&attr));
            if !keep {
                changes.strip(stripped_name(path));
            }
            keep
        };
        let selected = !query.attributes.is_empty();
        retain_strings(&mut query.attributes, &mut keep_path);
        if selected && query.attributes.is_empty() {
            // Every attribute asked for is unmapped: RFC 7644 §3.9 still returns only the ones
            // asked for plus `id` (and the edge keeps `schemas` and `meta`), never the whole
            // resource that an empty `attributes` would mean.
            query.attributes.push("id".to_string());
        }
        retain_strings(&mut query.excluded_attributes, &mut keep_path);
        if query.sort_by.as_ref().is_some_and(|path| !keep_path(path)) {
            query.sort_by = None;
            query.sort_order = None;
        }
        match query.filter.take().map(|f| self.restrict_filter(f)) {
            None | Some(Truth::Always) => true,
            Some(Truth::Never) => false,
            Some(Truth::Depends(filter)) => {
                query.filter = Some(filter);
                true
            }
        }
    }

    fn restrict_filter(&self, filter: Filter) -> Truth {
        match filter {
            Filter::Present(attr) | Filter::Compare(attr, ..) if !self.allows(&attr) => Truth::Never,
            Filter::ValuePath(attr, _) if !self.allows_any_part(&attr) => Truth::Never,
            Filter::ValuePath(attr, inner) => match self.restrict_filter(*inner) {
                Truth::Depends(inner) => Truth::Depends(Filter::ValuePath(attr, Box::new(inner))),
                other => other,
            },
            Filter::Not(inner) => match self.restrict_filter(*inner) {
                Truth::Always => Truth::Never,
                Truth::Never => Truth::Always,
                Truth::Depends(inner) => Truth::Depends(Filter::Not(Box::new(inner))),
            },
            Filter::And(a, b) => match (self.restrict_filter(*a), self.restrict_filter(*b)) {
                (Truth::Never, _) | (_, Truth::Never) => Truth::Never,
                (Truth::Always, other) | (other, Truth::Always) => other,
                (Truth::Depends(a), Truth::Depends(b)) => Truth::Depends(Filter::And(Box::new(a), Box::new(b))),
            },
            Filter::Or(a, b) => match (self.restrict_filter(*a), self.restrict_filter(*b)) {
                (Truth::Always, _) | (_, Truth::Always) => Truth::Always,
                (Truth::Never, other) | (other, Truth::Never) => other,
                (Truth::Depends(a), Truth::Depends(b)) => Truth::Depends(Filter::Or(Box::new(a), Box::new(b))),
            },
            other => Truth::Depends(other),
        }
    }

    /// Strips a response body: a resource, or each resource of a ListResponse, keeps `id`,
    /// `schemas`, `meta` and its mapped attributes; `schemas` keeps the URNs still in use.
    pub fn strip_response(&self, body: &mut Value) {
        let mut ignored = Changes::untracked();
        match body.get_mut("Resources") {
            Some(Value::Array(resources)) => resources.iter_mut().for_each(|r| self.strip_resource(r, &mut ignored)),
            _ => self.strip_resource(body, &mut ignored),
        }
    }

    /// Strips one resource document in canonical form (core attributes at the top, extensions
    /// nested under their URN).
    pub fn strip_resource(&self, resource: &mut Value, changes: &mut Changes) {
        let Value::Object(map) = resource else {
            return;
        };
        retain(map, &mut |key, value| {
            if key == "schemas" {
                return true;
            }
            if let Some(extension) = self.schema.extension(key) {
                let Value::Object(inner) = value else {
                    return false;
                };
                retain(inner, &mut |name, value| {
                    let keep = match extension.attribute(name) {
                        Some(attribute) => {
                            let attr = AttrRef { schema: Some(extension), attribute, sub_attribute: None };
                            let keep = self.allows_any_part(&attr);
                            if keep {
                                self.strip_sub_attributes(&attr, value, changes);
                            }
                            keep
                        }
                        None => false,
                    };
                    if !keep {
                        changes.strip_with(|| match extension.attribute(name) {
                            Some(_) => stripped_name(&format!("{}:{name}", extension.id)),
                            None => UNLISTED_CUSTOM.to_string(),
                        });
                    }
                    keep
                });
                return !inner.is_empty();
            }
            match self.schema.core_attribute(key).filter(|a| self.allows_any_part(a)) {
                Some(attr) => {
                    self.strip_sub_attributes(&attr, value, changes);
                    true
                }
                None => {
                    changes.strip_with(|| stripped_name(key));
                    false
                }
            }
        });
        // An extension URN stays in `schemas` only while the resource still carries the extension.
        let Some(Value::Array(schemas)) = map.get("schemas") else {
            return;
        };
        let mut listed = Vec::with_capacity(schemas.len());
        for urn in schemas {
            listed.push(urn.as_str().is_some_and(|urn| {
                self.schema.extension(urn).is_none() || map.keys().any(|k| k.eq_ignore_ascii_case(urn))
            }));
        }
        if let Some(Value::Array(schemas)) = map.get_mut("schemas") {
            let mut listed = listed.into_iter();
            schemas.retain(|_| listed.next().unwrap_or(false));
        }
    }
}

impl Policy {
    /// Compiles the mapping of one resource type: the profile's attributes, plus `add`, minus
    /// `remove` (attribute paths as the configuration lists them). `privileged` lists the
    /// privilege-bearing attributes the configuration allows.
    pub fn compile(
        resource_type: ResourceType,
        profile: Profile,
        system: SystemAttributes,
        privileged: &[String],
        add: &[String],
        remove: &[String],
    ) -> Result<Policy, MappingError> {
        let contract = profile.contract();
        let schema = contract
            .schema(resource_type, add)
            .map_err(|(index, reason)| MappingError::at(Entry::Add(index), reason))?;
        let mut allowed = Policy::base(profile, resource_type);
        for (index, name) in add.iter().enumerate() {
            let field = Entry::Add(index);
            if let Some(reason) = contract.refuses_additions(resource_type) {
                return Err(MappingError::at(field, reason));
            }
            let attr = resolve_attr(schema, name).ok_or_else(|| {
                MappingError::at(field, format!("unknown attribute for the {} profile", profile.as_str()))
            })?;
            if omni::is_system_attribute(&attr) {
                return Err(MappingError::at(field, "an Omni system attribute is read-only and cannot be mapped"));
            }
            if attr.attribute.mutability == Mutability::ReadOnly || attr.target().mutability == Mutability::ReadOnly {
                return Err(MappingError::at(field, "read-only: the upstream never receives it"));
            }
            if contract.guards_privileges()
                && attr.schema.is_some_and(|s| !attr.in_extension() && s.id == schema.core.id)
            {
                let privilege = attr.attribute.name;
                if PRIVILEGED.contains(&privilege) && !privileged.iter().any(|p| p == privilege) {
                    return Err(MappingError::at(
                        field,
                        "privilege-bearing: list it in mapping.allow_privileged as well to forward it",
                    ));
                }
            }
            let canonical = attr.canonical();
            if !allowed.contains(&canonical) {
                allowed.push(canonical);
            }
        }
        for (index, name) in remove.iter().enumerate() {
            let field = Entry::Remove(index);
            let attr = resolve_attr(schema, name).ok_or_else(|| MappingError::at(field, "unknown attribute"))?;
            if attr.target().required || (attr.sub_attribute.is_none() && attr.attribute.required) {
                return Err(MappingError::at(field, "required by the schema: it cannot be unmapped"));
            }
            let canonical = attr.canonical();
            if let Some(sub) = attr.sub_attribute {
                // Unmapping one sub-attribute of a mapped attribute maps its other sub-attributes.
                let top = attr.top_level();
                if let Some(position) = allowed.iter().position(|a| *a == top) {
                    allowed.remove(position);
                    for other in attr.attribute.sub_attributes.iter().filter(|s| s.name != sub.name) {
                        allowed.push(format!("{top}.{}", other.name));
                    }
                }
            }
            let below = format!("{canonical}.");
            retain_strings(&mut allowed, &mut |a| *a != canonical && !a.starts_with(&below));
        }
        let strips_nothing = profile == Profile::Rfc && remove.is_empty();
        Ok(Policy::new(schema, profile, allowed, system, strips_nothing))
    }
}

/// Which entry of a mapping's lists an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Add(usize),
    Remove(usize),
}

/// Why an entry of `add` or `remove` cannot be mapped; the configuration names the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingError {
    pub entry: Entry,
    pub reason: String,
}

impl MappingError {
    fn at(entry: Entry, reason: impl Into<String>) -> MappingError {
        MappingError { entry, reason: reason.into() }
    }
}

impl AttributeRules for Policy {
    fn schema(&self) -> &'static ResourceSchema {
        self.schema
    }

    fn strips_nothing(&self) -> bool {
        self.strips_nothing
    }

    fn verdict(&self, attr: &AttrRef) -> Verdict {
        Policy::verdict(self, attr)
    }

    fn strip_sub_attributes(&self, attr: &AttrRef, value: &mut Value, changes: &mut Changes) {
        Policy::strip_sub_attributes(self, attr, value, changes)
    }

    fn restrict_query(&self, query: &mut Query, changes: &mut Changes) -> bool {
        Policy::restrict_query(self, query, changes)
    }

    fn resource_contract(
        &self,
        method: Method,
        core: &mut Map<String, Value>,
        declared: &mut Vec<&'static str>,
        extensions: &[(&'static Schema, Map<String, Value>)],
    ) -> Result<(), ScimError> {
        self.contract.resource(self.schema, method, core, declared, extensions)
    }

    fn patch_contract(&self, operations: Vec<Value>) -> Result<Vec<Value>, ScimError> {
        self.contract.patch(self.resource_type(), operations)
    }
}

enum Truth {
    Always,
    Never,
    Depends(Filter),
}

/// The mappings of both resource types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub users: Policy,
    pub groups: Policy,
}

impl Mapping {
    pub fn policy(&self, resource_type: ResourceType) -> &Policy {
        match resource_type {
            ResourceType::User => &self.users,
            ResourceType::Group => &self.groups,
        }
    }

    /// The `omni` profile with nothing added or removed: what a configuration without `mapping`
    /// gets (the strictest choice).
    pub fn omni_default() -> Mapping {
        let users = Policy::new(
            ResourceSchema::omni_users(&[]),
            Profile::Omni,
            Policy::base(Profile::Omni, ResourceType::User),
            SystemAttributes::Reject,
            false,
        );
        let groups = Policy::new(
            ResourceSchema::for_type(ResourceType::Group),
            Profile::Omni,
            Policy::base(Profile::Omni, ResourceType::Group),
            SystemAttributes::Reject,
            false,
        );
        Mapping { users, groups }
    }
}

#[cfg(test)]
mod tests;
