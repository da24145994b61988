//! One client request through the gateway, as an explicit state machine.
//!
//! The proxy-wasm adapter owns one [`Exchange`] per HTTP context and feeds it the host's
//! callbacks; everything the exchange needs from the proxy goes through the [`Host`] trait, so the
//! whole flow — authentication, routing, buffering, the callout and the relayed answer — runs
//! natively in tests against a recording host.
//!
//! How Envoy delivers a request to a proxy-wasm filter shapes the states: returning `Pause` from
//! the headers callback stops body delivery altogether, so when a body follows the exchange
//! returns `Continue` (the buffer filter behind it keeps the router from starting) and pauses in
//! the body callback until the end of the stream. A body-less request is dispatched straight from
//! the headers callback.

use std::rc::Rc;
use std::time::Duration;

use crate::config::Config;
use crate::http::Method;
use crate::http::{is_scim_json, status_class, Response};
use crate::mapping::Policy;
use crate::metrics::{Counter, Histogram};
use crate::ratelimit::{Bucket, Decision, RateLimit};
use crate::route::ResourceType;
use crate::route::{resolve, scope, Endpoint, Route, Scope};
use crate::scim::normalisation::{Changes, Normalisation};
use crate::scim::patch::prepare_patch;
use crate::scim::query::parse_query;
use crate::scim::query::Projection;
use crate::scim::resource::prepare_resource;
use crate::scim::search::{prepare_search, search_request};
use crate::scim_error::{ScimError, ScimType};
use crate::upstream::{
    relay, PublicBase, UpstreamCall, UpstreamFailure, UpstreamReply, FORWARDED_REQUEST_HEADERS,
    RELAYED_RESPONSE_HEADERS,
};

