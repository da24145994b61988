//! The upstream SCIM service: how a routed request becomes the host HTTP callout, and how the
//! callout's outcome becomes the client's response.
//!
//! The request sent upstream is built from parsed parts, never by copying client headers: only an
//! allow-list travels (`If-Match`, `If-None-Match`, `X-Request-Id`), the client's `Authorization`
//! is replaced by the gateway's own credential for the upstream.

use std::fmt;
use std::time::Duration;

use crate::http::{is_scim_json, Response, SCIM_MEDIA_TYPE};
use crate::mapping::Policy;
use crate::route::{is_resource_id, ResourceType, Route};
use crate::scim::query::Projection;
use crate::scim::value::parse_json;
use crate::scim_error::{shown_within, ScimError, ScimType, ERROR_SCHEMA};

/// Client request headers forwarded upstream as they are (RFC 7644 §3.14 versioning, tracing).
pub const FORWARDED_REQUEST_HEADERS: &[&str] = &["if-match", "if-none-match", "x-request-id"];

/// Upstream response headers relayed to the client besides `Content-Type`. `Location` and
/// `Content-Location` are rewritten to the gateway's address.
pub const RELAYED_RESPONSE_HEADERS: &[&str] = &["etag", "location", "content-location", "retry-after"];

pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// A digest of cluster and credential, so neither the credential nor anything that reveals it is
/// stored in shared data.
fn budget_key(cluster: &str, bearer_token: &str) -> String {
    let digest = crate::auth::sha256_hex(format!("{cluster}\n{bearer_token}").as_bytes());
    format!("scim_edge.budget.{}", digest.get(..16).unwrap_or_default())
}

/// Where the gateway sends SCIM calls: an Envoy cluster, the `:authority` and base path the
/// upstream expects, the callout timeout and the upstream's own bearer credential.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    pub cluster: String,
    pub authority: String,
    /// The upstream's SCIM base path, no trailing slash (`/v2`, `/api/scim/v2`, or empty).
    pub base_path: String,
    pub timeout: Duration,
    /// `Bearer <credential>`, ready to send.
    authorization: String,
    /// Largest response body relayed; larger ones are a 502.
    pub max_response_bytes: usize,
    /// Longest wait the edge accepts from an upstream `Retry-After`, for the relayed header and the
    /// budget's back-off alike.
    pub max_retry_after_s: u64,
    /// Shared-data key of this credential's request budget (see [`Upstream::budget_key`]).
    budget_key: String,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("cluster", &self.cluster)
            .field("authority", &self.authority)
            .field("base_path", &self.base_path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One callout, ready for `dispatch_http_call`.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamCall {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl UpstreamCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for UpstreamCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), if n == "authorization" { "[redacted]" } else { v.as_str() }))
            .collect();
        f.debug_struct("UpstreamCall")
            .field("cluster", &self.cluster)
            .field("headers", &headers)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Upstream {
    pub fn new(cluster: &str, authority: &str, base_path: &str, timeout: Duration, bearer_token: &str) -> Self {
        Upstream {
            cluster: cluster.to_string(),
            authority: authority.to_string(),
            base_path: base_path.to_string(),
            timeout,
            authorization: format!("Bearer {bearer_token}"),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_retry_after_s: crate::retry_after::DEFAULT_MAX_RETRY_AFTER_S,
            budget_key: budget_key(cluster, bearer_token),
        }
    }

    /// The shared-data key of this upstream credential's request budget.
    pub fn budget_key(&self) -> &str {
        &self.budget_key
    }

    /// The upstream path of a route: `/api/scim/v2/Users/7?x` at the edge is `{base_path}/Users/7?x`.
    pub fn path(&self, route: &Route) -> String {
        let mut path = format!("{}/{}", self.base_path, route.endpoint.path());
        if !route.query.is_empty() {
            path.push('?');
            path.push_str(&route.query);
        }
        path
    }

    /// The callout for a route. `forwarded` holds the allow-listed client headers
    /// ([`FORWARDED_REQUEST_HEADERS`]) that were present.
    pub fn call(&self, route: &Route, forwarded: Vec<(String, String)>, body: Option<Vec<u8>>) -> UpstreamCall {
        let mut headers = vec![
            (":method".to_string(), route.method.as_str().to_string()),
            (":path".to_string(), self.path(route)),
            (":authority".to_string(), self.authority.clone()),
            ("authorization".to_string(), self.authorization.clone()),
            ("accept".to_string(), SCIM_MEDIA_TYPE.to_string()),
        ];
        if body.is_some() {
            headers.push(("content-type".to_string(), SCIM_MEDIA_TYPE.to_string()));
        }
        headers.extend(forwarded);
        UpstreamCall { cluster: self.cluster.clone(), headers, body, timeout: self.timeout }
    }
}

