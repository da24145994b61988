//! The request flow end to end, against a host that records what was sent upstream and what the
//! client got.

use super::*;
use crate::auth::sha256_hex;
use crate::ratelimit::Bucket;
use shaping::empty_list;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

const CLIENT_TOKEN: &str = "client-token";
const UPSTREAM_TOKEN: &str = "upstream-token";

fn config() -> Rc<Config> {
    config_with(serde_json::json!({"profile": "rfc"}))
}

fn omni() -> Rc<Config> {
    config_with(serde_json::json!({"profile": "omni"}))
}

fn config_with(mapping: serde_json::Value) -> Rc<Config> {
    let json = serde_json::json!({
        "version": 1,
        "max_body_bytes": 2048,
        "tokens": [
            {"name": "entra", "sha256": sha256_hex(CLIENT_TOKEN.as_bytes())},
            {"name": "entra-next", "sha256": sha256_hex(b"next-token")},
        ],
        "upstream": {
            "cluster": "scim_upstream",
            "authority": "scim-upstream",
            "base_path": "/v2",
            "timeout_ms": 2000,
            "bearer_token": UPSTREAM_TOKEN,
        },
        "mapping": mapping,
        "public_base_url": "https://edge.example/api/scim/v2",
    });
    Rc::new(Config::from_json(json.to_string().as_bytes(), &crate::config::no_env).unwrap())
}

#[derive(Default)]
struct FakeHost {
    request_headers: Vec<(String, Vec<u8>)>,
    request_body: Vec<u8>,
    upstream_headers: Vec<(String, Vec<u8>)>,
    upstream_body: Vec<u8>,
    dispatch_error: Option<String>,
    dispatched: Vec<UpstreamCall>,
    responses: Vec<Response>,
    counters: Vec<String>,
    histograms: Vec<(&'static str, u64)>,
    clock: Duration,
    shared: std::collections::HashMap<String, (Vec<u8>, u32)>,
    /// CAS conflicts to simulate before writes succeed (another worker winning the race).
    conflicts: usize,
    /// What another worker stores under the key just before our next write (a race on creation).
    raced_by: Option<Vec<u8>>,
    /// Requests of this worker already waiting for the budget.
    waiting: usize,
}

impl Host for FakeHost {
    fn waiting(&self) -> usize {
        self.waiting
    }
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.request_headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }
    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        // As Envoy: up to `size` bytes of what is buffered.
        self.request_body.get(..size.min(self.request_body.len())).map(<[u8]>::to_vec)
    }
    fn upstream_response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.upstream_headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }
    fn upstream_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.upstream_body.get(..size).map(<[u8]>::to_vec)
    }
    fn dispatch(&mut self, call: &UpstreamCall) -> Result<u32, String> {
        match &self.dispatch_error {
            Some(reason) => Err(reason.clone()),
            None => {
                self.dispatched.push(call.clone());
                self.clock += Duration::from_millis(7);
                Ok(41 + self.dispatched.len() as u32)
            }
        }
    }
    fn send_response(&mut self, response: &Response) {
        self.responses.push(response.clone());
    }
    fn count(&mut self, counter: Counter<'_>) {
        self.counters.push(counter.name());
    }
    fn now(&self) -> Option<Duration> {
        Some(self.clock)
    }
    fn record(&mut self, histogram: Histogram, value: u64) {
        self.histograms.push((histogram.name(), value));
    }
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.shared.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite {
        if self.conflicts > 0 {
            self.conflicts -= 1;
            // The other worker's write bumps the version.
            if let Some(entry) = self.shared.get_mut(key) {
                entry.1 += 1;
            }
            return SharedWrite::Conflict;
        }
        if let Some(theirs) = self.raced_by.take() {
            let version = self.shared.get(key).map_or(0, |(_, cas)| *cas) + 1;
            self.shared.insert(key.to_string(), (theirs, version));
        }
        // As Envoy's shared data: a missing key is created whatever the CAS; an existing one is
        // written only when the CAS is 0 (none) or matches.
        let current = self.shared.get(key).map(|(_, cas)| *cas);
        if let (Some(cas), Some(current)) = (cas, current) {
            if cas != current {
                return SharedWrite::Conflict;
            }
        }
        self.shared.insert(key.to_string(), (value.to_vec(), current.unwrap_or(0) + 1));
        SharedWrite::Stored
    }
}

impl FakeHost {
    fn request(method: &str, path: &str) -> Self {
        let mut host = FakeHost::default();
        host.set(":method", method);
        host.set(":path", path);
        host.set(":authority", "edge.example");
        host.set(":scheme", "https");
        host.set("authorization", &format!("Bearer {CLIENT_TOKEN}"));
        host
    }

    fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.request_headers.retain(|(n, _)| n != name);
        self.request_headers.push((name.to_string(), value.as_bytes().to_vec()));
        self
    }

    fn unset(&mut self, name: &str) -> &mut Self {
        self.request_headers.retain(|(n, _)| n != name);
        self
    }

    fn with_body(mut self, body: &str) -> Self {
        self.set("content-type", "application/scim+json");
        self.set("content-length", &body.len().to_string());
        self.request_body = body.as_bytes().to_vec();
        self
    }

    fn upstream_answers(&mut self, status: u16, content_type: &str, body: &str) {
        self.upstream_headers = vec![
            (":status".into(), status.to_string().into_bytes()),
            ("content-type".into(), content_type.as_bytes().to_vec()),
        ];
        self.upstream_body = body.as_bytes().to_vec();
    }

    fn response(&self) -> &Response {
        assert_eq!(self.responses.len(), 1, "exactly one answer to the client");
        &self.responses[0]
    }

    fn error_body(&self) -> serde_json::Value {
        let response = self.response();
        assert_eq!(response.header("content-type"), Some("application/scim+json"));
        serde_json::from_slice(&response.body).unwrap()
    }
}

/// Drives the request part: headers, then the body in chunks of `chunk` bytes.
fn send(host: &mut FakeHost, chunk: usize) -> Exchange {
    send_to(config(), host, chunk)
}

fn send_to(config: Rc<Config>, host: &mut FakeHost, chunk: usize) -> Exchange {
    let mut exchange = Exchange::new(config, 7);
    let body_len = host.request_body.len();
    let flow = exchange.on_request_headers(host, body_len == 0);
    if body_len > 0 && flow == Flow::Continue {
        let mut delivered = 0;
        while delivered < body_len {
            delivered = (delivered + chunk).min(body_len);
            assert_eq!(exchange.on_request_body(host, delivered, delivered == body_len), Flow::Pause);
        }
    }
    exchange
}

