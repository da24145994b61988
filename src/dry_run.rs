//! One request through the filter's own pipeline without Envoy: the [`Exchange`] driven against a
//! host that records what the filter would send upstream, what it counts and what it answers.
//! `scim-edge explain` prints the [`Trace`]; tests use it to predict what a real Envoy forwards.
//!
//! Native only: the filter never compiles it.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::auth::{TokenEntry, TokenSet};
use crate::config::Config;
use crate::exchange::{Exchange, Flow, Host, SharedWrite};
use crate::http::Response;
use crate::metrics::{Counter, Histogram};
use crate::scim::normalisation::Normalisation;
use crate::upstream::UpstreamCall;

/// The name the dry run authenticates under: it presents its own token, so no real one is needed.
pub const DRY_RUN_TOKEN_NAME: &str = "dry-run";
const DRY_RUN_TOKEN: &str = "scim-edge-dry-run";

/// The request to run.
#[derive(Clone, Debug)]
pub struct DryRequest {
    pub method: String,
    /// The path as the client sends it, query included: `/api/scim/v2/Users?filter=...`.
    pub path: String,
    pub body: Option<Vec<u8>>,
    /// `:authority` as the client sends it (the public base URL of `location` and `meta`).
    pub authority: String,
}

/// The upstream's answer to give the filter, if the request gets that far.
#[derive(Clone, Debug)]
pub struct UpstreamAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What the filter did with one request.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// The routed endpoint (`Users/{id}`) and method, when the request was routed.
    pub endpoint: Option<(&'static str, &'static str)>,
    /// The callout, if the filter called the upstream.
    pub upstream_call: Option<UpstreamCall>,
    /// The rewrites applied to the forwarded request, each kind once.
    pub normalisations: Vec<Normalisation>,
    /// Attributes the mapping kept from the upstream, by counter name (`name_givenName`).
    pub stripped: Vec<String>,
    /// What the client receives; `None` while the filter waits for an upstream answer it was
    /// not given.
    pub response: Option<Response>,
    /// Every counter the filter incremented, by its `/stats` name (without `wasmcustom.`).
    pub counters: Vec<String>,
}

impl Trace {
    /// Whether the edge answered without calling the upstream.
    pub fn answered_by_edge(&self) -> bool {
        self.upstream_call.is_none() && self.response.is_some()
    }
}

/// Runs `request` through the filter compiled from `config`. The configured client tokens are
/// replaced by the dry run's own (authentication is not what a dry run explains); everything else
/// is the configuration as given. With `upstream` the callout is answered and the relayed answer
/// is in the trace.
pub fn run(mut config: Config, request: &DryRequest, upstream: Option<&UpstreamAnswer>) -> Trace {
    config.tokens = TokenSet::new(vec![TokenEntry {
        name: DRY_RUN_TOKEN_NAME.to_string(),
        sha256: Sha256::digest(DRY_RUN_TOKEN.as_bytes()).into(),
    }]);
    let mut host = RecordingHost::for_request(request);
    let mut exchange = Exchange::new(Rc::new(config), 1);
    let body = request.body.as_deref().unwrap_or_default();
    let flow = exchange.on_request_headers(&mut host, body.is_empty());
    if flow == Flow::Continue && !body.is_empty() && host.trace.response.is_none() {
        exchange.on_request_body(&mut host, body.len(), true);
    }
    if let (Some(answer), Some(token)) = (upstream, host.token) {
        host.upstream_headers.push((":status".to_string(), answer.status.to_string().into_bytes()));
        if let Some(content_type) = &answer.content_type {
            host.upstream_headers.push(("content-type".to_string(), content_type.clone().into_bytes()));
        }
        host.upstream_body = answer.body.clone();
        exchange.on_upstream_response(&mut host, token, answer.body.len());
    }
    host.trace
}