/// What the callout brought back, as read from the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamReply {
    /// `None` when the callout failed without a response (Envoy reports a reset that way).
    pub status: Option<u16>,
    pub content_type: Option<String>,
    /// The [`RELAYED_RESPONSE_HEADERS`] that were present, lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why the upstream gave no usable answer. Each maps to a SCIM error that says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The callout could not even be started (unknown cluster, bad headers).
    Dispatch,
    /// No connection could be made, or no healthy host.
    Unreachable,
    /// The connection was reset or closed before a response.
    Reset,
    /// No answer within the configured timeout.
    Timeout,
    /// An answer that is not SCIM JSON.
    Malformed,
    /// The upstream refused the gateway's own credential: an operator problem, not the client's.
    CredentialRejected,
    /// An answer larger than `upstream.max_response_bytes`.
    Oversized,
    /// A 5xx answer, relayed as it is (counted, not mapped).
    ServerError,
}

impl UpstreamFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamFailure::Dispatch => "dispatch",
            UpstreamFailure::Unreachable => "unreachable",
            UpstreamFailure::Reset => "reset",
            UpstreamFailure::Timeout => "timeout",
            UpstreamFailure::Malformed => "malformed",
            UpstreamFailure::CredentialRejected => "credential_rejected",
            UpstreamFailure::Oversized => "oversized",
            UpstreamFailure::ServerError => "status_5xx",
        }
    }

    pub fn error(self, upstream: &Upstream) -> ScimError {
        match self {
            UpstreamFailure::Dispatch => {
                ScimError::new(503, "The gateway could not start the call to the upstream SCIM service")
            }
            UpstreamFailure::Unreachable => {
                ScimError::new(503, "The upstream SCIM service is unreachable (connection failed)")
                    .with_header("retry-after", "10")
            }
            UpstreamFailure::Reset => {
                ScimError::new(502, "The upstream SCIM service closed the connection without answering")
            }
            UpstreamFailure::Timeout => ScimError::new(
                504,
                // u64, not the u128 of as_millis(): u128 formatting is heavy in wasm (docs/performance.md).
                format!(
                    "The upstream SCIM service did not answer within {} ms",
                    u64::try_from(upstream.timeout.as_millis()).unwrap_or(u64::MAX)
                ),
            ),
            UpstreamFailure::Malformed => {
                ScimError::new(502, "The upstream SCIM service answered with something that is not SCIM JSON")
            }
            UpstreamFailure::Oversized => ScimError::new(
                502,
                format!("The upstream SCIM service answered with more than {} bytes", upstream.max_response_bytes),
            ),
            UpstreamFailure::ServerError => ScimError::new(502, "The upstream SCIM service failed"),
            UpstreamFailure::CredentialRejected => ScimError::new(
                502,
                "The upstream SCIM service rejected the gateway's credential; the gateway operator must update it",
            ),
        }
    }
}

/// The client-facing SCIM base URL, `https://edge.example/api/scim/v2`: the Tenant URL Entra is
/// given, from the configuration (`public_base_url`), never from the request, so no client-chosen
/// `Host` ends up in a `Location` or `meta.location`. `None` when none is configured: the edge
/// then gives no URLs at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicBase(pub Option<String>);

impl PublicBase {
    /// An `http` or `https` URL with a `host[:port]` authority and a path of plain segments (or
    /// none), no trailing slash, query, fragment or user info.
    pub fn parse(url: &str) -> Result<PublicBase, &'static str> {
        const EXPECTED: &str =
            "expected http(s)://host[:port]/path, the SCIM base URL clients are given (no trailing slash, query or user info)";
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or(EXPECTED)?;
        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        let authority_ok =
            !authority.is_empty() && authority.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
        let path_ok = path.is_empty()
            || path.strip_prefix('/').is_some_and(|segments| {
                segments.split('/').all(|s| {
                    !s.is_empty()
                        && s != "."
                        && s != ".."
                        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                })
            });
        if authority_ok && path_ok {
            Ok(PublicBase(Some(url.to_string())))
        } else {
            Err(EXPECTED)
        }
    }

    /// For tests: the base a client at `scheme://authority` would be given.
    #[cfg(test)]
    pub fn new(scheme: Option<&str>, authority: Option<&str>, scim_prefix: &str) -> Self {
        let scheme = scheme.unwrap_or("https");
        authority.and_then(|a| PublicBase::parse(&format!("{scheme}://{a}{scim_prefix}")).ok()).unwrap_or_default()
    }
}