/// The whole exchange with an upstream that answers as configured on the host.
fn round_trip(host: &mut FakeHost) {
    let mut exchange = send(host, 1000);
    assert_eq!(host.dispatched.len(), 1, "one callout");
    let body_len = host.upstream_body.len();
    exchange.on_upstream_response(host, 42, body_len);
}

#[test]
fn a_create_is_forwarded_with_the_upstream_credential_and_relayed() {
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com"}"#;
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body(user);
    host.set("if-match", "W/\"3\"").set("x-request-id", "req-1").set("cookie", "session=1");
    host.upstream_answers(201, "application/scim+json", r#"{"id":"9"}"#);
    host.upstream_headers.push(("location".into(), b"http://127.0.0.1:8081/v2/Users/9".to_vec()));

    round_trip(&mut host);

    let call = &host.dispatched[0];
    assert_eq!(call.cluster, "scim_upstream");
    assert_eq!(call.header(":method"), Some("POST"));
    assert_eq!(call.header(":path"), Some("/v2/Users"));
    assert_eq!(call.header(":authority"), Some("scim-upstream"));
    assert_eq!(call.header("authorization"), Some("Bearer upstream-token"));
    assert_eq!(call.header("content-type"), Some("application/scim+json"));
    assert_eq!(call.header("if-match"), Some("W/\"3\""));
    assert_eq!(call.header("x-request-id"), Some("req-1"));
    assert_eq!(call.header("cookie"), None);
    assert!(!call.headers.iter().any(|(_, v)| v.contains(CLIENT_TOKEN)), "client token never forwarded");
    assert_eq!(call.body.as_deref(), Some(user.as_bytes()));
    assert_eq!(call.timeout, Duration::from_secs(2));

    let response = host.response();
    assert_eq!(response.status, 201);
    assert_eq!(response.body, br#"{"id":"9"}"#);
    assert_eq!(response.header("location"), Some("https://edge.example/api/scim/v2/Users/9"));
    assert!(host.counters.contains(&"scim_edge.auth.accepted.entra".to_string()));
    assert!(host.counters.contains(&"scim_edge.responses.2xx".to_string()));
}

#[test]
fn bodyless_requests_are_dispatched_from_the_headers_callback() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users?filter=userName%20eq%20%22a%22");
    host.upstream_answers(200, "application/scim+json", r#"{"totalResults":0}"#);
    let mut exchange = Exchange::new(config(), 1);
    assert_eq!(exchange.on_request_headers(&mut host, true), Flow::Pause);
    assert_eq!(host.dispatched[0].header(":path"), Some("/v2/Users?filter=userName%20eq%20%22a%22"));
    assert_eq!(host.dispatched[0].body, None);
    let body_len = host.upstream_body.len();
    exchange.on_upstream_response(&mut host, 42, body_len);
    assert_eq!(host.response().status, 200);
}

#[test]
fn a_body_split_across_chunks_is_forwarded_whole() {
    let body =
        format!(r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"{}"}}"#, "x".repeat(900));
    let mut host = FakeHost::request("PUT", "/api/scim/v2/Users/5").with_body(&body);
    host.upstream_answers(200, "application/scim+json", "{}");
    let mut exchange = send(&mut host, 100);
    assert_eq!(host.dispatched.len(), 1);
    assert_eq!(host.dispatched[0].body.as_deref(), Some(body.as_bytes()));
    exchange.on_upstream_response(&mut host, 42, 2);
    assert_eq!(host.response().status, 200);
}

#[test]
fn a_request_that_ends_in_trailers_is_checked_and_forwarded_like_any_other() {
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com"}"#;
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body(user);
    host.upstream_answers(201, "application/scim+json", r#"{"id":"9"}"#);
    let mut exchange = Exchange::new(config(), 3);
    assert_eq!(exchange.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(exchange.on_request_body(&mut host, user.len(), false), Flow::Pause);
    assert!(host.dispatched.is_empty(), "nothing goes upstream before the request ends");
    assert_eq!(exchange.on_request_trailers(&mut host), Flow::Pause, "trailers never reach the router");
    assert_eq!(host.dispatched.len(), 1);
    assert_eq!(host.dispatched[0].body.as_deref(), Some(user.as_bytes()));
    exchange.on_upstream_response(&mut host, 42, 10);
    assert_eq!(host.response().status, 201);
}

#[test]
fn trailers_after_headers_alone_end_a_request_with_an_empty_body() {
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users");
    host.set("content-type", "application/scim+json");
    let mut exchange = Exchange::new(config(), 3);
    assert_eq!(exchange.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(exchange.on_request_trailers(&mut host), Flow::Pause);
    assert!(host.dispatched.is_empty());
    assert_eq!(host.response().status, 400);
}

#[test]
fn an_oversized_body_that_ends_in_trailers_is_413() {
    let body = format!(r#"{{"userName":"{}"}}"#, "x".repeat(3000));
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body(&body);
    host.unset("content-length");
    let mut exchange = Exchange::new(config(), 3);
    assert_eq!(exchange.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(exchange.on_request_trailers(&mut host), Flow::Pause);
    assert!(host.dispatched.is_empty());
    assert_eq!(host.response().status, 413);
}

#[test]
fn trailers_outside_the_prefix_pass_untouched() {
    let mut host = FakeHost::request("POST", "/elsewhere");
    let mut exchange = Exchange::new(config(), 3);
    assert_eq!(exchange.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(exchange.on_request_trailers(&mut host), Flow::Continue);
    assert!(host.responses.is_empty());
}

#[test]
fn a_token_of_the_rotation_set_authenticates_under_its_own_name() {
    let mut host = FakeHost::request("DELETE", "/api/scim/v2/Groups/g1");
    host.set("authorization", "Bearer next-token");
    host.upstream_headers = vec![(":status".into(), b"204".to_vec())];
    round_trip(&mut host);
    assert_eq!(host.response().status, 204);
    assert_eq!(host.response().body, b"");
    assert!(host.counters.contains(&"scim_edge.auth.accepted.entra-next".to_string()));
}

#[test]
fn unauthenticated_requests_get_401_and_nothing_reaches_the_upstream() {
    let cases: [(Option<&str>, &str, &str); 4] = [
        (None, "missing", "Bearer realm=\"scim-edge\""),
        (Some("Basic YTpi"), "malformed", "Bearer realm=\"scim-edge\", error=\"invalid_token\""),
        (Some("Bearer wrong-token"), "invalid", "Bearer realm=\"scim-edge\", error=\"invalid_token\""),
        (Some("Bearer client-token2"), "invalid", "Bearer realm=\"scim-edge\", error=\"invalid_token\""),
    ];
    for (authorization, reason, challenge) in cases {
        let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body("{}");
        match authorization {
            Some(value) => host.set("authorization", value),
            None => host.unset("authorization"),
        };
        send(&mut host, 1000);
        assert!(host.dispatched.is_empty());
        assert_eq!(host.response().status, 401);
        assert_eq!(host.response().header("www-authenticate"), Some(challenge));
        assert_eq!(host.error_body()["status"], "401");
        assert!(host.counters.contains(&format!("scim_edge.auth.rejected.{reason}")));
    }
}

#[test]
fn non_utf8_authorization_is_refused() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.request_headers.retain(|(n, _)| n != "authorization");
    host.request_headers.push(("authorization".into(), b"Bearer \xff\xfe".to_vec()));
    send(&mut host, 1000);
    assert_eq!(host.response().status, 401);
    assert!(host.dispatched.is_empty());
}

#[test]
fn authentication_comes_before_routing() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Secrets");
    host.unset("authorization");
    send(&mut host, 1000);
    assert_eq!(host.response().status, 401);
}

#[test]
fn unknown_endpoints_and_wrong_methods_are_answered_at_the_edge() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Accounts");
    send(&mut host, 1000);
    assert_eq!(host.response().status, 404);
    assert!(host.dispatched.is_empty());

    let mut host = FakeHost::request("DELETE", "/api/scim/v2/Users");
    send(&mut host, 1000);
    assert_eq!(host.response().status, 405);
    assert_eq!(host.response().header("allow"), Some("GET, POST"));
    assert!(host.dispatched.is_empty());
}

#[test]
fn requests_outside_the_prefix_pass_untouched() {
    let mut host = FakeHost::request("POST", "/healthz").with_body("not json");
    host.unset("authorization");
    let mut exchange = Exchange::new(config(), 3);
    assert_eq!(exchange.on_request_headers(&mut host, false), Flow::Continue);
    assert_eq!(exchange.on_request_body(&mut host, 8, true), Flow::Continue);
    assert!(host.responses.is_empty() && host.dispatched.is_empty() && host.counters.is_empty());
}

#[test]
fn oversized_bodies_get_413_by_length_or_by_what_arrived() {
    let big = format!(r#"{{"userName":"{}"}}"#, "x".repeat(3000));
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body(&big);
    let mut exchange = Exchange::new(config(), 1);
    assert_eq!(exchange.on_request_headers(&mut host, false), Flow::Pause);
    assert_eq!(host.response().status, 413);

    // Chunked: no Content-Length, the limit trips on the buffered size.
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body(&big);
    host.unset("content-length");
    send(&mut host, 1500);
    assert_eq!(host.response().status, 413);
    assert!(host.dispatched.is_empty());
}

#[test]
fn bodies_must_be_scim_json_objects() {
    let mut host = FakeHost::request("PATCH", "/api/scim/v2/Users/1").with_body("{}");
    host.set("content-type", "text/plain");
    send(&mut host, 1000);
    assert_eq!(host.response().status, 415);

    for body in ["[1,2]", "{\"a\":", "\"str\"", "   ", "{} {}"] {
        let mut host = FakeHost::request("PATCH", "/api/scim/v2/Users/1").with_body(body);
        send(&mut host, 1000);
        assert_eq!(host.response().status, 400, "{body}");
        assert_eq!(host.error_body()["scimType"], "invalidSyntax");
        assert!(host.dispatched.is_empty());
    }

    let mut host = FakeHost::request("POST", "/api/scim/v2/Users");
    host.set("content-type", "application/scim+json");
    send(&mut host, 1000);
    assert_eq!(host.response().status, 400, "POST without a body");
}

#[test]
fn upstream_failures_become_scim_errors_that_say_which() {
    let cases = [
        (
            503,
            "text/plain",
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            503,
            "unreachable",
        ),
        (504, "text/plain", "upstream request timeout", 504, "timeout"),
        (200, "text/html", "<html></html>", 502, "malformed"),
        (401, "application/scim+json", "{}", 502, "credential_rejected"),
    ];
    for (status, content_type, body, expected, kind) in cases {
        let mut host = FakeHost::request("GET", "/api/scim/v2/Users/1");
        host.upstream_answers(status, content_type, body);
        round_trip(&mut host);
        assert_eq!(host.response().status, expected, "{body}");
        assert_eq!(host.error_body()["status"], expected.to_string());
        assert!(host.counters.contains(&format!("scim_edge.upstream.failures.{kind}")));
    }

    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/1");
    let mut exchange = send(&mut host, 1000);
    exchange.on_upstream_response(&mut host, 42, 0); // no :status: the callout was reset
    assert_eq!(host.response().status, 502);
}

#[test]
fn a_callout_that_cannot_start_is_a_503() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.dispatch_error = Some("BadArgument".into());
    send(&mut host, 1000);
    assert_eq!(host.response().status, 503);
    assert!(host.counters.contains(&"scim_edge.upstream.failures.dispatch".to_string()));
}

#[test]
fn an_answer_for_another_callout_is_ignored() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.upstream_answers(200, "application/scim+json", "{}");
    let mut exchange = send(&mut host, 1000);
    exchange.on_upstream_response(&mut host, 999, 2);
    assert!(host.responses.is_empty());
    exchange.on_upstream_response(&mut host, 42, 2);
    assert_eq!(host.response().status, 200);
    exchange.on_upstream_response(&mut host, 42, 2);
    assert_eq!(host.responses.len(), 1, "a second answer is not relayed twice");
}

#[test]
fn entra_patches_are_forwarded_canonical_and_counted() {
    let entra = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"u1"},{"value":"u2"}]}]}"#;
    let mut host = FakeHost::request("PATCH", "/api/scim/v2/Groups/g1").with_body(entra);
    host.upstream_headers = vec![(":status".into(), b"204".to_vec())];
    round_trip(&mut host);
    let forwarded: serde_json::Value = serde_json::from_slice(host.dispatched[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        forwarded["Operations"],
        serde_json::json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "remove", "path": "members[value eq \"u2\"]"}
        ])
    );
    assert_eq!(host.response().status, 204);
    for kind in ["op_case", "member_removal"] {
        assert!(host.counters.contains(&format!("scim_edge.normalised.{kind}")), "{kind}");
    }
}

