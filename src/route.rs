//! Which SCIM endpoint a request is for (RFC 7644 §3.2), and whether its method is allowed there.
//!
//! Envoy has already normalised the path (dot segments, merged slashes) and refused escaped
//! slashes; this module still refuses anything it would not forward verbatim, so no path trick
//! reaches the upstream.

use crate::http::Method;
use crate::scim_error::ScimError;

/// The SCIM resource types the gateway forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    fn parse(segment: &str) -> Option<ResourceType> {
        match segment {
            "Users" => Some(ResourceType::User),
            "Groups" => Some(ResourceType::Group),
            _ => None,
        }
    }

    /// The endpoint name in the URL (RFC 7644 §3.2).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceType::User => "Users",
            ResourceType::Group => "Groups",
        }
    }
}

/// The discovery endpoints of RFC 7644 §4. Read-only; answered by the edge ([`crate::discovery`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discovery {
    ServiceProviderConfig,
    Schemas,
    ResourceTypes,
}

impl Discovery {
    fn parse(segment: &str) -> Option<Discovery> {
        match segment {
            "ServiceProviderConfig" => Some(Discovery::ServiceProviderConfig),
            "Schemas" => Some(Discovery::Schemas),
            "ResourceTypes" => Some(Discovery::ResourceTypes),
            _ => None,
        }
    }

    pub fn endpoint(self) -> &'static str {
        match self {
            Discovery::ServiceProviderConfig => "ServiceProviderConfig",
            Discovery::Schemas => "Schemas",
            Discovery::ResourceTypes => "ResourceTypes",
        }
    }
}

/// A SCIM endpoint the gateway forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/Users`, `/Groups`: query (GET) and create (POST).
    Collection(ResourceType),
    /// `/Users/{id}`, `/Groups/{id}`: read, replace, modify, delete. The id is kept exactly as it
    /// appeared in the path (percent-encoded).
    Resource(ResourceType, String),
    /// `/ServiceProviderConfig`, `/Schemas[/{id}]`, `/ResourceTypes[/{id}]`.
    Discovery(Discovery, Option<String>),
    /// `POST /.search` (all resource types) and `POST /Users/.search` (RFC 7644 §3.4.3).
    Search(Option<ResourceType>),
}

impl Endpoint {
    /// The path below the SCIM base, as sent upstream: `Users`, `Groups/{id}`.
    pub fn path(&self) -> String {
        match self {
            Endpoint::Collection(rt) => rt.endpoint().to_string(),
            Endpoint::Resource(rt, id) => format!("{}/{id}", rt.endpoint()),
            Endpoint::Discovery(d, None) => d.endpoint().to_string(),
            Endpoint::Discovery(d, Some(id)) => format!("{}/{id}", d.endpoint()),
            Endpoint::Search(None) => ".search".to_string(),
            Endpoint::Search(Some(rt)) => format!("{}/.search", rt.endpoint()),
        }
    }

    /// The resource type whose schema applies to the request's body and query, if any.
    pub fn resource_type(&self) -> Option<ResourceType> {
        match self {
            Endpoint::Collection(rt) | Endpoint::Resource(rt, _) | Endpoint::Search(Some(rt)) => Some(*rt),
            Endpoint::Discovery(..) | Endpoint::Search(None) => None,
        }
    }