/// Maps the callout outcome to the client's response. Envoy completes a failed callout with its
/// own plain-text local reply (503 `upstream connect error or disconnect/reset before headers...`,
/// 504 `upstream request timeout`); those, and anything else that is not SCIM JSON, become SCIM
/// errors that say what happened instead of being relayed.
pub fn relay(
    reply: UpstreamReply,
    upstream: &Upstream,
    public: &PublicBase,
    resource_type: Option<ResourceType>,
    policy: Option<&Policy>,
    projection: &Projection,
) -> Result<Response, UpstreamFailure> {
    let status = reply.status.ok_or(UpstreamFailure::Reset)?;
    let json = reply.content_type.as_deref().is_some_and(is_scim_json);
    if !json {
        if let Some(failure) = envoy_local_reply(status, &reply.body) {
            return Err(failure);
        }
    }
    if status == 401 {
        return Err(UpstreamFailure::CredentialRejected);
    }
    if status == 429 && (!json || serde_json::from_slice::<serde::de::IgnoredAny>(&reply.body).is_err()) {
        // A throttling answer stays one, whatever its body: the client must keep the Retry-After.
        let mut error = ScimError::new(429, "The upstream SCIM service is rate limiting this gateway");
        if let Some((_, value)) = reply.headers.iter().find(|(name, _)| name == "retry-after") {
            error = error.with_header("retry-after", value.clone());
        }
        return Ok(error.into_response());
    }
    if !(200..=599).contains(&status) {
        return Err(UpstreamFailure::Malformed);
    }
    let mut headers = Vec::with_capacity(reply.headers.len() + 1);
    let success = (200..300).contains(&status);
    let strip = policy.filter(|_| success);
    let projection = Some(projection).filter(|p| success && !p.is_empty());
    // RFC 9110 §15.3.5: a 204 has no content, and a recipient ignores any it carries (some proxies
    // and API gateways add one).
    let body = if reply.body.is_empty() || status == 204 {
        Vec::new()
    } else if !json {
        return Err(UpstreamFailure::Malformed);
    } else {
        headers.push(("content-type".to_string(), SCIM_MEDIA_TYPE.to_string()));
        if success {
            rewrite_body(reply.body, upstream, public, resource_type, strip, projection)
        } else {
            error_body(status, &reply.body)
        }
        .ok_or(UpstreamFailure::Malformed)?
    };
    for (name, value) in reply.headers {
        if name == "location" || name == "content-location" {
            if let Some(rewritten) = rewrite_location(&value, &upstream.base_path, public) {
                headers.push((name, rewritten));
            }
        } else if RELAYED_RESPONSE_HEADERS.contains(&name.as_str()) {
            headers.push((name, value));
        }
    }
    Ok(Response { status, headers, body })
}

/// Most characters of an upstream error's `detail` relayed.
pub const UPSTREAM_DETAIL_CHARS: usize = 256;

/// An upstream error as the client gets it (RFC 7644 §3.12): the error schema, the HTTP status,
/// the upstream's `scimType` when it is one of RFC 7644's and a bounded `detail`, nothing else.
/// An error body may embed anything (Omni's 409 embeds the existing user, with attributes the
/// mapping removes). `None` when the body is not JSON.
fn error_body(status: u16, body: &[u8]) -> Option<Vec<u8>> {
    use serde_json::Value;
    let document: Value = parse_json(body, false).ok()?;
    let mut error = serde_json::Map::new();
    error.insert("schemas".into(), Value::Array(vec![ERROR_SCHEMA.into()]));
    error.insert("status".into(), status.to_string().into());
    if let Some(scim_type) = document.get("scimType").and_then(Value::as_str).and_then(ScimType::parse) {
        error.insert("scimType".into(), scim_type.as_str().into());
    }
    if let Some(detail) = document.get("detail").and_then(Value::as_str) {
        error.insert("detail".into(), shown_within(detail, UPSTREAM_DETAIL_CHARS).into());
    }
    serde_json::to_vec(&error).ok()
}