#[test]
fn queries_are_forwarded_in_canonical_encoding() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users?FILTER=username+EQ+%22a+b%22&startIndex=0");
    host.upstream_answers(200, "application/scim+json", "{}");
    round_trip(&mut host);
    assert_eq!(host.dispatched[0].header(":path"), Some("/v2/Users?filter=userName%20eq%20%22a%20b%22&startIndex=1"));
    assert!(host.counters.contains(&"scim_edge.normalised.query_reencoded".to_string()));
}

#[test]
fn invalid_requests_are_refused_before_anything_reaches_the_upstream() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users?filter=password%20eq%20%22x%22%20and");
    let mut exchange = Exchange::new(config(), 1);
    assert_eq!(exchange.on_request_headers(&mut host, true), Flow::Pause);
    assert_eq!(host.error_body()["scimType"], "invalidFilter");
    assert!(host.counters.contains(&"scim_edge.invalid.invalidFilter".to_string()));

    let mut host = FakeHost::request("POST", "/api/scim/v2/Users")
        .with_body(r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","active":"maybe"}"#);
    send(&mut host, 1000);
    assert_eq!(host.response().status, 400);
    assert_eq!(host.error_body()["scimType"], "invalidValue");
    assert_eq!(host.error_body()["detail"], "Attribute 'active' must be a boolean");

    let mut host = FakeHost::request("PATCH", "/api/scim/v2/Users/1").with_body(
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"id","value":"2"}]}"#,
    );
    send(&mut host, 1000);
    assert_eq!(host.error_body()["scimType"], "mutability");
    assert!(host.dispatched.is_empty());
}