/// A [`Host`] that plays the client's side from a [`DryRequest`] and records the rest.
#[derive(Default)]
pub struct RecordingHost {
    request_headers: Vec<(String, Vec<u8>)>,
    request_body: Vec<u8>,
    upstream_headers: Vec<(String, Vec<u8>)>,
    upstream_body: Vec<u8>,
    token: Option<u32>,
    shared: HashMap<String, (Vec<u8>, u32)>,
    pub trace: Trace,
}

impl RecordingHost {
    pub fn for_request(request: &DryRequest) -> Self {
        let mut headers = vec![
            (":method", request.method.clone()),
            (":path", request.path.clone()),
            (":authority", request.authority.clone()),
            (":scheme", "https".to_string()),
            ("authorization", format!("Bearer {DRY_RUN_TOKEN}")),
        ];
        let body = request.body.clone().unwrap_or_default();
        if request.body.is_some() {
            headers.push(("content-type", crate::http::SCIM_MEDIA_TYPE.to_string()));
            headers.push(("content-length", body.len().to_string()));
        }
        RecordingHost {
            request_headers: headers.into_iter().map(|(n, v)| (n.to_string(), v.into_bytes())).collect(),
            request_body: body,
            ..RecordingHost::default()
        }
    }
}

fn find(headers: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

impl Host for RecordingHost {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        find(&self.request_headers, name)
    }
    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        self.request_body.get(..size).map(<[u8]>::to_vec)
    }
    fn upstream_response_header(&self, name: &str) -> Option<Vec<u8>> {
        find(&self.upstream_headers, name)
    }
    fn upstream_response_body(&self, size: usize) -> Option<Vec<u8>> {
        self.upstream_body.get(..size).map(<[u8]>::to_vec)
    }
    fn dispatch(&mut self, call: &UpstreamCall) -> Result<u32, String> {
        self.trace.upstream_call = Some(call.clone());
        self.token = Some(1);
        Ok(1)
    }
    fn send_response(&mut self, response: &Response) {
        self.trace.response = Some(response.clone());
    }
    fn count(&mut self, counter: Counter<'_>) {
        match counter {
            Counter::Normalised(kind) if !self.trace.normalisations.contains(&kind) => {
                self.trace.normalisations.push(kind)
            }
            Counter::Stripped(name) => self.trace.stripped.push(name.to_string()),
            Counter::Endpoint(label, method) => self.trace.endpoint = Some((label, method)),
            _ => {}
        }
        self.trace.counters.push(counter.name());
    }
    fn now(&self) -> Option<Duration> {
        Some(Duration::ZERO)
    }
    fn record(&mut self, _: Histogram, _: u64) {}
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        match self.shared.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn waiting(&self) -> usize {
        0
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite {
        // As Envoy's shared data: a missing key is created whatever the CAS; an existing one is
        // written when the CAS is none or matches.
        let current = self.shared.get(key).map(|(_, cas)| *cas);
        if let (Some(cas), Some(current)) = (cas, current) {
            if cas != current {
                return SharedWrite::Conflict;
            }
        }
        self.shared.insert(key.to_string(), (value.to_vec(), current.unwrap_or(0).wrapping_add(1)));
        SharedWrite::Stored
    }
}

