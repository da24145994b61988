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
//!
//! This file holds the transitions, in the order a request meets them: headers, admission, body,
//! forward, the upstream's answer, the relayed reply. What they call lives beside it: the host
//! interface (`host`), request shaping (`shaping`), the budget and pacing (`budget`), the access
//! log (`access_log`) and the OAuth token endpoint (`token`).

use std::rc::Rc;
use std::time::Duration;

use crate::config::Config;
use crate::http::{status_class, Response};
use crate::metrics::{Counter, Histogram};
use crate::route::{resolve, scope, ResourceType, Route, Scope};
use crate::scim::normalisation::Changes;
use crate::scim::query::Projection;
use crate::scim_error::ScimError;
use crate::upstream::{relay, PublicBase, UpstreamCall, UpstreamFailure};

pub use crate::ratelimit::SharedWrite;
pub use budget::Resumed;
pub use host::Host;

use access_log::{endpoint_hint, request_id, AccessRecord};
use budget::Waiting;
use host::{header_text, upstream_reply};
use shaping::{plan, shape_headers, Planned};

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

pub struct Exchange {
    config: Rc<Config>,
    context_id: u32,
    state: State,
    record: AccessRecord,
}

impl Exchange {
    pub fn new(config: Rc<Config>, context_id: u32) -> Self {
        Exchange { config, context_id, state: State::Start, record: AccessRecord::default() }
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
        self.record.request_id = request_id(host.request_header("x-request-id").as_deref());
        let method = header_text(host, ":method").unwrap_or_default();
        let mut shown = String::new();
        for c in method.chars().filter(char::is_ascii_uppercase).take(8) {
            shown.push(c);
        }
        self.record.method = shown;

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

    /// Authentication, then routing, then the checks that need only the headers.
    fn admit(&mut self, host: &mut dyn Host, method: &str, rest: &str, query: &str) -> Result<Pending, ScimError> {
        let config = Rc::clone(&self.config);
        self.record.endpoint = endpoint_hint(rest);
        match crate::admission::admit(&config, host) {
            Ok(admitted) => {
                host.count(admitted.counter());
                self.record.auth = Some(admitted.label());
            }
            Err(failure) => {
                host.count(Counter::AuthRejected(failure));
                self.record.note = failure.as_str();
                return Err(ScimError::new(401, failure.detail()).with_header("www-authenticate", failure.challenge()));
            }
        }

        let route = resolve(method, rest, query)?;
        self.record.endpoint = route.endpoint.label();
        host.count(Counter::Endpoint(route.endpoint.label(), route.method.as_str()));
        shape_headers(&config, host, route)
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

    fn forward(&mut self, host: &mut dyn Host, pending: Pending, body: Option<Vec<u8>>) {
        let Pending { mut route, forwarded, public, mut changes, matches_nothing, mut projection } = pending;
        let body = body.as_deref().unwrap_or_default();
        let planned = plan(&self.config, &mut route, &public, &mut projection, matches_nothing, body, &mut changes);
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
        self.within_budget(host, call, public, since, resource_type, projection);
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
            self.record.upstream_ms = Some(elapsed);
            host.record(Histogram::UpstreamLatencyMs, elapsed);
        }
        if body_size > self.config.upstream.max_response_bytes {
            return self.fail_upstream(host, UpstreamFailure::Oversized);
        }
        let reply = upstream_reply(host, body_size);
        self.record.upstream_status = reply.status;
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

    /// Answers a request the gateway refuses, counting it by `scimType` when it has one.
    fn refuse(&mut self, host: &mut dyn Host, error: ScimError) {
        if let Some(scim_type) = error.scim_type {
            host.count(Counter::Invalid(scim_type));
        }
        self.reply(host, error.into_response());
    }

    fn fail_upstream(&mut self, host: &mut dyn Host, failure: UpstreamFailure) {
        host.count(Counter::UpstreamFailures(failure));
        self.record.note = failure.as_str();
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
                self.record.note = "client_gone";
                self.log_line("-");
            }
            // A paced request whose client went away leaves the queue: nothing went upstream.
            State::Waiting(_) => {
                self.state = State::Done;
                self.record.note = "client_gone_waiting";
                self.log_line("-");
            }
            _ => {}
        }
    }
}

fn too_large(max: usize) -> ScimError {
    ScimError::new(413, format!("The request body is larger than this gateway accepts ({max} bytes)"))
}

mod access_log;
mod budget;
mod host;
mod shaping;
#[cfg(test)]
mod tests;
mod token;