#[test]
fn under_omni_a_lookup_on_an_unmapped_attribute_is_answered_empty_at_the_edge() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users?filter=externalId%20eq%20%22e-1%22");
    send_to(omni(), &mut host, 1000);
    assert!(host.dispatched.is_empty());
    assert_eq!(host.response().status, 200);
    let list = host.error_body();
    assert_eq!(
        (list["totalResults"].clone(), list["Resources"].clone()),
        (serde_json::json!(0), serde_json::json!([]))
    );
}

#[test]
fn under_omni_a_patch_with_nothing_mapped_is_answered_204_at_the_edge() {
    let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"name.givenName","value":"A"}]}"#;
    let mut host = FakeHost::request("PATCH", "/api/scim/v2/Users/1").with_body(body);
    send_to(omni(), &mut host, 1000);
    assert!(host.dispatched.is_empty());
    assert_eq!((host.response().status, host.response().body.len()), (204, 0));
    assert!(host.counters.contains(&"scim_edge.stripped.name_givenName".to_string()));
}

#[test]
fn under_omni_responses_carry_only_mapped_attributes() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/7");
    host.upstream_answers(
        200,
        "application/scim+json",
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"7","userName":"a@b.c","title":"Dr","emails":[{"value":"a@b.c"}]}"#,
    );
    let mut exchange = send_to(omni(), &mut host, 1000);
    let len = host.upstream_body.len();
    exchange.on_upstream_response(&mut host, 42, len);
    let user: serde_json::Value = serde_json::from_slice(&host.response().body).unwrap();
    assert_eq!(
        user,
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "7", "userName": "a@b.c"})
    );
}

/// A budget that refuses at once when spent (pacing off: `max_wait_ms` 0).
fn limited(per_minute: u32, burst: u32) -> Rc<Config> {
    budget(serde_json::json!({"requests_per_minute": per_minute, "burst": burst, "max_wait_ms": 0}))
}

fn budget(rate_limit: serde_json::Value) -> Rc<Config> {
    let json = serde_json::json!({
        "version": 1,
        "tokens": [{"name": "entra", "sha256": sha256_hex(CLIENT_TOKEN.as_bytes())}],
        "upstream": {"cluster": "scim_upstream", "authority": "scim-upstream", "base_path": "/v2", "bearer_token": UPSTREAM_TOKEN},
        "mapping": {"profile": "rfc"},
        "rate_limit": rate_limit,
    });
    Rc::new(Config::from_json(json.to_string().as_bytes(), &crate::config::no_env).unwrap())
}

/// One GET through `config` on a host that shares `shared` (the VM's shared data) with the others.
fn get_with_budget(config: &Rc<Config>, host: &mut FakeHost) -> u16 {
    host.responses.clear();
    host.dispatched.clear();
    host.upstream_answers(200, "application/scim+json", "{}");
    let mut exchange = Exchange::new(Rc::clone(config), 1);
    exchange.on_request_headers(host, true);
    if !host.dispatched.is_empty() {
        let token = 41 + host.dispatched.len() as u32;
        exchange.on_upstream_response(host, token, 2);
    }
    host.response().status
}

#[test]
fn the_upstream_budget_is_shared_and_answers_429_with_retry_after_when_spent() {
    let config = limited(60, 3);
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.conflicts = 2; // two lost CAS races on the way: retried, not lost
    let statuses: Vec<u16> = (0..5).map(|_| get_with_budget(&config, &mut host)).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(host.response().header("retry-after"), Some("1"));
    assert_eq!(host.error_body()["status"], "429");
    assert!(host.dispatched.is_empty(), "nothing reaches the upstream over budget");
    assert!(host.counters.contains(&"scim_edge.rate_limited".to_string()));
    // The key names a digest of the credential, never the credential.
    assert!(host.shared.keys().all(|k| k.starts_with("scim_edge.budget.") && !k.contains(UPSTREAM_TOKEN)));

    host.clock += Duration::from_secs(1);
    assert_eq!(get_with_budget(&config, &mut host), 200, "refilled at one request a second");
}

