//! The SCIM schemas the gateway validates against: RFC 7643 §4.1 User, §4.3 Enterprise User,
//! §4.2 Group, and the common attributes of §3.1. Static tables, looked up case-insensitively
//! (RFC 7643 §2.1: attribute names are case-insensitive) and answered with the canonical name.

use crate::route::ResourceType;

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Omni's custom user attributes (Omni's SCIM API: `urn:omni:params:1.0:UserAttribute`).
pub const OMNI_USER_ATTRIBUTE_URN: &str = "urn:omni:params:1.0:UserAttribute";
/// Omni's system user attributes: read-only in Omni, never assignable over SCIM.
pub const OMNI_SYSTEM_ATTRIBUTES: &[&str] = &[
    "omni_is_org_admin",
    "omni_user_email",
    "omni_user_embed_entity",
    "omni_user_groups",
    "omni_user_id",
    "omni_user_name",
    "omni_user_timezone",
];

/// RFC 7643 §2.3 data types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
    /// Any JSON value: Omni's user attributes are strings, numbers, booleans, lists or objects.
    Any,
}

/// RFC 7643 §7 `mutability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub mutability: Mutability,
    pub sub_attributes: &'static [Attribute],
}

impl Attribute {
    /// A sub-attribute by name, case-insensitively.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    pub fn is_complex(&self) -> bool {
        self.ty == AttrType::Complex
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Schema {
    pub id: &'static str,
    pub attributes: &'static [Attribute],
    /// An open schema admits attribute names it does not list (Omni's custom attributes): such
    /// attributes are valid SCIM but mapped to nothing, so they are stripped, not refused.
    pub open: bool,
}

impl Schema {
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A resource type's schemas: the core schema, its extensions, and the common attributes.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceSchema {
    pub resource_type: ResourceType,
    pub core: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

/// Where an attribute path points (RFC 7644 §3.10 `attrPath`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrRef {
    /// The schema the attribute belongs to (`None` for the common attributes `id`, `externalId`,
    /// `meta`).
    pub schema: Option<&'static Schema>,
    pub attribute: &'static Attribute,
    pub sub_attribute: Option<&'static Attribute>,
}

impl AttrRef {
    /// The attribute (or sub-attribute) the path ends at.
    pub fn target(&self) -> &'static Attribute {
        self.sub_attribute.unwrap_or(self.attribute)
    }

    /// The canonical path of the top-level attribute (without a sub-attribute).
    pub fn top_level(&self) -> String {
        AttrRef { sub_attribute: None, ..*self }.canonical()
    }

    /// Whether this attribute lives in an extension schema (and is written URN-qualified).
    pub fn in_extension(&self) -> bool {
        self.schema.is_some_and(|s| s.id != USER_URN && s.id != GROUP_URN)
    }

    /// The canonical path: `name.givenName`, or `urn:...:enterprise:2.0:User:manager.value` for
    /// extension attributes.
    pub fn canonical(&self) -> String {
        let mut path = String::new();
        if let Some(schema) = self.schema.filter(|_| self.in_extension()) {
            path.push_str(schema.id);
            path.push(':');
        }
        path.push_str(self.attribute.name);
        if let Some(sub) = self.sub_attribute {
            path.push('.');
            path.push_str(sub.name);
        }
        path
    }
}