/// Recognises the local replies Envoy's router gives a callout that got no upstream response.
fn envoy_local_reply(status: u16, body: &[u8]) -> Option<UpstreamFailure> {
    let text = std::str::from_utf8(body).ok()?;
    match status {
        503 if text.starts_with("no healthy upstream") => Some(UpstreamFailure::Unreachable),
        503 if text.starts_with("upstream connect error or disconnect/reset before headers") => {
            // Envoy's reset reasons: "local/remote connection failure" and "connection timeout" mean
            // no connection was made, "overflow" that the circuit breaker refused one; the rest
            // ("connection termination", "remote reset", "protocol error"...) came after connecting.
            if ["connection failure", "connection timeout", "overflow"].iter().any(|r| text.contains(r)) {
                Some(UpstreamFailure::Unreachable)
            } else {
                Some(UpstreamFailure::Reset)
            }
        }
        504 if text.starts_with("upstream request timeout") => Some(UpstreamFailure::Timeout),
        _ => None,
    }
}

/// Rewrites a response body: the mapping strips what the client may not see (a resource, or each
/// resource of a ListResponse, keeps `id`, `schemas`, `meta` and its mapped attributes), and no
/// upstream URL reaches the client: each resource's `meta.location` (RFC 7643 §3.1) is rebuilt
/// on the public base from its resource type and `id`, and every other `location` or `$ref`
/// value is mapped to the edge when it names a User or Group below the upstream's base, or
/// dropped. The body is parsed once: a body that needs none of this is only checked to be JSON
/// and returned as it came. `None` when it is not JSON.
fn rewrite_body(
    body: Vec<u8>,
    upstream: &Upstream,
    public: &PublicBase,
    resource_type: Option<ResourceType>,
    strip: Option<&Policy>,
    projection: Option<&Projection>,
) -> Option<Vec<u8>> {
    let reshaped = strip.is_some() || projection.is_some();
    let has_urls = has_url_member(&body);
    if !has_urls && !reshaped {
        return serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok().then_some(body);
    }
    let mut document = parse_json(&body, false).ok()?;
    if let Some(policy) = strip {
        policy.strip_response(&mut document);
    }
    if let Some(projection) = projection {
        projection.apply(&mut document);
    }
    edge_urls(&mut document, resource_type, upstream, public);
    // Written into a buffer the size of the body it replaces: no growth steps on the way.
    let mut rewritten = Vec::with_capacity(body.len() + body.len() / 8);
    serde_json::to_writer(&mut rewritten, &document).ok().map(|()| rewritten)
}

/// The edge's own URLs in a 2xx body: see [`rewrite_body`].
fn edge_urls(
    document: &mut serde_json::Value,
    resource_type: Option<ResourceType>,
    upstream: &Upstream,
    public: &PublicBase,
) {
    use serde_json::Value;
    let mut stack = vec![&mut *document];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                map.retain(|key, value| match value {
                    Value::String(url) if key == "location" || key == "$ref" => {
                        match edge_url(url, &upstream.authority, &upstream.base_path, public) {
                            Some(mapped) => {
                                *url = mapped;
                                true
                            }
                            None => false,
                        }
                    }
                    _ => true,
                });
                stack.extend(map.iter_mut().map(|(_, v)| v));
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    // After the pass above: these are the edge's own.
    match document.get_mut("Resources") {
        Some(Value::Array(resources)) => {
            for resource in resources {
                rebuild_meta_location(resource, resource_type, public);
            }
        }
        _ => rebuild_meta_location(document, resource_type, public),
    }
}

/// A resource's `meta.location`, from its resource type (the endpoint's, or for a root search
/// its own `meta.resourceType`) and its `id`, on the public base; removed when either is
/// missing or the id cannot be a path segment.
fn rebuild_meta_location(resource: &mut serde_json::Value, resource_type: Option<ResourceType>, public: &PublicBase) {
    let id = resource.get("id").and_then(serde_json::Value::as_str).and_then(id_segment);
    let Some(serde_json::Value::Object(meta)) = resource.get_mut("meta") else {
        return;
    };
    let own_type = match meta.get("resourceType").and_then(serde_json::Value::as_str) {
        Some("User") => Some(ResourceType::User),
        Some("Group") => Some(ResourceType::Group),
        _ => None,
    };
    let location = match (public.0.as_deref(), resource_type.or(own_type), id) {
        (Some(base), Some(rt), Some(id)) => Some(format!("{base}/{}/{id}", rt.endpoint())),
        _ => None,
    };
    match location {
        Some(location) => {
            meta.insert("location".to_string(), location.into());
        }
        None => {
            meta.remove("location");
        }
    }
}