#[test]
fn an_upstream_429_is_relayed_with_retry_after_and_the_budget_backs_off() {
    let config = limited(600, 100);
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.upstream_answers(429, "application/scim+json", r#"{"status":"429"}"#);
    let mut exchange = Exchange::new(Rc::clone(&config), 1);
    exchange.on_request_headers(&mut host, true);
    let len = host.upstream_body.len();
    exchange.on_upstream_response(&mut host, 42, len);
    assert_eq!(host.response().status, 429);
    assert_eq!(host.response().header("retry-after"), Some("60"), "Omni's window when the upstream gives none");
    host.clock += Duration::from_secs(30);
    assert_eq!(get_with_budget(&config, &mut host), 429, "backing off");
    assert_eq!(host.response().header("retry-after"), Some("30"));
    host.clock += Duration::from_secs(31);
    assert_eq!(get_with_budget(&config, &mut host), 200);
}

fn throttled_by_upstream(config: &Rc<Config>, host: &mut FakeHost, retry_after: &str) -> Response {
    host.responses.clear();
    host.dispatched.clear();
    host.upstream_answers(429, "application/scim+json", r#"{"status":"429"}"#);
    host.upstream_headers.push(("retry-after".into(), retry_after.as_bytes().to_vec()));
    let mut exchange = Exchange::new(Rc::clone(config), 1);
    exchange.on_request_headers(host, true);
    let len = host.upstream_body.len();
    exchange.on_upstream_response(host, 42, len);
    host.response().clone()
}

#[test]
fn an_upstream_retry_after_is_bounded_in_every_form_for_the_header_and_the_back_off() {
    let config = limited(600, 100);
    // 2026-12-06T12:00:00Z on the wall clock.
    let noon = Duration::from_secs(1_796_558_400);
    let cases = [
        ("99999999999", "3600"),
        ("99999999999999999999999999999999", "3600"),
        ("Fri, 31 Dec 9999 23:59:59 GMT", "3600"),
        ("Sun, 06 Dec 2026 12:02:00 GMT", "120"),
        ("Sunday, 06-Dec-26 12:02:00 GMT", "120"),
        ("Sun Dec  6 12:02:00 2026", "120"),
        ("Sun, 06 Dec 2026 11:00:00 GMT", "0"),
        ("soon", "60"),
        ("-1", "60"),
        ("15", "15"),
    ];
    for (sent, relayed) in cases {
        let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
        host.clock = noon;
        let response = throttled_by_upstream(&config, &mut host, sent);
        assert_eq!((response.status, response.header("retry-after")), (429, Some(relayed)), "{sent}");
        let wait: u64 = relayed.parse().unwrap();
        if wait > 0 {
            host.clock = noon + Duration::from_secs(wait) - Duration::from_millis(500);
            assert_eq!(get_with_budget(&config, &mut host), 429, "{sent}: still backing off");
        }
        host.clock = noon + Duration::from_secs(wait + 1);
        assert_eq!(get_with_budget(&config, &mut host), 200, "{sent}: the block ends within the bound");
    }
}

#[test]
fn the_retry_after_bound_is_configurable_and_cuts_blocks_stored_before_it() {
    let json = serde_json::json!({
        "version": 1,
        "tokens": [{"name": "entra", "sha256": sha256_hex(CLIENT_TOKEN.as_bytes())}],
        "upstream": {"cluster": "scim_upstream", "authority": "scim-upstream", "base_path": "/v2",
                     "bearer_token": UPSTREAM_TOKEN, "max_retry_after_s": 5},
        "mapping": {"profile": "rfc"},
        "rate_limit": {"requests_per_minute": 600, "burst": 100, "max_wait_ms": 0},
    });
    let config = Rc::new(Config::from_json(json.to_string().as_bytes(), &crate::config::no_env).unwrap());
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.clock = Duration::from_secs(1_000);
    assert_eq!(throttled_by_upstream(&config, &mut host, "86400").header("retry-after"), Some("5"));
    // A bucket blocked for a day by an earlier configuration (shared data outlives a VM reload).
    let key = config.upstream.budget_key().to_string();
    let day = Bucket { milli_tokens: 0, updated_ms: 87_400_000, blocked_until_ms: 87_400_000 };
    host.shared.insert(key, (day.encode().to_vec(), 9));
    host.clock = Duration::from_secs(1_007);
    assert_eq!(get_with_budget(&config, &mut host), 429);
    assert_eq!(host.response().header("retry-after"), Some("5"), "cut to the bound from now");
    host.clock = Duration::from_secs(1_013);
    assert_eq!(get_with_budget(&config, &mut host), 200, "then refilled at the rate");
}

#[test]
fn the_budget_fails_closed() {
    let config = limited(60, 60);
    // Other workers win every compare-and-swap: no request goes out unaccounted.
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.conflicts = 1000;
    assert_eq!(get_with_budget(&config, &mut host), 429);
    assert!(host.dispatched.is_empty());

    // Something that is not a bucket under the key reads as an empty bucket, not a full one.
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.clock = Duration::from_secs(100);
    host.shared.insert(config.upstream.budget_key().to_string(), (b"garbage".to_vec(), 3));
    assert_eq!(get_with_budget(&config, &mut host), 429);
    host.clock += Duration::from_secs(1);
    assert_eq!(get_with_budget(&config, &mut host), 200, "and refills at the rate");
}

#[test]
fn the_first_write_of_the_budget_is_conditional() {
    // Another worker creates the bucket, already spent, between our read (nothing there) and our
    // write: ours must not overwrite it with a full bucket minus one.
    let config = limited(60, 60);
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users");
    host.clock = Duration::from_secs(100);
    let spent = Bucket { milli_tokens: 0, updated_ms: 100_000, blocked_until_ms: 0 };
    host.raced_by = Some(spent.encode().to_vec());
    assert_eq!(get_with_budget(&config, &mut host), 429);
    assert!(host.dispatched.is_empty());
}

#[test]
fn urls_handed_out_are_built_on_the_configured_base_never_on_the_clients_host() {
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com"}"#;
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body(user);
    host.set(":authority", "evil.example").set("x-forwarded-proto", "http").set("x-forwarded-host", "evil.example");
    host.upstream_answers(
        201,
        "application/scim+json",
        r#"{"id":"9","meta":{"location":"http://scim-upstream/v2/Users/9"}}"#,
    );
    host.upstream_headers.push(("location".into(), b"http://scim-upstream/v2/Users/9".to_vec()));
    round_trip(&mut host);
    assert_eq!(host.response().header("location"), Some("https://edge.example/api/scim/v2/Users/9"));
    let body: serde_json::Value = serde_json::from_slice(&host.response().body).unwrap();
    assert_eq!(body["meta"]["location"], "https://edge.example/api/scim/v2/Users/9");

    let mut host = FakeHost::request("GET", "/api/scim/v2/ServiceProviderConfig");
    host.set(":authority", "evil.example");
    send(&mut host, 1000);
    assert!(!String::from_utf8_lossy(&host.response().body).contains("evil"));
}

#[test]
fn omni_gets_omnis_published_limit_by_default_and_rfc_none() {
    assert_eq!(omni().rate_limit, Some(crate::config::OMNI_RATE_LIMIT));
    assert_eq!(config().rate_limit, None);
}

#[test]
fn oversized_and_5xx_upstream_answers_are_counted_and_latency_recorded() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/1");
    let mut exchange = send(&mut host, 1000);
    exchange.on_upstream_response(&mut host, 42, 5 * 1024 * 1024);
    assert_eq!(host.response().status, 502);
    assert!(host.counters.contains(&"scim_edge.upstream.failures.oversized".to_string()));
    assert_eq!(host.histograms, [("scim_edge.upstream.latency_ms", 7)]);

    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/1");
    host.upstream_answers(503, "application/scim+json", r#"{"status":"503"}"#);
    round_trip(&mut host);
    assert_eq!(host.response().status, 503);
    assert!(host.counters.contains(&"scim_edge.upstream.failures.status_5xx".to_string()));
    assert!(host.counters.contains(&"scim_edge.requests.Users_id.GET".to_string()));
}

#[test]
fn discovery_is_answered_at_the_edge_under_both_profiles() {
    for config in [config(), omni()] {
        let mut host = FakeHost::request("GET", "/api/scim/v2/ServiceProviderConfig");
        host.set("x-forwarded-proto", "https");
        send_to(Rc::clone(&config), &mut host, 1000);
        assert!(host.dispatched.is_empty(), "no callout");
        assert_eq!(host.response().status, 200);
        let spc = host.error_body();
        assert_eq!(spc["bulk"]["maxPayloadSize"], 2048);
        assert_eq!(spc["filter"]["maxResults"], crate::scim::query::MAX_RESULTS);
        assert_eq!(spc["meta"]["location"], "https://edge.example/api/scim/v2/ServiceProviderConfig");

        let mut host = FakeHost::request("GET", "/api/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User");
        send_to(Rc::clone(&config), &mut host, 1000);
        assert!(host.dispatched.is_empty());
        assert_eq!(host.error_body()["id"], "urn:ietf:params:scim:schemas:core:2.0:User");

        let mut host = FakeHost::request("GET", "/api/scim/v2/ResourceTypes");
        send_to(Rc::clone(&config), &mut host, 1000);
        assert!(host.dispatched.is_empty());
        assert_eq!(host.error_body()["totalResults"], 2);
    }
}

#[test]
fn discovery_keeps_authentication_routing_and_query_rules() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/ServiceProviderConfig");
    host.unset("authorization");
    send_to(omni(), &mut host, 1000);
    assert_eq!(host.response().status, 401);

    let cases = [
        ("GET", "/api/scim/v2/Schemas/urn:nope", 404),
        ("GET", "/api/scim/v2/ResourceTypes/Agent", 404),
        ("GET", "/api/scim/v2/ServiceProviderConfig/x", 404),
        ("DELETE", "/api/scim/v2/Schemas", 405),
        ("GET", "/api/scim/v2/Schemas?filter=id%20eq%20%22x%22", 400),
    ];
    for (method, path, status) in cases {
        let mut host = FakeHost::request(method, path);
        send_to(omni(), &mut host, 1000);
        assert_eq!(host.response().status, status, "{method} {path}");
        assert_eq!(host.error_body()["status"], status.to_string());
        assert!(host.dispatched.is_empty());
    }
}

#[test]
fn root_search_is_still_501_under_omni() {
    let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}"#;
    let mut host = FakeHost::request("POST", "/api/scim/v2/.search").with_body(body);
    send_to(omni(), &mut host, 1000);
    assert_eq!(host.response().status, 501);
    assert!(host.dispatched.is_empty());
}