/// What a normalisation does, for a person (the counter name is `Normalisation::as_str`).
pub fn describe(kind: Normalisation) -> &'static str {
    match kind {
        Normalisation::OpCase => "PatchOp op names lower-cased (\"Replace\" -> \"replace\", RFC 7644 §3.5.2)",
        Normalisation::StringBoolean => "a boolean sent as a string (\"False\") sent as a JSON boolean",
        Normalisation::MemberRemoval => {
            "Entra's member removal (remove on members with a value list) split into one remove per member with a value filter (RFC 7644 §3.5.2.2)"
        }
        Normalisation::PathlessValueSplit => {
            "a pathless add/replace with dotted or URN-qualified keys turned into operations with paths"
        }
        Normalisation::FlatExtension => {
            "extension attributes sent flat (urn:...:User:department) nested under their extension"
        }
        Normalisation::SchemaAdded => "an extension schema in use but missing from schemas added",
        Normalisation::ForeignSchemaDropped => {
            "a schema URN that is not SCIM's (Entra's ADSCIM Group URN) dropped from schemas"
        }
        Normalisation::MetaDropped => "meta (read-only, RFC 7643 §3.1) dropped from the body",
        Normalisation::ReadOnlyDropped => {
            "a read-only attribute (id, groups, ...) dropped from the body (RFC 7644 §3.3, §3.5.1)"
        }
        Normalisation::NullDropped => "a null value dropped (null means unassigned, RFC 7643 §2.5)",
        Normalisation::NullReplaceToRemove => "replace with a null value sent as the remove it means",
        Normalisation::AttributeCase => "an attribute name in another case than the schema's canonicalised",
        Normalisation::QueryReencoded => "the query string re-encoded canonically",
        #[allow(unreachable_patterns)]
        _ => "a rewrite to canonical SCIM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sha256_hex;

    fn config(profile: &str) -> Config {
        let json = serde_json::json!({
            "version": 1,
            "tokens": [{"name": "entra", "sha256": sha256_hex(b"a real client token")}],
            "upstream": {"cluster": "c", "authority": "up", "base_path": "/v2", "bearer_token": "up-token"},
            "mapping": {"profile": profile},
        });
        Config::from_json(json.to_string().as_bytes(), &crate::config::no_env).unwrap()
    }

    fn request(method: &str, path: &str, body: Option<&str>) -> DryRequest {
        DryRequest {
            method: method.into(),
            path: path.into(),
            body: body.map(|b| b.as_bytes().to_vec()),
            authority: "edge.example".into(),
        }
    }

    #[test]
    fn a_create_is_forwarded_with_what_the_mapping_strips_and_normalises() {
        let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","displayName":"Ada","active":"True",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":"Finance"}"#;
        let trace = run(config("omni"), &request("POST", "/api/scim/v2/Users", Some(body)), None);
        let call = trace.upstream_call.as_ref().unwrap();
        assert_eq!(call.header(":path"), Some("/v2/Users"));
        let sent: serde_json::Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
        assert_eq!(sent["active"], serde_json::json!(true));
        assert!(!sent.to_string().contains("Finance"), "{sent}");
        assert_eq!(trace.stripped, ["urn_ietf_params_scim_schemas_extension_enterprise_2_0_User_department"]);
        assert!(trace.normalisations.contains(&Normalisation::StringBoolean));
        assert_eq!(trace.endpoint, Some(("Users", "POST")));
        assert!(trace.response.is_none(), "no upstream answer was given");
    }

    #[test]
    fn an_upstream_answer_is_relayed_to_the_client() {
        let answer = UpstreamAnswer {
            status: 201,
            content_type: Some("application/scim+json".into()),
            body: br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"1","userName":"ada@example.com","title":"x"}"#.to_vec(),
        };
        let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","displayName":"Ada"}"#;
        let trace = run(config("omni"), &request("POST", "/api/scim/v2/Users", Some(body)), Some(&answer));
        let response = trace.response.unwrap();
        assert_eq!(response.status, 201);
        assert!(!String::from_utf8_lossy(&response.body).contains("title"), "the mapping strips answers too");
    }

    #[test]
    fn the_edge_answers_discovery_and_refusals_itself() {
        let trace = run(config("omni"), &request("GET", "/api/scim/v2/ServiceProviderConfig", None), None);
        assert!(trace.answered_by_edge());
        assert_eq!(trace.response.unwrap().status, 200);
        let trace = run(config("omni"), &request("POST", "/api/scim/v2/Users", Some("{")), None);
        assert!(trace.answered_by_edge());
        assert_eq!(trace.response.unwrap().status, 400);
    }
}