/// What the exchange needs from the proxy. Header values are raw bytes: Envoy allows non-UTF-8
/// header values, and the gateway must refuse those, not crash on them.
pub trait Host {
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// The buffered request body, `size` bytes of it.
    fn request_body(&self, size: usize) -> Option<Vec<u8>>;
    fn upstream_response_header(&self, name: &str) -> Option<Vec<u8>>;
    fn upstream_response_body(&self, size: usize) -> Option<Vec<u8>>;
    /// Starts the callout; its token, or a reason (a host status, never a secret).
    fn dispatch(&mut self, call: &UpstreamCall) -> Result<u32, String>;
    /// Answers the client and ends the stream.
    fn send_response(&mut self, response: &Response);
    fn count(&mut self, counter: Counter<'_>);
    /// Monotonic enough for latencies; `None` when the host cannot tell.
    fn now(&self) -> Option<Duration>;
    fn record(&mut self, histogram: Histogram, value: u64);
    /// The VM's shared data (common to all workers) under `key`, with its compare-and-swap token.
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` under `key` unless it was written since `cas` was read.
    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite;
    /// How many requests of this worker are waiting for the upstream's budget (pacing), ahead of
    /// a new one.
    fn waiting(&self) -> usize;
    /// A property of the stream (proxy-wasm `get_property`), as the host serialises it: Entra's
    /// verified JWT payload in `jwt_authn`'s dynamic metadata (src/entra.rs). `None` when absent.
    fn property(&self, _path: &[&str]) -> Option<Vec<u8>> {
        None
    }
}

/// The outcome of a compare-and-swap write to shared data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedWrite {
    Stored,
    /// Another worker wrote first: read again and retry.
    Conflict,
    Failed,
}

/// How many times a budget update is retried when other workers keep winning the CAS race.
const BUDGET_ATTEMPTS: usize = 16;

/// The CAS a new budget is written with: one no stored entry carries (the host hands them out
/// from 1 upwards, one per write), so the write creates the key or conflicts with whoever did.
const CREATE_CAS: u32 = u32::MAX;

/// What to tell the proxy after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

#[derive(Debug)]
enum State {
    /// Waiting for the request headers.
    Start,
    /// Not under the SCIM prefix: the filter stays out of the way.
    Outside,
    /// Authenticated and routed; collecting the body.
    Buffering(Pending),
    /// Paced: ready to go upstream, waiting for the budget (`resume` dispatches it).
    Waiting(Waiting),
    /// The callout is in flight.
    AwaitingUpstream(InFlight),
    /// A request to the OAuth token endpoint (src/exchange/token.rs), collecting its form body.
    TokenRequest(token::TokenRequest),
    /// The client has its answer.
    Done,
}

/// A callout in flight and what the answer needs.
#[derive(Debug)]
struct InFlight {
    token: u32,
    public: PublicBase,
    since: Option<Duration>,
    resource_type: Option<ResourceType>,
    projection: Projection,
}

/// A request waiting for the upstream's budget: the callout, ready, and what its answer needs.
#[derive(Debug)]
struct Waiting {
    call: UpstreamCall,
    public: PublicBase,
    resource_type: Option<ResourceType>,
    projection: Projection,
    /// When it started waiting.
    since_ms: u64,
}

/// What [`Exchange::resume`] did with a waiting request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// Still waiting for the budget.
    Waiting,
    /// The callout started (its token), or the request was answered: it no longer waits.
    Dispatched(u32),
    Answered,
}

#[derive(Debug)]
struct Pending {
    route: Route,
    forwarded: Vec<(String, String)>,
    public: PublicBase,
    changes: Changes,
    /// The query can match nothing the upstream stores: answered at the edge.
    matches_nothing: bool,
    /// Attribute selection applied at the edge.
    projection: Projection,
}

/// What the per-request log line says: names and numbers, never ids, tokens or values.
#[derive(Debug, Default)]
struct Outline {
    /// Envoy's `x-request-id` (bounded: see [`request_id`]), which Omni's log can be matched on.
    request_id: String,
    method: String,
    endpoint: &'static str,
    /// How the request was admitted (`token=<name>`, `client=<name>`, `tenant=<name>`).
    auth: Option<String>,
    upstream_ms: Option<u64>,
    upstream_status: Option<u16>,
    /// How long the request waited for the budget (pacing).
    waited_ms: Option<u64>,
    note: &'static str,
}

pub struct Exchange {
    config: Rc<Config>,
    context_id: u32,
    state: State,
    outline: Outline,
}

impl Exchange {
    pub fn new(config: Rc<Config>, context_id: u32) -> Self {
        Exchange { config, context_id, state: State::Start, outline: Outline::default() }
    }

    pub fn on_request_headers(&mut self, host: &mut dyn Host, end_of_stream: bool) -> Flow {
        let path = header_text(host, ":path").unwrap_or_default();
        if self.is_token_endpoint(&path) {
            return self.token_headers(host, end_of_stream);
        }
        let (rest, query) = match scope(&self.config.scim_prefix, &path) {
            Scope::Outside => {
                self.state = State::Outside;
                return Flow::Continue;
            }
            Scope::Scim { rest, query } => (rest.to_string(), query.to_string()),
        };
        host.count(Counter::Requests);
        self.outline.request_id = request_id(host.request_header("x-request-id").as_deref());
        let method = header_text(host, ":method").unwrap_or_default();
        let mut shown = String::new();
        for c in method.chars().filter(char::is_ascii_uppercase).take(8) {
            shown.push(c);
        }
        self.outline.method = shown;

        match self.admit(host, &method, &rest, &query) {
            Err(error) => {
                self.refuse(host, error);
                Flow::Pause
            }
            Ok(pending) if end_of_stream => {
                self.forward(host, pending, None);
                Flow::Pause
            }
            Ok(pending) => {
                self.state = State::Buffering(pending);
                Flow::Continue
            }
        }
    }

    pub fn on_request_body(&mut self, host: &mut dyn Host, body_size: usize, end_of_stream: bool) -> Flow {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Outside => {
                self.state = State::Outside;
                Flow::Continue
            }
            State::Buffering(pending) => {
                if body_size > self.config.max_body_bytes {
                    self.reply(host, too_large(self.config.max_body_bytes).into_response());
                } else if end_of_stream {
                    let body = if body_size == 0 { Some(Vec::new()) } else { host.request_body(body_size) };
                    self.forward(host, pending, body);
                } else {
                    self.state = State::Buffering(pending);
                }
                Flow::Pause
            }
            State::TokenRequest(request) => self.token_body(host, request, body_size, end_of_stream),
            other => {
                self.state = other;
                Flow::Pause
            }
        }
    }

    /// The request ended in trailers (HTTP/2, or chunked HTTP/1.1): then no body callback carries
    /// `end_of_stream`, so the trailers are the end of the request and the buffered body is
    /// complete. Pausing here keeps the router from ever seeing the request.
    pub fn on_request_trailers(&mut self, host: &mut dyn Host) -> Flow {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Outside => {
                self.state = State::Outside;
                Flow::Continue
            }
            State::Buffering(pending) => {
                // One byte over the limit is enough to tell an oversized body.
                let limit = self.config.max_body_bytes;
                let body = host.request_body(limit.saturating_add(1)).unwrap_or_default();
                if body.len() > limit {
                    self.reply(host, too_large(limit).into_response());
                } else {
                    self.forward(host, pending, Some(body));
                }
                Flow::Pause
            }
            State::TokenRequest(request) => self.token_trailers(host, request),
            other => {
                self.state = other;
                Flow::Pause
            }
        }
    }

    pub fn on_upstream_response(&mut self, host: &mut dyn Host, token: u32, body_size: usize) {
        let flight = match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitingUpstream(flight) if flight.token == token => flight,
            other => {
                log::debug!("scim-edge ctx={}: ignoring callout answer {token}", self.context_id);
                self.state = other;
                return;
            }
        };
        let since = flight.since;
        if let (Some(start), Some(end)) = (since, host.now()) {
            let elapsed = u64::try_from(end.saturating_sub(start).as_millis()).unwrap_or(u64::MAX);
            self.outline.upstream_ms = Some(elapsed);
            host.record(Histogram::UpstreamLatencyMs, elapsed);
        }
        if body_size > self.config.upstream.max_response_bytes {
            return self.fail_upstream(host, UpstreamFailure::Oversized);
        }
        let mut headers = Vec::new();
        for &name in RELAYED_RESPONSE_HEADERS {
            if let Some(value) = header_text_of(host.upstream_response_header(name)) {
                headers.push((name.to_string(), value));
            }
        }
        let reply = UpstreamReply {
            status: header_text_of(host.upstream_response_header(":status")).and_then(|s| s.parse().ok()),
            content_type: header_text_of(host.upstream_response_header("content-type")),
            headers,
            body: if body_size == 0 { Vec::new() } else { host.upstream_response_body(body_size).unwrap_or_default() },
        };
        self.outline.upstream_status = reply.status;
        let policy = flight.resource_type.map(|rt| self.config.mapping.policy(rt)).filter(|p| !p.strips_nothing);
        let upstream = &self.config.upstream;
        match relay(reply, upstream, &flight.public, flight.resource_type, policy, &flight.projection) {
            Ok(mut response) => {
                self.bound_retry_after(host, &mut response);
                if response.status == 429 {
                    self.upstream_throttled(host, &mut response);
                } else if response.status >= 500 {
                    host.count(Counter::UpstreamFailures(UpstreamFailure::ServerError));
                }
                self.reply(host, response)
            }
            Err(failure) => self.fail_upstream(host, failure),
        }
    }

    /// The upstream answered 429: the budget stops until its `Retry-After` (bounded: see
    /// [`crate::retry_after`]), and the client is told when to retry.
    fn upstream_throttled(&mut self, host: &mut dyn Host, response: &mut Response) {
        let retry_after_s = match response.header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            Some(bounded) => bounded,
            None => {
                let wait = crate::retry_after::retry_after_seconds(None, None, self.config.upstream.max_retry_after_s);
                response.headers.push(("retry-after".to_string(), wait.to_string()));
                wait
            }
        };
        let (Some(limit), Some(now_ms)) = (self.config.rate_limit, now_ms(host)) else {
            return;
        };
        let max_block_ms = self.config.upstream.max_retry_after_s.saturating_mul(1000);
        let updated = self
            .update_budget(host, now_ms, max_block_ms, |bucket| (limit.back_off(bucket, now_ms, retry_after_s), ()));
        if updated.is_none() {
            log::warn!("scim-edge ctx={}: the upstream's 429 could not be stored in the budget", self.context_id);
        }
    }

    /// Rewrites the upstream's `Retry-After`, in whatever form it came, as delta-seconds within
    /// `upstream.max_retry_after_s` (RFC 9110 §10.2.3).
    fn bound_retry_after(&self, host: &dyn Host, response: &mut Response) {
        let now_s = host.now().map(|t| t.as_secs());
        let max = self.config.upstream.max_retry_after_s;
        for (name, value) in response.headers.iter_mut() {
            if name == "retry-after" {
                *value = crate::retry_after::retry_after_seconds(Some(value), now_s, max).to_string();
            }
        }
    }

    /// Draws one request from the upstream's budget (shared by every worker through the host's
    /// compare-and-swap). Fails closed: when the budget cannot be read or written, or other
    /// workers keep winning the race, the request is refused (429, retry after a second) rather
    /// than sent past a budget nobody could check.
    fn draw_budget(&mut self, host: &mut dyn Host, limit: &RateLimit, now: Option<Duration>) -> Decision {
        let Some(now_ms) = now.and_then(|t| u64::try_from(t.as_millis()).ok()) else {
            log::warn!("scim-edge ctx={}: no clock for the request budget", self.context_id);
            return Decision::Deny { retry_after_s: 1 };
        };
        let max_block_ms = self.config.upstream.max_retry_after_s.saturating_mul(1000);
        match self.update_budget(host, now_ms, max_block_ms, |bucket| limit.take(bucket, now_ms)) {
            Some(decision) => decision,
            None => {
                log::warn!("scim-edge ctx={}: the request budget is unavailable (shared data)", self.context_id);
                Decision::Deny { retry_after_s: 1 }
            }
        }
    }

    /// One compare-and-swap update of the budget in shared data: `change` gets the stored bucket
    /// (`None` when there is none yet) and returns the bucket to store. `None` when no update
    /// could be stored within [`BUDGET_ATTEMPTS`].
    ///
    /// Every write is conditional. The host creates a missing key whatever CAS it is given, but
    /// rejects a CAS that does not match an existing key: writing a new bucket with a CAS no
    /// entry carries ([`CREATE_CAS`]) creates it or, if another worker created it first (or the
    /// read failed and read as missing), conflicts and is retried on what is there. A stored
    /// value that is not a bucket counts as an empty one (it refills at the rate), never a full
    /// one. A block longer than `max_block_ms` (stored before the bound was configured) is cut.
    fn update_budget<T>(
        &mut self,
        host: &mut dyn Host,
        now_ms: u64,
        max_block_ms: u64,
        mut change: impl FnMut(Option<Bucket>) -> (Bucket, T),
    ) -> Option<T> {
        let key = self.config.upstream.budget_key();
        for _ in 0..BUDGET_ATTEMPTS {
            let (bucket, cas) = match host.shared_get(key) {
                (None, _) => (None, CREATE_CAS),
                (Some(bytes), Some(cas)) => {
                    let empty = Bucket { milli_tokens: 0, updated_ms: now_ms, blocked_until_ms: 0 };
                    let mut bucket = Bucket::decode(&bytes).unwrap_or(empty);
                    bucket.blocked_until_ms = bucket.blocked_until_ms.min(now_ms.saturating_add(max_block_ms));
                    bucket.updated_ms = bucket.updated_ms.min(now_ms.saturating_add(max_block_ms));
                    (Some(bucket), cas)
                }
                // A value without a CAS cannot be updated safely.
                (Some(_), None) => return None,
            };
            let (next, outcome) = change(bucket);
            match host.shared_set(key, &next.encode(), Some(cas)) {
                SharedWrite::Stored => return Some(outcome),
                SharedWrite::Conflict => continue,
                SharedWrite::Failed => return None,
            }
        }
        None
    }

    /// Authentication, then routing, then the checks that need only the headers.
    fn admit(&mut self, host: &mut dyn Host, method: &str, rest: &str, query: &str) -> Result<Pending, ScimError> {
        let config = Rc::clone(&self.config);
        self.outline.endpoint = endpoint_hint(rest);
        match crate::admission::admit(&config, host) {
            Ok(admitted) => {
                host.count(admitted.counter());
                self.outline.auth = Some(admitted.label());
            }
            Err(failure) => {
                host.count(Counter::AuthRejected(failure));
                self.outline.note = failure.as_str();
                return Err(ScimError::new(401, failure.detail()).with_header("www-authenticate", failure.challenge()));
            }
        }

        let mut route = resolve(method, rest, query)?;
        self.outline.endpoint = route.endpoint.label();
        host.count(Counter::Endpoint(route.endpoint.label(), route.method.as_str()));
        let mut changes = Changes::default();
        if route.endpoint == Endpoint::Search(None) {
            let mapping = &config.mapping;
            mapping.users.contract.root_search(route.endpoint.label())?;
            // Its answer mixes resource types, each stripped by its own mapping: rather than trust
            // each resource to say what it is, a root search is not served when either strips.
            if !(mapping.users.strips_nothing && mapping.groups.strips_nothing) {
                return Err(ScimError::new(
                    501,
                    "/.search is not served while the mapping removes attributes: search /Users/.search or /Groups/.search",
                ));
            }
        }
        let (query, projection) = canonical_query(&config, &route, &mut changes)?;
        let matches_nothing = query.is_none();
        route.query = query.unwrap_or_default();

        let content_length = header_text(host, "content-length").and_then(|v| v.parse::<u64>().ok());
        if content_length.is_some_and(|n| n > config.max_body_bytes as u64) {
            return Err(too_large(config.max_body_bytes));
        }
        if route.method.carries_body() && !header_text(host, "content-type").is_some_and(|ct| is_scim_json(&ct)) {
            return Err(ScimError::new(
                415,
                "SCIM request bodies must be sent as 'Content-Type: application/scim+json' (RFC 7644 §8.1)",
            ));
        }
        let mut forwarded = Vec::new();
        for &name in FORWARDED_REQUEST_HEADERS {
            if let Some(value) = header_text(host, name) {
                forwarded.push((name.to_string(), value));
            }
        }
        // Never from :authority or X-Forwarded-*: the client chooses those.
        let public = config.public_base.clone();
        Ok(Pending { route, forwarded, public, changes, matches_nothing, projection })
    }

    fn forward(&mut self, host: &mut dyn Host, pending: Pending, body: Option<Vec<u8>>) {
        let Pending { mut route, forwarded, public, mut changes, matches_nothing, mut projection } = pending;
        let planned = if matches_nothing {
            Ok(Planned::Answer(empty_list()))
        } else if let Endpoint::Discovery(endpoint, id) = &route.endpoint {
            // RFC 7644 §4: answered by the edge, which describes itself; nothing goes upstream.
            crate::discovery::answer(&self.config, &public, *endpoint, id.as_deref())
                .map(|document| Planned::Answer(Response::scim_json(200, &document)))
        } else {
            prepare_body(&self.config, &mut route, &mut projection, body.as_deref().unwrap_or_default(), &mut changes)
        };
        for kind in changes.kinds() {
            host.count(Counter::Normalised(*kind));
        }
        for name in changes.stripped() {
            log::debug!("scim-edge ctx={}: stripped {name}", self.context_id);
            host.count(Counter::Stripped(name));
        }
        let body = match planned {
            Ok(Planned::Forward(body)) => body,
            Ok(Planned::Answer(response)) => return self.reply(host, response),
            Err(error) => return self.refuse(host, error),
        };
        // One clock read for the budget and the callout's latency.
        let since = host.now();
        let call = self.config.upstream.call(&route, forwarded, body);
        let resource_type = route.endpoint.resource_type();
        if let Some(limit) = self.config.rate_limit {
            let ahead = if limit.pacing.enabled() { host.waiting() } else { 0 };
            // First come, first served: while others wait on this worker, a new request queues
            // behind them instead of drawing the budget.
            let decision = if ahead > 0 {
                let retry_after_s = (limit.interval_ms() * ahead as u64).div_ceil(1000).max(1);
                Decision::Deny { retry_after_s }
            } else {
                self.draw_budget(host, &limit, since)
            };
            if let Decision::Deny { retry_after_s } = decision {
                let Some(now_ms) = since.and_then(|t| u64::try_from(t.as_millis()).ok()) else {
                    return self.budget_spent(host, &limit, retry_after_s, "rate_limited");
                };
                if !limit.pacing.enabled() {
                    return self.budget_spent(host, &limit, retry_after_s, "rate_limited");
                }
                if ahead >= limit.pacing.max_waiting as usize {
                    host.count(Counter::PacingRefused("queue_full"));
                    return self.budget_spent(host, &limit, retry_after_s, "queue_full");
                }
                // The wait this request would have: its place in the queue at the refill rate, or
                // the budget's own answer when that is later (an upstream 429's back-off).
                let estimate_ms = (retry_after_s * 1000).max(limit.interval_ms() * (ahead as u64 + 1));
                if estimate_ms > u64::from(limit.pacing.max_wait_ms) {
                    host.count(Counter::PacingRefused("max_wait"));
                    return self.budget_spent(host, &limit, estimate_ms.div_ceil(1000), "max_wait");
                }
                host.count(Counter::Paced);
                self.state = State::Waiting(Waiting { call, public, resource_type, projection, since_ms: now_ms });
                return;
            }
        }
        self.dispatch(host, call, public, since, resource_type, projection);
    }

    /// A paced request's turn, maybe: called in order of arrival on every tick while it waits.
    /// `may_dispatch` is false once an earlier request found the budget still spent (nobody
    /// overtakes it); a request past its maximum wait is answered 429 either way.
    pub fn resume(&mut self, host: &mut dyn Host, may_dispatch: bool) -> Resumed {
        let waiting = match std::mem::replace(&mut self.state, State::Done) {
            State::Waiting(waiting) => waiting,
            other => {
                self.state = other;
                return Resumed::Answered;
            }
        };
        let (Some(limit), Some(now)) = (self.config.rate_limit, host.now()) else {
            self.state = State::Waiting(waiting);
            return Resumed::Waiting;
        };
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let waited_ms = now_ms.saturating_sub(waiting.since_ms);
        let decision = if may_dispatch { Some(self.draw_budget(host, &limit, Some(now))) } else { None };
        match decision {
            Some(Decision::Allow) => {
                self.outline.waited_ms = Some(waited_ms);
                host.record(Histogram::PacingWaitMs, waited_ms);
                let Waiting { call, public, resource_type, projection, .. } = waiting;
                self.dispatch(host, call, public, Some(now), resource_type, projection);
                match &self.state {
                    State::AwaitingUpstream(flight) => Resumed::Dispatched(flight.token),
                    _ => Resumed::Answered,
                }
            }
            _ if waited_ms >= u64::from(limit.pacing.max_wait_ms) => {
                self.outline.waited_ms = Some(waited_ms);
                host.count(Counter::PacingRefused("max_wait"));
                let retry_after_s = match decision {
                    Some(Decision::Deny { retry_after_s }) => retry_after_s,
                    _ => limit.interval_ms().div_ceil(1000).max(1),
                };
                self.budget_spent(host, &limit, retry_after_s, "max_wait");
                Resumed::Answered
            }
            _ => {
                self.state = State::Waiting(waiting);
                Resumed::Waiting
            }
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self.state, State::Waiting(_))
    }

    /// The upstream's budget is spent and the request will not wait (or waited its longest):
    /// SCIM 429 with when to retry.
    fn budget_spent(&mut self, host: &mut dyn Host, limit: &RateLimit, retry_after_s: u64, note: &'static str) {
        host.count(Counter::RateLimited);
        self.outline.note = note;
        let error = ScimError::new(
            429,
            format!(
                "The upstream's request budget ({} per minute) is spent; retry after {retry_after_s} s",
                limit.requests_per_minute
            ),
        )
        .with_header("retry-after", retry_after_s.to_string());
        self.reply(host, error.into_response());
    }

    fn dispatch(
        &mut self,
        host: &mut dyn Host,
        call: UpstreamCall,
        public: PublicBase,
        since: Option<Duration>,
        resource_type: Option<ResourceType>,
        projection: Projection,
    ) {
        match host.dispatch(&call) {
            Ok(token) => {
                self.state = State::AwaitingUpstream(InFlight { token, public, since, resource_type, projection });
            }
            Err(reason) => {
                log::warn!(
                    "scim-edge ctx={}: callout to cluster '{}' not started: {reason}",
                    self.context_id,
                    self.config.upstream.cluster
                );
                self.fail_upstream(host, UpstreamFailure::Dispatch);
            }
        }
    }

    /// Answers a request the gateway refuses, counting it by `scimType` when it has one.
    fn refuse(&mut self, host: &mut dyn Host, error: ScimError) {
        if let Some(scim_type) = error.scim_type {
            host.count(Counter::Invalid(scim_type));
        }
        self.reply(host, error.into_response());
    }

    fn fail_upstream(&mut self, host: &mut dyn Host, failure: UpstreamFailure) {
        host.count(Counter::UpstreamFailures(failure));
        self.outline.note = failure.as_str();
        let error = failure.error(&self.config.upstream);
        self.reply(host, error.into_response());
    }

    fn reply(&mut self, host: &mut dyn Host, response: Response) {
        host.count(Counter::Responses(status_class(response.status)));
        host.send_response(&response);
        self.state = State::Done;
        self.log_line(&response.status.to_string());
    }

    /// The stream ended (Envoy's access-log step). A callout still in flight means the client went
    /// away after the request was sent: the upstream gets it and applies it all the same (ABI
    /// v0.2.1 cannot cancel a callout), and its answer will find no stream, so the request's one
    /// log line is written now, with the client's status `-` and the reason.
    pub fn on_stream_end(&mut self) {
        match self.state {
            State::AwaitingUpstream(_) => {
                self.state = State::Done;
                self.outline.note = "client_gone";
                self.log_line("-");
            }
            // A paced request whose client went away leaves the queue: nothing went upstream.
            State::Waiting(_) => {
                self.state = State::Done;
                self.outline.note = "client_gone_waiting";
                self.log_line("-");
            }
            _ => {}
        }
    }

    /// The request's one log line: names and numbers, never ids, tokens or values.
    fn log_line(&self, status: &str) {
        let o = &self.outline;
        log::info!(
            "scim-edge ctx={} request_id={} {} {} {} status={status}{}{}",
            self.context_id,
            if o.request_id.is_empty() { "-" } else { &o.request_id },
            if o.method.is_empty() { "-" } else { &o.method },
            if o.endpoint.is_empty() { "-" } else { o.endpoint },
            o.auth.as_deref().unwrap_or("token=-"),
            o.upstream_status.map(|s| format!(" upstream_status={s}")).unwrap_or_default()
                + &o.upstream_ms.map(|ms| format!(" upstream_ms={ms}")).unwrap_or_default()
                + &o.waited_ms.map(|ms| format!(" waited_ms={ms}")).unwrap_or_default(),
            if o.note.is_empty() { String::new() } else { format!(" reason={}", o.note) },
        );
    }
}

/// Envoy's `x-request-id` for the log line, when it looks like one (a UUID or similar token: at
/// most 64 letters, digits, `-`, `_`, `.`); anything else a client could have put there is `-`.
fn request_id(value: Option<&[u8]>) -> String {
    match value {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            String::from_utf8_lossy(id).into_owned()
        }
        _ => String::new(),
    }
}

/// For the log line of a request that is not (yet) routed: the endpoint it aims at when that is a
/// SCIM name, never a client-chosen string.
fn endpoint_hint(rest: &str) -> &'static str {
    const KNOWN: &[&str] =
        &["Users", "Groups", "Me", "Bulk", ".search", "ServiceProviderConfig", "Schemas", "ResourceTypes"];
    let first = rest.split('/').next().unwrap_or_default();
    KNOWN.iter().find(|k| **k == first).copied().unwrap_or("unknown")
}

fn now_ms(host: &dyn Host) -> Option<u64> {
    host.now().and_then(|t| u64::try_from(t.as_millis()).ok())
}

fn too_large(max: usize) -> ScimError {
    ScimError::new(413, format!("The request body is larger than this gateway accepts ({max} bytes)"))
}

/// The query string as sent upstream: parsed against the endpoint's schema, restricted to the
/// mapping and to the upstream's contract, and re-encoded canonically (`None` when its filter can
/// match nothing the upstream stores); and the attribute selection left to the edge. Discovery
/// endpoints and `/.search` take no parameters.
fn canonical_query(
    config: &Config,
    route: &Route,
    changes: &mut Changes,
) -> Result<(Option<String>, Projection), ScimError> {
    let resource_type = match &route.endpoint {
        Endpoint::Collection(rt) | Endpoint::Resource(rt, _) => Some(*rt),
        Endpoint::Discovery(..) | Endpoint::Search(_) => None,
    };
    let Some(resource_type) = resource_type else {
        if route.query.is_empty() {
            return Ok((Some(String::new()), Projection::default()));
        }
        let detail = format!("/{} takes no query parameters", route.endpoint.label());
        return Err(ScimError::bad_request(ScimType::InvalidValue, detail));
    };
    let policy = config.mapping.policy(resource_type);
    let collection = matches!(route.endpoint, Endpoint::Collection(_)) && route.method == Method::Get;
    let mut query = parse_query(&route.query, route.method, collection, policy.schema)?;
    if !policy.restrict_query(&mut query, changes) {
        return Ok((None, Projection::default()));
    }
    let projection = policy.contract.query(policy.resource_type(), &mut query);
    query.cap_count();
    let canonical = query.to_query_string();
    if canonical != route.query {
        changes.note(Normalisation::QueryReencoded);
    }
    Ok((Some(canonical), projection))
}

/// What to do with a request once its body is prepared.
enum Planned {
    /// Call the upstream with this body (or none).
    Forward(Option<Vec<u8>>),
    /// Answer at the edge: nothing the upstream would do could change the answer.
    Answer(Response),
}

/// The body as sent upstream: a validated, canonical, mapped resource (POST, PUT), PatchOp
/// (PATCH) or SearchRequest (POST .search); nothing for the other methods.
fn prepare_body(
    config: &Config,
    route: &mut Route,
    projection: &mut Projection,
    body: &[u8],
    changes: &mut Changes,
) -> Result<Planned, ScimError> {
    let mapping = &config.mapping;
    let prepared = match (&route.endpoint, route.method) {
        (Endpoint::Collection(rt), Method::Post) => {
            prepare_resource(mapping.policy(*rt), Method::Post, None, body, changes)?
        }
        (Endpoint::Resource(rt, id), Method::Put) => {
            prepare_resource(mapping.policy(*rt), Method::Put, Some(id), body, changes)?
        }
        (Endpoint::Resource(rt, _), Method::Patch) => match prepare_patch(mapping.policy(*rt), body, changes)? {
            Some(patch) => patch,
            // RFC 7644 §3.5.2: 204 when the server returns no resource.
            None => return Ok(Planned::Answer(Response { status: 204, headers: Vec::new(), body: Vec::new() })),
        },
        (Endpoint::Search(rt), Method::Post) => {
            let policies: Vec<&Policy> = match rt {
                Some(rt) => vec![mapping.policy(*rt)],
                None => vec![&mapping.users, &mapping.groups],
            };
            let Some((mut query, policy)) = prepare_search(&policies, body, changes)? else {
                return Ok(Planned::Answer(empty_list()));
            };
            if policy.contract.search_as_get() {
                // Omni's API has no .search: the same query as the GET it is equivalent to
                // (RFC 7644 §3.4.3).
                *projection = policy.contract.query(policy.resource_type(), &mut query);
                route.method = Method::Get;
                route.endpoint = Endpoint::Collection(policy.resource_type());
                route.query = query.to_query_string();
                return Ok(Planned::Forward(None));
            }
            search_request(&query)
        }
        _ => return Ok(Planned::Forward(None)),
    };
    let mut forwarded = Vec::with_capacity(body.len());
    serde_json::to_writer(&mut forwarded, &prepared)
        .map(|()| Planned::Forward(Some(forwarded)))
        .map_err(|_| ScimError::bad_request(ScimType::InvalidValue, "The request body could not be re-encoded"))
}

/// An empty ListResponse (RFC 7644 §3.4.2), for queries that can match nothing.
fn empty_list() -> Response {
    // The same bytes serde_json writes for this document (its members in key order).
    const BODY: &str = r#"{"Resources":[],"itemsPerPage":0,"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"startIndex":1,"totalResults":0}"#;
    Response {
        status: 200,
        headers: vec![("content-type".to_string(), crate::http::SCIM_MEDIA_TYPE.to_string())],
        body: BODY.as_bytes().to_vec(),
    }
}

fn header_text(host: &dyn Host, name: &str) -> Option<String> {
    header_text_of(host.request_header(name))
}

/// Header bytes as text; non-UTF-8 values count as absent.
fn header_text_of(value: Option<Vec<u8>>) -> Option<String> {
    value.and_then(|v| String::from_utf8(v).ok())
}

#[cfg(test)]
mod tests;
mod token;