#[test]
fn control_characters_in_string_values_are_refused() {
    for (method, path, body) in [
        (
            "POST",
            "/api/scim/v2/Users",
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada\u0000@example.com"}"#,
        ),
        (
            "POST",
            "/api/scim/v2/Users",
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","name":{"givenName":"A\u001b[2J"}}"#,
        ),
        (
            "PUT",
            "/api/scim/v2/Users/1",
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","displayName":"x\u0085"}"#,
        ),
        (
            "PATCH",
            "/api/scim/v2/Users/1",
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"x\u0007"}]}"#,
        ),
        (
            "PATCH",
            "/api/scim/v2/Groups/1",
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"displayName":"\u0000"}}]}"#,
        ),
    ] {
        let mut host = FakeHost::request(method, path).with_body(body);
        send(&mut host, 1000);
        assert_eq!(host.response().status, 400, "{body}");
        assert_eq!(host.error_body()["scimType"], "invalidValue", "{body}");
        assert!(host.dispatched.is_empty());
    }
    let multi_line = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","addresses":[{"formatted":"1 Main St\r\nSpringfield\tUS"}]}"#;
    let mut host = FakeHost::request("POST", "/api/scim/v2/Users").with_body(multi_line);
    send(&mut host, 1000);
    assert_eq!(host.dispatched.len(), 1, "tab, CR and LF are text");
}

#[test]
fn every_echo_of_client_text_in_a_detail_is_bounded() {
    // Long, but under the test configuration's max_body_bytes (2048).
    let long = "k".repeat(1500);
    for (method, path, body) in [
        (
            "POST",
            "/api/scim/v2/Users",
            format!(r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","{long}":1}}"#),
        ),
        (
            "POST",
            "/api/scim/v2/Users",
            format!(
                r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","name":{{"{long}":"x"}}}}"#
            ),
        ),
        (
            "PATCH",
            "/api/scim/v2/Users/1",
            format!(r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"{long}":[]}}"#),
        ),
        (
            "PATCH",
            "/api/scim/v2/Users/1",
            format!(
                r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"add","{long}":1}}]}}"#
            ),
        ),
        (
            "POST",
            "/api/scim/v2/Users/.search",
            format!(r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"{long}":1}}"#),
        ),
    ] {
        let mut host = FakeHost::request(method, path).with_body(&body);
        send_to(config_with(serde_json::json!({"profile": "rfc"})), &mut host, 100_000);
        assert_eq!(host.response().status, 400, "{method} {path}");
        let detail = host.error_body()["detail"].as_str().unwrap().to_string();
        assert!(detail.len() < 400, "{method} {path}: {} bytes", detail.len());
        assert!(host.dispatched.is_empty());
    }
}

#[test]
fn attributes_naming_only_unmapped_attributes_return_only_id_schemas_and_meta() {
    let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"ada","title":"CEO","displayName":"Ada","meta":{"resourceType":"User"}}"#;
    // Omni: selection at the edge; `title` is not mapped there.
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/u1?attributes=title");
    host.upstream_answers(200, "application/scim+json", user);
    let mut exchange = send_to(omni(), &mut host, 1000);
    exchange.on_upstream_response(&mut host, 42, user.len());
    let body: serde_json::Value = serde_json::from_slice(&host.response().body).unwrap();
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "meta", "schemas"]);
    // rfc with title removed: the upstream is asked for `id` only.
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/u1?attributes=title");
    send_to(config_with(serde_json::json!({"profile": "rfc", "users": {"remove": ["title"]}})), &mut host, 1000);
    assert_eq!(host.dispatched[0].header(":path"), Some("/v2/Users/u1?attributes=id"));
}