impl ResourceSchema {
    pub fn for_type(resource_type: ResourceType) -> &'static ResourceSchema {
        match resource_type {
            ResourceType::User => &USER_RESOURCE,
            ResourceType::Group => &GROUP_RESOURCE,
        }
    }

    /// The User resource under the `omni` profile: the core schema, the Enterprise User extension
    /// (Entra sends it; the mapping strips it) and Omni's user-attribute extension with the custom
    /// attributes the configuration names (and the system attributes, so they can be recognised
    /// and refused). Built once per configuration; the few bytes it
    /// takes live as long as the VM.
    pub fn omni_users(custom: &[String]) -> &'static ResourceSchema {
        let mut attributes = Vec::with_capacity(OMNI_SYSTEM_ATTRIBUTES.len() + custom.len());
        for name in OMNI_SYSTEM_ATTRIBUTES {
            attributes.push(attr(name, AttrType::Any));
        }
        for name in custom {
            attributes.push(attr(Box::leak(name.clone().into_boxed_str()), AttrType::Any));
        }
        let extension: &'static Schema = Box::leak(Box::new(Schema {
            id: OMNI_USER_ATTRIBUTE_URN,
            attributes: Box::leak(attributes.into_boxed_slice()),
            open: true,
        }));
        Box::leak(Box::new(ResourceSchema {
            resource_type: ResourceType::User,
            core: &USER,
            extensions: Box::leak(vec![&ENTERPRISE_USER, extension].into_boxed_slice()),
        }))
    }

    /// Every schema URN a resource of this type may list in `schemas`.
    pub fn schema_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        std::iter::once(self.core.id).chain(self.extensions.iter().map(|s| s.id))
    }

    /// An extension schema by URN, case-insensitively.
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions.iter().copied().find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// A top-level attribute of the core schema or the common attributes, case-insensitively.
    pub fn core_attribute(&self, name: &str) -> Option<AttrRef> {
        if let Some(attribute) = self.core.attribute(name) {
            return Some(AttrRef { schema: Some(self.core), attribute, sub_attribute: None });
        }
        COMMON.attribute(name).map(|attribute| AttrRef { schema: None, attribute, sub_attribute: None })
    }

    /// Resolves `attrPath = [URI ":"] ATTRNAME *1subAttr` (RFC 7644 §3.10). A URN prefix may
    /// name the core schema or an extension; without one the attribute is looked up in the core
    /// schema and the common attributes.
    pub fn resolve(&self, path: &str) -> Option<AttrRef> {
        let (schema, rest) = self.split_urn(path)?;
        let (name, sub) = match rest.split_once('.') {
            Some((name, sub)) => (name, Some(sub)),
            None => (rest, None),
        };
        let mut found = match schema {
            Some(schema) if std::ptr::eq(schema, self.core) => self.core_attribute(name)?,
            Some(schema) => AttrRef { schema: Some(schema), attribute: schema.attribute(name)?, sub_attribute: None },
            None => self.core_attribute(name)?,
        };
        if let Some(sub) = sub {
            found.sub_attribute = Some(found.attribute.sub_attribute(sub)?);
        }
        Some(found)
    }

    /// Splits a URN-qualified path into its schema and the attribute path after it. The URN is the
    /// longest known schema id that prefixes the path followed by `:`.
    pub fn split_urn<'p>(&self, path: &'p str) -> Option<(Option<&'static Schema>, &'p str)> {
        if !path.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
            return Some((None, path));
        }
        let schemas = std::iter::once(self.core).chain(self.extensions.iter().copied());
        for schema in schemas {
            let id_len = schema.id.len();
            let Some(prefix) = path.get(..id_len) else {
                continue;
            };
            if prefix.eq_ignore_ascii_case(schema.id) && path.as_bytes().get(id_len) == Some(&b':') {
                return Some((Some(schema), path.get(id_len + 1..)?));
            }
        }
        None
    }
}

const fn attr(name: &'static str, ty: AttrType) -> Attribute {
    Attribute { name, ty, multi_valued: false, required: false, mutability: Mutability::ReadWrite, sub_attributes: &[] }
}

const fn read_only(mut a: Attribute) -> Attribute {
    a.mutability = Mutability::ReadOnly;
    a
}

const fn required(mut a: Attribute) -> Attribute {
    a.required = true;
    a
}

const fn complex(name: &'static str, sub_attributes: &'static [Attribute]) -> Attribute {
    Attribute { sub_attributes, ..attr(name, AttrType::Complex) }
}

const fn multi(name: &'static str, sub_attributes: &'static [Attribute]) -> Attribute {
    Attribute { multi_valued: true, ..complex(name, sub_attributes) }
}

use AttrType::{Binary, Boolean, DateTime, Reference, String as Str};

/// The sub-attributes of the multi-valued attributes of RFC 7643 §2.4.
const MULTI_VALUE_SUBS: &[Attribute] =
    &[attr("value", Str), attr("display", Str), attr("type", Str), attr("primary", Boolean)];

/// RFC 7643 §3.1 common attributes.
pub static COMMON: Schema = Schema {
    id: "",
    open: false,
    attributes: &[
        // Listed so filters may test it (RFC 7644 §3.4.2.2, Figure 2); bodies handle it themselves.
        Attribute { multi_valued: true, ..read_only(attr("schemas", Reference)) },
        read_only(attr("id", Str)),
        attr("externalId", Str),
        read_only(complex(
            "meta",
            &[
                attr("resourceType", Str),
                attr("created", DateTime),
                attr("lastModified", DateTime),
                attr("location", Reference),
                attr("version", Str),
            ],
        )),
    ],
};