    /// The endpoint with the id redacted, for logs and counters: `Users/{id}`.
    pub fn label(&self) -> &'static str {
        match self {
            Endpoint::Collection(ResourceType::User) => "Users",
            Endpoint::Collection(ResourceType::Group) => "Groups",
            Endpoint::Resource(ResourceType::User, _) => "Users/{id}",
            Endpoint::Resource(ResourceType::Group, _) => "Groups/{id}",
            Endpoint::Discovery(Discovery::ServiceProviderConfig, _) => "ServiceProviderConfig",
            Endpoint::Discovery(Discovery::Schemas, None) => "Schemas",
            Endpoint::Discovery(Discovery::Schemas, Some(_)) => "Schemas/{id}",
            Endpoint::Discovery(Discovery::ResourceTypes, None) => "ResourceTypes",
            Endpoint::Discovery(Discovery::ResourceTypes, Some(_)) => "ResourceTypes/{id}",
            Endpoint::Search(None) => ".search",
            Endpoint::Search(Some(ResourceType::User)) => "Users/.search",
            Endpoint::Search(Some(ResourceType::Group)) => "Groups/.search",
        }
    }

    /// RFC 7644 §3.3-§3.6: collections are queried and created into; resources are read,
    /// replaced, modified and deleted.
    pub fn allowed_methods(&self) -> &'static [Method] {
        match self {
            Endpoint::Collection(_) => &[Method::Get, Method::Post],
            Endpoint::Resource(..) => &[Method::Get, Method::Put, Method::Patch, Method::Delete],
            Endpoint::Discovery(..) => &[Method::Get],
            Endpoint::Search(_) => &[Method::Post],
        }
    }
}

/// A request the gateway will forward: endpoint, method and the raw query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub endpoint: Endpoint,
    /// The query string without `?`, as the client sent it (may be empty).
    pub query: String,
}

/// Where a request path stands relative to the SCIM prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Outside the SCIM prefix: not the filter's business.
    Outside,
    /// Under the prefix: the path below it (without the leading `/`) and the query string.
    Scim { rest: &'a str, query: &'a str },
}

/// Splits `:path` against the SCIM prefix. The prefix matches on a segment boundary only:
/// `/api/scim/v2/Users` and `/api/scim/v2` are in scope, `/api/scim/v2x` is not.
pub fn scope<'a>(prefix: &str, path: &'a str) -> Scope<'a> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    match path.strip_prefix(prefix) {
        Some("") => Scope::Scim { rest: "", query },
        Some(rest) => match rest.strip_prefix('/') {
            Some(rest) => Scope::Scim { rest, query },
            None => Scope::Outside,
        },
        None => Scope::Outside,
    }
}

/// Endpoints RFC 7644 defines that the gateway does not serve: answered 501, which is what
/// RFC 7644 §3.11 asks for `/Me` and what a client can act on for the others.
const NOT_IMPLEMENTED: &[&str] = &["Me", "Bulk"];

/// Resolves the method and the path below the SCIM prefix to a forwardable route.
pub fn resolve(method: &str, rest: &str, query: &str) -> Result<Route, ScimError> {
    let endpoint = endpoint(rest)?;
    let allowed = endpoint.allowed_methods();
    match Method::parse(method).filter(|m| allowed.contains(m)) {
        Some(method) => Ok(Route { method, endpoint, query: query.to_string() }),
        None => {
            let mut allow = String::new();
            for method in allowed {
                if !allow.is_empty() {
                    allow.push_str(", ");
                }
                allow.push_str(method.as_str());
            }
            Err(ScimError::new(405, format!("Method not allowed on /{}; allowed: {allow}", endpoint.label()))
                .with_header("allow", allow))
        }
    }
}

fn endpoint(rest: &str) -> Result<Endpoint, ScimError> {
    let mut segments = rest.split('/');
    let first = segments.next().unwrap_or_default();
    let second = segments.next();
    let extra = segments.next();
    if first == ".search" && second.is_none() {
        return Ok(Endpoint::Search(None));
    }
    if let Some(discovery) = Discovery::parse(first) {
        return match (discovery, second, extra) {
            (_, None, _) => Ok(Endpoint::Discovery(discovery, None)),
            (Discovery::Schemas | Discovery::ResourceTypes, Some(id), None) if is_resource_id(id) => {
                Ok(Endpoint::Discovery(discovery, Some(id.to_string())))
            }
            _ => Err(not_found()),
        };
    }
    let Some(resource_type) = ResourceType::parse(first) else {
        return Err(match (NOT_IMPLEMENTED.contains(&first), second) {
            (true, None) => ScimError::new(501, format!("/{first} is not supported by this gateway")),
            _ => not_found(),
        });
    };
    match (second, extra) {
        (None, _) => Ok(Endpoint::Collection(resource_type)),
        (Some(".search"), None) => Ok(Endpoint::Search(Some(resource_type))),
        (Some(id), None) if is_resource_id(id) => Ok(Endpoint::Resource(resource_type, id.to_string())),
        _ => Err(not_found()),
    }
}