/// A resource id as one path segment: percent-encoded where it must be, `None` for an id no URL
/// should carry (empty, a dot segment, a slash or backslash, control characters, over 1 KiB).
fn id_segment(id: &str) -> Option<String> {
    if id.is_empty() || id == "." || id == ".." || id.len() > 1024 {
        return None;
    }
    let mut segment = String::with_capacity(id.len());
    for byte in id.bytes() {
        match byte {
            b'/' | b'\\' => return None,
            b if b.is_ascii_control() => return None,
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b) => segment.push(char::from(b)),
            b => segment.push_str(percent_encoding::percent_encode_byte(b)),
        }
    }
    Some(segment)
}

/// An upstream URL as the client may see it: `http://10.0.0.5:8081/v2/Users/7` (on the upstream's
/// `authority`) or `/v2/Users/7` becomes `https://edge.example/api/scim/v2/Users/7`. Only a User
/// or Group below the upstream's SCIM base, with an id that is a safe path segment (no dot
/// segment, also percent-encoded), is mapped; anything else is `None`, to be dropped: it would
/// only reveal the internal address, or point the client somewhere the edge does not serve.
pub fn edge_url(url: &str, authority: &str, base_path: &str, public: &PublicBase) -> Option<String> {
    let public = public.0.as_deref()?;
    // Already the edge's (a `$ref` the client sent, stored and given back): checked the same way.
    if let Some(below) = url.get(..public.len()).filter(|head| head.eq_ignore_ascii_case(public)) {
        let rest = url.get(below.len()..).unwrap_or_default();
        return below_base(rest, public);
    }
    let path = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            let (host, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
            if !host.eq_ignore_ascii_case(authority) {
                return None;
            }
            path
        }
        Some(_) => return None,
        None if url.starts_with('/') && !url.starts_with("//") => url,
        None => return None,
    };
    below_base(path.strip_prefix(base_path)?, public)
}

/// `/Users/{id}` or `/Groups/{id}` below a SCIM base, on the public base; `None` for anything else.
fn below_base(below: &str, public: &str) -> Option<String> {
    let (endpoint, id) = below.strip_prefix('/')?.split_once('/')?;
    let resource_type = match endpoint {
        "Users" => ResourceType::User,
        "Groups" => ResourceType::Group,
        _ => return None,
    };
    is_resource_id(id).then(|| format!("{public}/{}/{id}", resource_type.endpoint()))
}

/// Rewrites an upstream `Location` or `Content-Location` header: see [`edge_url`]. Unlike body
/// URLs, a header's absolute URL may name any host (the upstream's own idea of its address):
/// only its path is kept, and rebuilt.
pub fn rewrite_location(location: &str, base_path: &str, public: &PublicBase) -> Option<String> {
    let path = match location.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            rest.find('/').and_then(|i| rest.get(i..))?
        }
        Some(_) => return None,
        None => location,
    };
    edge_url(path, "", base_path, public)
}