/// RFC 7643 §4.1.
pub static USER: Schema = Schema {
    id: USER_URN,
    open: false,
    attributes: &[
        required(attr("userName", Str)),
        complex(
            "name",
            &[
                attr("formatted", Str),
                attr("familyName", Str),
                attr("givenName", Str),
                attr("middleName", Str),
                attr("honorificPrefix", Str),
                attr("honorificSuffix", Str),
            ],
        ),
        attr("displayName", Str),
        attr("nickName", Str),
        attr("profileUrl", Reference),
        attr("title", Str),
        attr("userType", Str),
        attr("preferredLanguage", Str),
        attr("locale", Str),
        attr("timezone", Str),
        attr("active", Boolean),
        Attribute { mutability: Mutability::WriteOnly, ..attr("password", Str) },
        multi("emails", MULTI_VALUE_SUBS),
        multi("phoneNumbers", MULTI_VALUE_SUBS),
        multi("ims", MULTI_VALUE_SUBS),
        multi("photos", &[attr("value", Reference), attr("display", Str), attr("type", Str), attr("primary", Boolean)]),
        multi(
            "addresses",
            &[
                attr("formatted", Str),
                attr("streetAddress", Str),
                attr("locality", Str),
                attr("region", Str),
                attr("postalCode", Str),
                attr("country", Str),
                attr("type", Str),
                attr("primary", Boolean),
            ],
        ),
        read_only(multi(
            "groups",
            &[
                read_only(attr("value", Str)),
                read_only(attr("$ref", Reference)),
                read_only(attr("display", Str)),
                read_only(attr("type", Str)),
            ],
        )),
        multi("entitlements", MULTI_VALUE_SUBS),
        multi("roles", MULTI_VALUE_SUBS),
        multi(
            "x509Certificates",
            &[attr("value", Binary), attr("display", Str), attr("type", Str), attr("primary", Boolean)],
        ),
    ],
};

/// RFC 7643 §4.3.
pub static ENTERPRISE_USER: Schema = Schema {
    id: ENTERPRISE_USER_URN,
    open: false,
    attributes: &[
        attr("employeeNumber", Str),
        attr("costCenter", Str),
        attr("organization", Str),
        attr("division", Str),
        attr("department", Str),
        complex("manager", &[attr("value", Str), attr("$ref", Reference), read_only(attr("displayName", Str))]),
    ],
};

/// RFC 7643 §4.2 (members' `display` as RFC 7643 §8.4's example uses it).
pub static GROUP: Schema = Schema {
    id: GROUP_URN,
    open: false,
    attributes: &[
        required(attr("displayName", Str)),
        multi(
            "members",
            &[
                Attribute { mutability: Mutability::Immutable, ..attr("value", Str) },
                Attribute { mutability: Mutability::Immutable, ..attr("$ref", Reference) },
                Attribute { mutability: Mutability::Immutable, ..attr("type", Str) },
                attr("display", Str),
            ],
        ),
    ],
};

static USER_RESOURCE: ResourceSchema =
    ResourceSchema { resource_type: ResourceType::User, core: &USER, extensions: &[&ENTERPRISE_USER] };

static GROUP_RESOURCE: ResourceSchema =
    ResourceSchema { resource_type: ResourceType::Group, core: &GROUP, extensions: &[] };

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn user() -> &'static ResourceSchema {
        ResourceSchema::for_type(ResourceType::User)
    }

    #[test]
    fn attribute_names_resolve_case_insensitively_to_their_canonical_form() {
        assert_eq!(user().resolve("USERNAME").unwrap().canonical(), "userName");
        assert_eq!(user().resolve("name.GIVENNAME").unwrap().canonical(), "name.givenName");
        assert_eq!(user().resolve("emails.value").unwrap().canonical(), "emails.value");
        assert_eq!(user().resolve("externalid").unwrap().canonical(), "externalId");
        assert_eq!(user().resolve("meta.lastModified").unwrap().target().ty, AttrType::DateTime);
    }

    #[test]
    fn urn_qualified_paths_resolve_to_core_or_extension() {
        let core = user().resolve("urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap();
        assert_eq!(core.canonical(), "userName");
        let ext = user().resolve("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert_eq!(ext.canonical(), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value");
        let ext = user().resolve("URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER").unwrap();
        assert_eq!(ext.canonical(), "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber");
        assert!(ext.in_extension());
        assert!(!core.in_extension());
    }

    #[test]
    fn unknown_paths_do_not_resolve() {
        for path in [
            "nope",
            "name.nope",
            "userName.x",
            "urn:x:y:attr",
            "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
            "employeeNumber",
        ] {
            assert_eq!(user().resolve(path), None, "{path}");
        }
        let group = ResourceSchema::for_type(ResourceType::Group);
        assert_eq!(group.resolve("members.value").unwrap().canonical(), "members.value");
        assert_eq!(group.resolve("userName"), None);
    }

    #[test]
    fn mutability_and_requirements_follow_rfc7643() {
        assert_eq!(user().resolve("id").unwrap().target().mutability, Mutability::ReadOnly);
        assert_eq!(user().resolve("groups").unwrap().target().mutability, Mutability::ReadOnly);
        assert_eq!(user().resolve("password").unwrap().target().mutability, Mutability::WriteOnly);
        assert!(user().resolve("userName").unwrap().target().required);
        assert!(user().resolve("emails").unwrap().target().multi_valued);
        let group = ResourceSchema::for_type(ResourceType::Group);
        assert!(group.resolve("displayName").unwrap().target().required);
    }
}
