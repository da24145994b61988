//! The upstream SCIM service: how a routed request becomes the host HTTP callout, and how the
//! callout's outcome becomes the client's response.
//!
//! The request sent upstream is built from parsed parts, never by copying client headers: only an
//! allow-list travels (`If-Match`, `If-None-Match`, `X-Request-Id`), the client's `Authorization`
//! is replaced by the gateway's own credential for the upstream.

use std::fmt;
use std::time::Duration;

use crate::http::{is_scim_json, Response, SCIM_MEDIA_TYPE};
use crate::mapping::{Policy, Projection};
use crate::route::Route;
use crate::scim::value::parse_json;
use crate::scim_error::ScimError;

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
    /// `://{authority}{base_path}`: how the upstream's own URLs show in its bodies.
    url_marker: String,
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
            url_marker: format!("://{authority}{base_path}"),
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
                // u64, not the u128 of as_millis(): formatting a u128 costs the module 1.6 KB.
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
    let body = if reply.body.is_empty() {
        reply.body
    } else if !json {
        return Err(UpstreamFailure::Malformed);
    } else {
        headers.push(("content-type".to_string(), SCIM_MEDIA_TYPE.to_string()));
        rewrite_body(reply.body, upstream, public, strip, projection).ok_or(UpstreamFailure::Malformed)?
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
/// resource of a ListResponse, keeps `id`, `schemas`, `meta` and its mapped attributes), and the
/// upstream's own URLs — `meta.location` (RFC 7643 §3.1) and `$ref` values — point at the
/// gateway, so clients never see, or follow, the internal address. The body is parsed once: a
/// body that needs neither is only checked to be JSON and returned as it came. `None` when it is
/// not JSON.
fn rewrite_body(
    body: Vec<u8>,
    upstream: &Upstream,
    public: &PublicBase,
    strip: Option<&Policy>,
    projection: Option<&Projection>,
) -> Option<Vec<u8>> {
    // Stripping or projecting walks the parsed document anyway, and the URL rewrite with it; only
    // a body relayed as it came is searched for the upstream's address first.
    let reshaped = strip.is_some() || projection.is_some();
    let has_urls = public.0.is_some() && (reshaped || contains_url(&body, upstream.url_marker.as_bytes()));
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
    if has_urls {
        rewrite_urls(&mut document, upstream, public);
    }
    // Written into a buffer the size of the body it replaces: no growth steps on the way.
    let mut rewritten = Vec::with_capacity(body.len() + body.len() / 8);
    Some(match serde_json::to_writer(&mut rewritten, &document) {
        Ok(()) => rewritten,
        Err(_) => body,
    })
}

/// Whether `haystack` holds `marker` (`://authority/base`), the authority and path ASCII
/// case-insensitively. This runs on every body relayed unchanged: it jumps from one `:` to the
/// next with memchr, and JSON has one after every key, so the two bytes after it are checked for
/// `//` before the marker is compared.
fn contains_url(haystack: &[u8], marker: &[u8]) -> bool {
    memchr::memchr_iter(b':', haystack).any(|at| {
        haystack.get(at + 1..at + 3) == Some(b"//".as_slice())
            && haystack.get(at..at + marker.len()).is_some_and(|candidate| candidate.eq_ignore_ascii_case(marker))
    })
}

fn rewrite_urls(document: &mut serde_json::Value, upstream: &Upstream, public: &PublicBase) {
    let mut stack = vec![document];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match value {
                        serde_json::Value::String(url) if key == "location" || key == "$ref" => {
                            let own = url.split_once("://").is_some_and(|(_, rest)| {
                                rest.get(..upstream.authority.len())
                                    .is_some_and(|host| host.eq_ignore_ascii_case(&upstream.authority))
                            });
                            if let Some(rewritten) =
                                own.then(|| rewrite_location(url, &upstream.base_path, public)).flatten()
                            {
                                *url = rewritten;
                            }
                        }
                        other => stack.push(other),
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// Rewrites an upstream `Location` (`http://10.0.0.5:8081/v2/Users/7`) to the gateway's address
/// (`https://edge.example/api/scim/v2/Users/7`). A location outside the upstream's SCIM base,
/// or with no public base to rewrite to, is dropped: it would only reveal the internal address.
pub fn rewrite_location(location: &str, base_path: &str, public: &PublicBase) -> Option<String> {
    let public = public.0.as_deref()?;
    let path = match location.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|i| rest.get(i..))?,
        None if location.starts_with('/') => location,
        None => return None,
    };
    let below = path.strip_prefix(base_path)?;
    (below.is_empty() || below.starts_with('/')).then(|| format!("{public}{below}"))
}

#[cfg(test)]
mod tests {
    use super::*;
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
        relay(reply, &upstream(), &public(), None, &Projection::default())
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
    fn upstream_scim_errors_are_relayed_as_they_are() {
        let body =
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness"}"#;
        let response = relay_as_is(reply(409, "application/scim+json", body)).unwrap();
        assert_eq!((response.status, response.body.as_slice()), (409, body.as_bytes()));
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
    fn the_upstreams_own_urls_in_bodies_point_at_the_edge() {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "Resources": [{
                "id": "g1",
                "meta": {"location": "http://scim-upstream/v2/Groups/g1", "resourceType": "Group"},
                "members": [
                    {"value": "u1", "$ref": "http://SCIM-UPSTREAM/v2/Users/u1"},
                    {"value": "u2", "$ref": "https://elsewhere.example/v2/Users/u2"},
                    {"value": "u3", "$ref": "../Users/u3"}
                ],
                "displayName": "http://scim-upstream/v2/Users/not-a-url-attribute"
            }]
        });
        let response = relay_as_is(reply(200, "application/scim+json", &body.to_string())).unwrap();
        let relayed: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        let group = &relayed["Resources"][0];
        assert_eq!(group["meta"]["location"], "https://edge.example/api/scim/v2/Groups/g1");
        assert_eq!(group["members"][0]["$ref"], "https://edge.example/api/scim/v2/Users/u1");
        assert_eq!(group["members"][1]["$ref"], "https://elsewhere.example/v2/Users/u2");
        assert_eq!(group["members"][2]["$ref"], "../Users/u3");
        assert_eq!(group["displayName"], "http://scim-upstream/v2/Users/not-a-url-attribute");
    }

    #[test]
    fn the_marker_search_is_case_insensitive_and_bounded() {
        assert!(contains_url(b"x://Scim-Upstream/v2/Users", b"://scim-upstream/v2"));
        assert!(!contains_url(b"x://scim-upstream/v3", b"://scim-upstream/v2"));
        assert!(!contains_url(b"ends with :", b"://scim-upstream/v2"));
        assert!(contains_url(br#"{"a":"http://other/v2","b":"HTTP://SCIM-UPSTREAM/v2/x"}"#, b"://scim-upstream/v2"));
        assert!(!contains_url(br#"{"a":"http://other/v2","b":1}"#, b"://scim-upstream/v2"));
    }

    #[test]
    fn bodies_without_upstream_urls_are_relayed_byte_for_byte() {
        let body = r#"{"id": "7",   "userName": "ada"}"#;
        let response = relay_as_is(reply(200, "application/scim+json", body)).unwrap();
        assert_eq!(response.body, body.as_bytes());
    }

    #[test]
    fn locations_outside_the_upstream_base_are_dropped() {
        let public = public();
        assert_eq!(
            rewrite_location("/v2/Groups/1", "/v2", &public).as_deref(),
            Some("https://edge.example/api/scim/v2/Groups/1")
        );
        assert_eq!(
            rewrite_location("http://u/v2", "/v2", &public).as_deref(),
            Some("https://edge.example/api/scim/v2")
        );
        assert_eq!(rewrite_location("http://u/v2x/Users", "/v2", &public), None);
        assert_eq!(rewrite_location("http://u/admin", "/v2", &public), None);
        assert_eq!(rewrite_location("Users/1", "/v2", &public), None);
        assert_eq!(rewrite_location("/v2/Users/1", "/v2", &PublicBase::new(None, Some("a b"), "/s")), None);
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