/// Whether a JSON body may name a URL: a `"location"` or `"$ref"` member. Found from each quote
/// (memchr's byte search) rather than with a substring searcher, for the module's size.
fn has_url_member(body: &[u8]) -> bool {
    memchr::memchr_iter(b'"', body).any(|at| {
        let rest = body.get(at..).unwrap_or_default();
        rest.starts_with(b"\"location\"") || rest.starts_with(b"\"$ref\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_names_a_url_only_in_a_location_or_ref_member() {
        assert!(has_url_member(br#"{"meta":{"location":"https://x/Users/1"}}"#));
        assert!(has_url_member(br#"{"members":[{"$ref":"https://x/Users/1","value":"1"}]}"#));
        assert!(!has_url_member(br#"{"displayName":"location and $ref are just words here"}"#));
        assert!(!has_url_member(b""));
    }
    use crate::route::resolve;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn upstream() -> Upstream {
        Upstream::new("scim_upstream", "scim-upstream", "/v2", Duration::from_millis(1500), "up-secret")
    }

    fn public() -> PublicBase {
        PublicBase::new(Some("https"), Some("edge.example"), "/api/scim/v2")
    }

    /// `relay` with no mapping and no attribute selection.
    fn relay_as_is(reply: UpstreamReply) -> Result<Response, UpstreamFailure> {
        relay(reply, &upstream(), &public(), None, None, &Projection::default())
    }

    fn reply(status: u16, content_type: &str, body: &str) -> UpstreamReply {
        UpstreamReply {
            status: Some(status),
            content_type: Some(content_type.to_string()),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_call_goes_to_the_upstream_base_path_with_the_upstream_credential() {
        let route = resolve("PATCH", "Users/7", "attributes=userName").unwrap();
        let call = upstream().call(&route, vec![("if-match".into(), "W/\"1\"".into())], Some(b"{}".to_vec()));
        assert_eq!(call.cluster, "scim_upstream");
        assert_eq!(call.timeout, Duration::from_millis(1500));
        assert_eq!(call.header(":method"), Some("PATCH"));
        assert_eq!(call.header(":path"), Some("/v2/Users/7?attributes=userName"));
        assert_eq!(call.header(":authority"), Some("scim-upstream"));
        assert_eq!(call.header("authorization"), Some("Bearer up-secret"));
        assert_eq!(call.header("content-type"), Some("application/scim+json"));
        assert_eq!(call.header("if-match"), Some("W/\"1\""));
        assert_eq!(call.body.as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn bodyless_calls_carry_no_content_type_and_empty_base_path_works() {
        let route = resolve("GET", "Groups", "").unwrap();
        let root = Upstream::new("c", "a", "", Duration::from_secs(1), "t");
        let call = root.call(&route, vec![], None);
        assert_eq!(call.header(":path"), Some("/Groups"));
        assert_eq!(call.header("content-type"), None);
    }

    #[test]
    fn debug_output_redacts_the_credential() {
        let call = upstream().call(&resolve("GET", "Users", "").unwrap(), vec![], None);
        assert!(!format!("{call:?}").contains("up-secret"));
        assert!(!format!("{:?}", upstream()).contains("up-secret"));
    }

    #[test]
    fn scim_responses_are_relayed_with_rewritten_locations() {
        let mut created = reply(201, "application/scim+json", r#"{"id":"7"}"#);
        created.headers =
            vec![("location".into(), "http://127.0.0.1:8081/v2/Users/7".into()), ("etag".into(), "W/\"1\"".into())];
        let response = relay_as_is(created).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, br#"{"id":"7"}"#);
        assert_eq!(response.header("content-type"), Some("application/scim+json"));
        assert_eq!(response.header("location"), Some("https://edge.example/api/scim/v2/Users/7"));
        assert_eq!(response.header("etag"), Some("W/\"1\""));
    }

    #[test]
    fn plain_json_is_relayed_as_scim_json_and_204_has_no_content_type() {
        let response = relay_as_is(reply(200, "application/json; charset=utf-8", "{}")).unwrap();
        assert_eq!(response.header("content-type"), Some("application/scim+json"));
        let deleted = UpstreamReply { status: Some(204), ..Default::default() };
        let response = relay_as_is(deleted).unwrap();
        assert_eq!((response.status, response.header("content-type")), (204, None));
    }

    #[test]
    fn upstream_errors_are_relayed_as_schemas_status_scim_type_and_a_bounded_detail() {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error", "urn:omni:error"],
            "status": "400",
            "scimType": "uniqueness",
            "detail": format!("userName taken by {}", "x".repeat(1000)),
            "existing": {"id": "u1", "userName": "ada@example.com", "omni_user_groups": ["admins"]},
            "location": "http://scim-upstream/v2/Users/u1",
        });
        let response = relay_as_is(reply(409, "application/scim+json", &body.to_string())).unwrap();
        assert_eq!(response.status, 409);
        let relayed: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        let keys: Vec<&str> = relayed.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["detail", "schemas", "scimType", "status"]);
        assert_eq!(relayed["schemas"], serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
        assert_eq!(relayed["status"], "409", "the status the client gets, whatever the body says");
        assert_eq!(relayed["scimType"], "uniqueness");
        assert_eq!(relayed["detail"].as_str().unwrap().chars().count(), UPSTREAM_DETAIL_CHARS + 1);

        let odd = r#"{"scimType":"<script>","detail":7,"Resources":[{"id":"1"}]}"#;
        let relayed: serde_json::Value =
            serde_json::from_slice(&relay_as_is(reply(404, "application/scim+json", odd)).unwrap().body).unwrap();
        assert_eq!(relayed, serde_json::json!({"schemas": [ERROR_SCHEMA], "status": "404"}));
        assert_eq!(relay_as_is(reply(500, "application/scim+json", "[1,2]")).unwrap().status, 500);
    }

    #[test]
    fn a_204_is_relayed_without_the_body_it_carries() {
        for (content_type, body) in [("text/plain", "OK"), ("application/scim+json", "{}"), ("", "not json")] {
            let response = relay_as_is(reply(204, content_type, body)).unwrap();
            assert_eq!((response.status, response.body.as_slice()), (204, &b""[..]), "{content_type} {body}");
            assert_eq!(response.header("content-type"), None);
        }
    }

    #[test]
    fn envoy_callout_failures_are_told_apart() {
        let cases = [
            (503, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused", UpstreamFailure::Unreachable),
            (503, "upstream connect error or disconnect/reset before headers. reset reason: connection timeout", UpstreamFailure::Unreachable),
            (503, "upstream connect error or disconnect/reset before headers. reset reason: overflow", UpstreamFailure::Unreachable),
            (503, "upstream connect error or disconnect/reset before headers. reset reason: connection termination", UpstreamFailure::Reset),
            (503, "no healthy upstream", UpstreamFailure::Unreachable),
            (504, "upstream request timeout", UpstreamFailure::Timeout),
            (200, "<html>hello</html>", UpstreamFailure::Malformed),
            (502, "Bad Gateway", UpstreamFailure::Malformed),
        ];
        for (status, body, failure) in cases {
            assert_eq!(relay_as_is(reply(status, "text/plain", body)), Err(failure), "{body}");
        }
        let reset = UpstreamReply::default();
        assert_eq!(relay_as_is(reset), Err(UpstreamFailure::Reset));
    }

    #[test]
    fn a_plain_text_429_stays_a_429_with_its_retry_after() {
        let mut throttled = reply(429, "text/plain", "Too Many Requests");
        throttled.headers = vec![("retry-after".into(), "5".into())];
        let response = relay_as_is(throttled).unwrap();
        assert_eq!((response.status, response.header("retry-after")), (429, Some("5")));
        assert_eq!(response.header("content-type"), Some("application/scim+json"));
    }

    #[test]
    fn broken_json_and_rejected_credentials_are_upstream_failures() {
        assert_eq!(relay_as_is(reply(200, "application/scim+json", "{\"id\":")), Err(UpstreamFailure::Malformed));
        assert_eq!(relay_as_is(reply(401, "application/scim+json", "{}")), Err(UpstreamFailure::CredentialRejected));
    }

    #[test]
    fn failures_become_scim_errors_with_the_right_status() {
        let up = upstream();
        assert_eq!(UpstreamFailure::Unreachable.error(&up).status, 503);
        assert_eq!(UpstreamFailure::Reset.error(&up).status, 502);
        assert_eq!(UpstreamFailure::Timeout.error(&up).status, 504);
        assert!(UpstreamFailure::Timeout.error(&up).detail.contains("1500 ms"));
        assert_eq!(UpstreamFailure::Malformed.error(&up).status, 502);
    }

    #[test]
    fn no_upstream_url_reaches_the_client() {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "Resources": [{
                "id": "g1",
                "meta": {"location": "http://10.0.0.5:8081/internal/Groups/g1", "resourceType": "Group"},
                "members": [
                    {"value": "u1", "$ref": "http://SCIM-UPSTREAM/v2/Users/u1"},
                    {"value": "u2", "$ref": "https://elsewhere.example/v2/Users/u2"},
                    {"value": "u3", "$ref": "../Users/u3"},
                    {"value": "u4", "$ref": "/v2/Users/u4"},
                    {"value": "u5", "$ref": "http://scim-upstream/v2/Users/%2e%2e"},
                    {"value": "u6", "$ref": "http://scim-upstream/v2/../../admin"},
                    {"value": "u7", "$ref": "http://scim-upstream/v2/Users/u7/../../x"},
                    {"value": "u8", "$ref": "javascript:alert(1)"},
                    {"value": "u9", "$ref": "HTTPS://EDGE.EXAMPLE/api/scim/v2/Users/u9"},
                    {"value": "u10", "$ref": "https://edge.example/api/scim/v2/Users/../../admin"}
                ],
                "displayName": "http://scim-upstream/v2/Users/not-a-url-attribute"
            }, {
                "id": "../../admin",
                "meta": {"location": "http://scim-upstream/v2/Users/x", "resourceType": "User"}
            }, {
                "id": "a b%",
                "meta": {"resourceType": "Thing", "location": "http://scim-upstream/v2/Things/x"}
            }]
        });
        let response = relay_as_is(reply(200, "application/scim+json", &body.to_string())).unwrap();
        let relayed: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        let group = &relayed["Resources"][0];
        assert_eq!(group["meta"]["location"], "https://edge.example/api/scim/v2/Groups/g1", "rebuilt from type and id");
        let refs: Vec<Option<&str>> = group["members"].as_array().unwrap().iter().map(|m| m["$ref"].as_str()).collect();
        assert_eq!(
            refs,
            [
                Some("https://edge.example/api/scim/v2/Users/u1"),
                None,
                None,
                Some("https://edge.example/api/scim/v2/Users/u4"),
                None,
                None,
                None,
                None,
                Some("https://edge.example/api/scim/v2/Users/u9"),
                None
            ]
        );
        assert_eq!(group["members"][1]["value"], "u2", "the member stays, without the URL");
        assert_eq!(group["displayName"], "http://scim-upstream/v2/Users/not-a-url-attribute");
        assert_eq!(relayed["Resources"][1]["meta"], serde_json::json!({"resourceType": "User"}), "no URL for that id");
        assert_eq!(relayed["Resources"][2]["meta"], serde_json::json!({"resourceType": "Thing"}));
        assert!(!String::from_utf8_lossy(&response.body).contains("scim-upstream/v2/Users/u"));
    }

    #[test]
    fn ids_become_escaped_path_segments_or_none() {
        assert_eq!(id_segment("2819c223-7f76").as_deref(), Some("2819c223-7f76"));
        assert_eq!(id_segment("ada@example.com").as_deref(), Some("ada@example.com"));
        assert_eq!(id_segment("a b%").as_deref(), Some("a%20b%25"));
        assert_eq!(id_segment("%2e%2e").as_deref(), Some("%252e%252e"), "a literal percent is escaped");
        for bad in ["", ".", "..", "a/b", "a\\b", "a\u{0}"] {
            assert_eq!(id_segment(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bodies_without_upstream_urls_are_relayed_byte_for_byte() {
        let body = r#"{"id": "7",   "userName": "ada"}"#;
        let response = relay_as_is(reply(200, "application/scim+json", body)).unwrap();
        assert_eq!(response.body, body.as_bytes());
    }

    #[test]
    fn locations_outside_the_upstream_base_or_with_dot_segments_are_dropped() {
        let public = public();
        assert_eq!(
            rewrite_location("/v2/Groups/1", "/v2", &public).as_deref(),
            Some("https://edge.example/api/scim/v2/Groups/1")
        );
        assert_eq!(
            rewrite_location("http://10.0.0.5:8081/v2/Users/7", "/v2", &public).as_deref(),
            Some("https://edge.example/api/scim/v2/Users/7")
        );
        for dropped in [
            "http://u/v2",
            "http://u/v2x/Users/1",
            "http://u/admin",
            "Users/1",
            "/v2/../../admin",
            "/v2/Users/../../admin",
            "/v2/Users/%2e%2e",
            "/v2/Users/.%2E",
            "/v2/Users/1/x",
            "/v2/Schemas/x",
            "//evil.example/v2/Users/1",
            "ftp://u/v2/Users/1",
        ] {
            assert_eq!(rewrite_location(dropped, "/v2", &public), None, "{dropped}");
        }
        assert_eq!(rewrite_location("/v2/Users/1", "/v2", &PublicBase(None)), None);
    }

    #[test]
    fn the_public_base_is_a_plain_http_url() {
        for good in ["https://edge.example/api/scim/v2", "http://127.0.0.1:10000/api/scim/v2", "https://[::1]:8443"] {
            assert_eq!(PublicBase::parse(good), Ok(PublicBase(Some(good.to_string()))), "{good}");
        }
        for bad in [
            "edge.example/api/scim/v2",
            "ftp://edge.example/scim",
            "https://edge.example/api/scim/v2/",
            "https://user@edge.example/scim",
            "https://edge.example/scim?x=1",
            "https://edge.example/a/../scim",
            "https://edge.example/%2e%2e/scim",
            "https:///scim",
            "https://edge example/scim",
        ] {
            assert!(PublicBase::parse(bad).is_err(), "{bad}");
        }
    }
}