/// For the log line of a request that is not (yet) routed: the endpoint named by the first
/// segment below the SCIM prefix when this module knows it (served or answered 501), `None` for
/// anything else, so a client-chosen string never reaches a log.
pub fn label_of(first_segment: &str) -> Option<&'static str> {
    if first_segment == ".search" {
        return Some(Endpoint::Search(None).label());
    }
    ResourceType::parse(first_segment)
        .map(ResourceType::endpoint)
        .or_else(|| Discovery::parse(first_segment).map(Discovery::endpoint))
        .or_else(|| NOT_IMPLEMENTED.iter().find(|name| **name == first_segment).copied())
}

fn not_found() -> ScimError {
    ScimError::new(
        404,
        "No such SCIM endpoint: this gateway serves /Users, /Groups, /ServiceProviderConfig, /Schemas and /ResourceTypes",
    )
}

/// A path segment that can be forwarded as a resource id: RFC 3986 `pchar`s without `;` (path
/// parameters), well-formed percent escapes that do not decode to `/`, `\` or NUL, and not a dot
/// segment.
pub fn is_resource_id(id: &str) -> bool {
    if id.is_empty() || id == "." || id == ".." || id.len() > 1024 {
        return false;
    }
    // A dot segment written with escapes (`%2e`, `.%2E`) is one too (RFC 3986 §2.3, §6.2.2.2).
    let unescaped = id.replace("%2e", ".").replace("%2E", ".");
    if unescaped == "." || unescaped == ".." {
        return false;
    }
    let bytes = id.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let escaped = bytes.get(i + 1..i + 3).and_then(|hex| std::str::from_utf8(hex).ok());
            match escaped.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                Some(b'/' | b'\\' | 0) | None => return false,
                Some(_) => i += 3,
            }
        } else if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const PREFIX: &str = "/api/scim/v2";

    #[test]
    fn prefix_matches_on_segment_boundary_only() {
        assert_eq!(scope(PREFIX, "/api/scim/v2/Users?x=1"), Scope::Scim { rest: "Users", query: "x=1" });
        assert_eq!(scope(PREFIX, "/api/scim/v2"), Scope::Scim { rest: "", query: "" });
        assert_eq!(scope(PREFIX, "/api/scim/v2?filter=a"), Scope::Scim { rest: "", query: "filter=a" });
        assert_eq!(scope(PREFIX, "/api/scim/v2x/Users"), Scope::Outside);
        assert_eq!(scope(PREFIX, "/api/scim/v3/Users"), Scope::Outside);
        assert_eq!(scope(PREFIX, "/API/SCIM/V2/Users"), Scope::Outside);
        assert_eq!(scope(PREFIX, "/healthz"), Scope::Outside);
    }

    #[test]
    fn collections_and_resources_resolve_with_their_methods() {
        let route = resolve("GET", "Users", "filter=userName%20eq%20%22a%22").unwrap();
        assert_eq!(route.endpoint, Endpoint::Collection(ResourceType::User));
        assert_eq!(route.query, "filter=userName%20eq%20%22a%22");
        let route = resolve("PATCH", "Groups/7f3a", "").unwrap();
        assert_eq!(route.endpoint, Endpoint::Resource(ResourceType::Group, "7f3a".into()));
        assert_eq!(route.endpoint.path(), "Groups/7f3a");
        assert_eq!(route.endpoint.label(), "Groups/{id}");
        for method in ["GET", "POST"] {
            assert!(resolve(method, "Groups", "").is_ok());
        }
        for method in ["GET", "PUT", "PATCH", "DELETE"] {
            assert!(resolve(method, "Users/1", "").is_ok());
        }
    }

    #[test]
    fn wrong_methods_get_405_with_allow() {
        let error = resolve("DELETE", "Users", "").unwrap_err();
        assert_eq!(error.status, 405);
        assert_eq!(error.headers, vec![("allow", "GET, POST".to_string())]);
        let error = resolve("POST", "Users/1", "").unwrap_err();
        assert_eq!(error.status, 405);
        assert_eq!(error.headers, vec![("allow", "GET, PUT, PATCH, DELETE".to_string())]);
        assert_eq!(resolve("get", "Users", "").unwrap_err().status, 405);
        assert_eq!(resolve("OPTIONS", "Users", "").unwrap_err().status, 405);
    }

    #[test]
    fn unknown_endpoints_get_404() {
        for rest in ["", "users", "Users/", "Users/1/x", "Userz", "Groups/1/members", "Users/..", "Users/a;b"] {
            assert_eq!(resolve("GET", rest, "").unwrap_err().status, 404, "{rest}");
        }
    }

    #[test]
    fn rfc_endpoints_not_served_get_501() {
        for rest in ["Me", "Bulk"] {
            assert_eq!(resolve("GET", rest, "").unwrap_err().status, 501, "{rest}");
        }
    }

    #[test]
    fn searches_are_posted() {
        assert_eq!(resolve("POST", ".search", "").unwrap().endpoint, Endpoint::Search(None));
        let route = resolve("POST", "Groups/.search", "").unwrap();
        assert_eq!((route.endpoint.path(), route.endpoint.label()), ("Groups/.search".to_string(), "Groups/.search"));
        assert_eq!(resolve("GET", "Users/.search", "").unwrap_err().status, 405);
        assert_eq!(resolve("POST", ".search/x", "").unwrap_err().status, 404);
    }

    #[test]
    fn discovery_endpoints_are_read_only() {
        let route = resolve("GET", "Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "").unwrap();
        assert_eq!(route.endpoint.path(), "Schemas/urn:ietf:params:scim:schemas:core:2.0:User");
        assert_eq!(route.endpoint.label(), "Schemas/{id}");
        assert_eq!(route.endpoint.resource_type(), None);
        assert_eq!(resolve("GET", "ServiceProviderConfig", "").unwrap().endpoint.label(), "ServiceProviderConfig");
        assert_eq!(resolve("GET", "ResourceTypes/User", "").unwrap().endpoint.path(), "ResourceTypes/User");
        let error = resolve("POST", "Schemas", "").unwrap_err();
        assert_eq!((error.status, error.headers.clone()), (405, vec![("allow", "GET".to_string())]));
        for rest in ["ServiceProviderConfig/x", "Schemas/x/y", "ResourceTypes/a%2Fb"] {
            assert_eq!(resolve("GET", rest, "").unwrap_err().status, 404, "{rest}");
        }
    }

    #[test]
    fn log_labels_of_first_segments_are_the_endpoints_names_and_nothing_a_client_chose() {
        for name in ["Users", "Groups", ".search", "ServiceProviderConfig", "Schemas", "ResourceTypes", "Me", "Bulk"] {
            assert_eq!(label_of(name), Some(name));
        }
        for other in ["", "users", "Users ", "evil", "Users/x"] {
            assert_eq!(label_of(other), None);
        }
    }

    #[test]
    fn resource_ids_are_safe_path_segments() {
        assert!(is_resource_id("2819c223-7f76-453a-919d-413861904646"));
        assert!(is_resource_id("user%40example.com"));
        assert!(is_resource_id("a:b@c"));
        for bad in [
            "", ".", "..", "%2e", "%2E%2e", ".%2e", "%2e.", "a%2Fb", "a%2fb", "a%5Cb", "a%00", "a%zz", "a%2", "a;b",
            "a b", "a\"b", "a\\b",
        ] {
            assert!(!is_resource_id(bad), "{bad}");
        }
        assert!(!is_resource_id(&"a".repeat(1025)));
    }
}