#[test]
fn root_search_is_501_when_either_mapping_strips() {
    let body = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}"#;
    for mapping in [
        serde_json::json!({"profile": "rfc", "users": {"remove": ["title"]}}),
        serde_json::json!({"profile": "rfc", "groups": {"remove": ["members"]}}),
    ] {
        let mut host = FakeHost::request("POST", "/api/scim/v2/.search").with_body(body);
        send_to(config_with(mapping.clone()), &mut host, 1000);
        assert_eq!(host.response().status, 501, "{mapping}");
        assert!(host.dispatched.is_empty());
    }
    // Nothing stripped: the root search goes upstream.
    let mut host = FakeHost::request("POST", "/api/scim/v2/.search").with_body(body);
    send_to(config(), &mut host, 1000);
    assert_eq!(host.dispatched.len(), 1);
}

#[test]
fn a_count_above_the_maximum_is_reduced_before_it_goes_upstream() {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users?count=5000&startIndex=3");
    host.upstream_answers(200, "application/scim+json", "{}");
    round_trip(&mut host);
    assert_eq!(host.dispatched[0].header(":path"), Some("/v2/Users?startIndex=3&count=100"));

    let mut host = FakeHost::request("GET", "/api/scim/v2/Users?count=7");
    host.upstream_answers(200, "application/scim+json", "{}");
    round_trip(&mut host);
    assert_eq!(host.dispatched[0].header(":path"), Some("/v2/Users?count=7"));
}

#[test]
fn the_empty_list_is_what_serde_json_writes_for_it() {
    let document = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    });
    assert_eq!(empty_list().body, serde_json::to_vec(&document).unwrap());
}

#[test]
fn the_request_id_logged_is_envoys_or_nothing() {
    assert_eq!(request_id(Some(b"0b3c6f1e-8f0a-4c2e-9d6b-2f4a1e7c9b10")), "0b3c6f1e-8f0a-4c2e-9d6b-2f4a1e7c9b10");
    assert_eq!(request_id(Some(b"req_1.2")), "req_1.2");
    assert_eq!(request_id(Some(b"evil token=admin")), "");
    assert_eq!(request_id(Some("x".repeat(65).as_bytes())), "");
    assert_eq!(request_id(Some(b"")), "");
    assert_eq!(request_id(None), "");
}

#[test]
fn a_client_gone_while_the_callout_is_in_flight_ends_the_exchange_once() {
    let mut host = FakeHost::request("DELETE", "/api/scim/v2/Users/5");
    let mut exchange = send(&mut host, 1000);
    assert_eq!(host.dispatched.len(), 1);
    exchange.on_stream_end();
    assert!(matches!(exchange.state, State::Done));
    // The answer arrives for a stream that is gone: nothing more happens.
    host.upstream_answers(204, "application/scim+json", "");
    exchange.on_upstream_response(&mut host, 42, 0);
    assert!(host.responses.is_empty());
}

/// Pacing: 60 a minute (a token a second), burst 2, at most 3 waiting, 5 s at most.
fn paced() -> Rc<Config> {
    budget(serde_json::json!({"requests_per_minute": 60, "burst": 2, "max_wait_ms": 5000, "max_waiting": 3}))
}

/// A GET through `config` that shares `shared` with the others; the exchange, to resume it.
fn paced_get(config: &Rc<Config>, shared: &mut FakeHost, waiting: usize) -> (Exchange, FakeHost) {
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/1");
    host.shared = std::mem::take(&mut shared.shared);
    host.clock = shared.clock;
    host.waiting = waiting;
    let mut exchange = Exchange::new(Rc::clone(config), 9);
    assert_eq!(exchange.on_request_headers(&mut host, true), Flow::Pause);
    shared.shared = std::mem::take(&mut host.shared);
    (exchange, host)
}

#[test]
fn an_empty_budget_makes_a_request_wait_then_go_when_a_token_refills() {
    let config = paced();
    let mut shared = FakeHost { clock: Duration::from_secs(1000), ..FakeHost::default() };
    for _ in 0..2 {
        let (_, host) = paced_get(&config, &mut shared, 0);
        assert_eq!(host.dispatched.len(), 1, "the burst goes at once");
    }
    let (mut third, mut host) = paced_get(&config, &mut shared, 0);
    assert!(third.is_waiting(), "no token: the request waits instead of a 429");
    assert!(host.dispatched.is_empty() && host.responses.is_empty());
    assert!(host.counters.contains(&"scim_edge.paced".to_string()));

    host.shared = std::mem::take(&mut shared.shared);
    host.clock += Duration::from_millis(400);
    assert_eq!(third.resume(&mut host, true), Resumed::Waiting, "no token yet");
    host.clock += Duration::from_millis(700);
    assert_eq!(third.resume(&mut host, true), Resumed::Dispatched(42));
    assert_eq!(host.dispatched.len(), 1);
    assert!(host.histograms.contains(&("scim_edge.paced.wait_ms", 1100)));
    host.upstream_answers(200, "application/scim+json", "{}");
    third.on_upstream_response(&mut host, 42, 2);
    assert_eq!(host.response().status, 200);
}

#[test]
fn a_new_request_queues_behind_those_already_waiting() {
    let config = paced();
    let mut shared = FakeHost { clock: Duration::from_secs(1000), ..FakeHost::default() };
    // The budget has tokens, but one request of this worker is already waiting.
    let (exchange, host) = paced_get(&config, &mut shared, 1);
    assert!(exchange.is_waiting());
    assert!(host.dispatched.is_empty());
    // A turn that may not dispatch (an earlier one still waits) leaves it waiting.
    let (mut exchange, mut host) = (exchange, host);
    host.shared = std::mem::take(&mut shared.shared);
    assert_eq!(exchange.resume(&mut host, false), Resumed::Waiting);
    assert!(host.dispatched.is_empty());
}

#[test]
fn past_the_longest_wait_or_a_full_queue_the_answer_is_429_with_an_honest_retry_after() {
    let config = paced();
    let mut shared = FakeHost { clock: Duration::from_secs(1000), ..FakeHost::default() };
    for _ in 0..2 {
        paced_get(&config, &mut shared, 0);
    }
    // The queue (3) is full.
    let (_, host) = paced_get(&config, &mut shared, 3);
    assert_eq!(host.response().status, 429);
    assert_eq!(host.response().header("retry-after"), Some("3"));
    assert!(host.counters.contains(&"scim_edge.paced.refused.queue_full".to_string()));
    // Two ahead at a token a second: a 3 s wait fits in 5 s and waits.
    let (waiting, _) = paced_get(&config, &mut shared, 2);
    assert!(waiting.is_waiting());

    // A request that waited its 5 s without a turn gets 429.
    let (mut late, mut host) = paced_get(&config, &mut shared, 1);
    assert!(late.is_waiting());
    host.shared = std::mem::take(&mut shared.shared);
    host.clock += Duration::from_millis(5000);
    assert_eq!(late.resume(&mut host, false), Resumed::Answered);
    assert_eq!(host.response().status, 429);
    assert!(host.response().header("retry-after").is_some());
    assert!(host.dispatched.is_empty());
    assert!(host.counters.contains(&"scim_edge.paced.refused.max_wait".to_string()));
}

#[test]
fn a_wait_longer_than_the_bound_is_refused_at_once() {
    // An upstream 429 stopped the budget for 60 s: no request can get through within 5 s.
    let config = paced();
    let mut host = FakeHost::request("GET", "/api/scim/v2/Users/1");
    host.clock = Duration::from_secs(1000);
    let limit = config.rate_limit.unwrap();
    let key = config.upstream.budget_key();
    host.shared.insert(key.to_string(), (limit.back_off(None, 1_000_000, 60).encode().to_vec(), 1));
    let mut exchange = Exchange::new(Rc::clone(&config), 9);
    exchange.on_request_headers(&mut host, true);
    assert!(!exchange.is_waiting());
    assert_eq!(host.response().status, 429);
    assert_eq!(host.response().header("retry-after"), Some("60"));
}

#[test]
fn a_client_gone_while_waiting_leaves_the_queue_and_nothing_goes_upstream() {
    let config = paced();
    let mut shared = FakeHost { clock: Duration::from_secs(1000), ..FakeHost::default() };
    let (mut exchange, mut host) = paced_get(&config, &mut shared, 1);
    assert!(exchange.is_waiting());
    exchange.on_stream_end();
    host.clock += Duration::from_secs(2);
    assert_eq!(exchange.resume(&mut host, true), Resumed::Answered);
    assert!(host.dispatched.is_empty() && host.responses.is_empty());
}

#[test]
fn pacing_off_keeps_the_immediate_429() {
    let config = limited(60, 1);
    let mut shared = FakeHost { clock: Duration::from_secs(1000), ..FakeHost::default() };
    paced_get(&config, &mut shared, 0);
    let (exchange, host) = paced_get(&config, &mut shared, 0);
    assert!(!exchange.is_waiting());
    assert_eq!(host.response().status, 429);
}

// The OAuth token endpoint (src/exchange/token.rs) and its access tokens on SCIM requests.

fn oauth_config() -> Rc<Config> {
    let json = serde_json::json!({
        "version": 1,
        "upstream": {"cluster": "scim_upstream", "authority": "scim-upstream", "base_path": "/v2", "bearer_token": UPSTREAM_TOKEN},
        "oauth": {
            "clients": [{"name": "entra-client", "client_id": "client-1", "secret_sha256": sha256_hex(b"secret-1")}],
            "signing_keys": [{"kid": "k1", "secret_env": "KEY"}],
            "failed_auth_budget": {"per_minute": 1, "burst": 2},
        },
    });
    let env = |name: &str| (name == "KEY").then(|| "k".repeat(32));
    Rc::new(Config::from_json(json.to_string().as_bytes(), &env).unwrap())
}

fn token_request(form: &str) -> FakeHost {
    let mut host = FakeHost::request("POST", "/oauth2/token").with_body(form);
    host.unset("authorization").set("content-type", "application/x-www-form-urlencoded");
    host.clock = Duration::from_secs(1_800_000_000);
    host
}

#[test]
fn a_token_from_the_token_endpoint_admits_scim_requests_as_its_client() {
    let mut host = token_request("grant_type=client_credentials&client_id=client-1&client_secret=secret-1");
    send_to(oauth_config(), &mut host, 7);
    let response = host.response();
    assert_eq!((response.status, response.header("cache-control")), (200, Some("no-store")));
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body["expires_in"], 3600);
    assert!(host.counters.contains(&"scim_edge.oauth.issued.entra-client".to_string()));
    assert!(host.shared.is_empty(), "a success spends no budget");

    let mut scim = FakeHost::request("GET", "/api/scim/v2/Users");
    scim.set("authorization", &format!("Bearer {}", body["access_token"].as_str().unwrap()));
    scim.clock = host.clock + Duration::from_secs(3599);
    send_to(oauth_config(), &mut scim, 1000);
    assert_eq!(scim.dispatched.len(), 1);
    assert!(scim.counters.contains(&"scim_edge.auth.accepted.client.entra-client".to_string()));

    let mut late = FakeHost::request("GET", "/api/scim/v2/Users");
    late.set(
        "authorization",
        scim.request_header("authorization").map(|v| String::from_utf8(v).unwrap()).as_deref().unwrap(),
    );
    late.clock = host.clock + Duration::from_secs(3600);
    send_to(oauth_config(), &mut late, 1000);
    assert_eq!(late.response().status, 401, "expired");
    assert!(late.dispatched.is_empty());
}

#[test]
fn failed_client_authentications_spend_the_budget_even_when_workers_race() {
    let mut shared = std::collections::HashMap::new();
    let mut statuses = Vec::new();
    for attempt in 0..4 {
        let mut host = token_request("grant_type=client_credentials&client_id=client-1&client_secret=guess");
        host.shared = shared;
        host.conflicts = if attempt == 0 { 3 } else { 0 };
        send_to(oauth_config(), &mut host, 1000);
        statuses.push(host.response().status);
        shared = host.shared;
    }
    assert_eq!(statuses, [401, 401, 429, 429]);
    let mut right = token_request("grant_type=client_credentials&client_id=client-1&client_secret=secret-1");
    right.shared = shared;
    send_to(oauth_config(), &mut right, 1000);
    assert_eq!(right.response().status, 429, "past the budget the secret is not even checked");
}

#[test]
fn a_token_request_that_ends_in_trailers_is_answered_from_its_whole_body() {
    let mut host = token_request("grant_type=client_credentials&client_id=client-1&client_secret=secret-1");
    let mut exchange = Exchange::new(oauth_config(), 3);
    assert_eq!(exchange.on_request_headers(&mut host, false), Flow::Continue);
    let size = host.request_body.len();
    assert_eq!(exchange.on_request_body(&mut host, size, false), Flow::Pause);
    assert!(host.responses.is_empty());
    assert_eq!(exchange.on_request_trailers(&mut host), Flow::Pause);
    assert_eq!(host.response().status, 200);

    let mut big = token_request(&format!("grant_type=client_credentials&pad={}", "a".repeat(9000)));
    let mut exchange = Exchange::new(oauth_config(), 4);
    exchange.on_request_headers(&mut big, false);
    exchange.on_request_trailers(&mut big);
    assert_eq!(big.response().status, 400);
}
