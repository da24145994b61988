//! The proxy-wasm adapter: the only code that talks to Envoy. It is built on the `proxy-wasm`
//! crate (the SDK): [`Root`] is the plugin's `RootContext` (it reads and compiles the
//! configuration), [`Stream`] is one HTTP stream's `HttpContext` (it feeds the stream's callbacks
//! to an [`Exchange`]), and [`host::HostCalls`] is the core's [`crate::exchange::Host`] over the
//! SDK's host calls.
//!
//! The SDK's wrappers panic on a host status they do not expect, and a panic kills the VM with
//! every request on it. Where Envoy really returns such a status, [`raw`] makes the call itself;
//! its doc names each case and the test that reproduces it.

mod host;
mod raw;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::{comma_separated, Config};
use crate::exchange::{Exchange, Flow, Resumed};
use crate::scim_error::ScimError;
use host::{Counters, HostCalls};

#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

proxy_wasm::main! {{
    // The SDK's logger writes through `proxy_log`, and its panic hook leaves Envoy a line saying
    // where and why before the VM aborts. The level follows Envoy's, read when the VM starts and at
    // each configuration (`follow_host_log_level`).
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::<Root>::default() });
}}

/// Envoy's level for the `wasm` component (`--component-log-level wasm:debug` shows the debug
/// lines); `off` turns the filter's lines off too.
fn follow_host_log_level() {
    match raw::log_level() {
        Some(level) => proxy_wasm::set_log_level(level),
        None => log::set_max_level(log::LevelFilter::Off),
    }
}

/// One plugin: its compiled configuration, the VM's metric ids and the paced requests, shared
/// by its streams.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    counters: Rc<RefCell<Counters>>,
    paced: Rc<RefCell<Paced>>,
}

/// A stream's exchange and host calls. The stream owns them; the root reaches a paced one through
/// a weak reference, which fails once Envoy has deleted the stream.
struct StreamState {
    exchange: Exchange,
    host: HostCalls,
}

/// The requests of this worker that wait for the upstream's budget, in order of arrival, and the
/// callouts the root started for them (their answers come to the root).
#[derive(Default)]
pub struct Paced {
    waiting: VecDeque<(u32, Weak<RefCell<StreamState>>)>,
    callouts: Vec<(u32, u32, Weak<RefCell<StreamState>>)>,
}

impl Paced {
    pub fn queued(&self) -> usize {
        self.waiting.len()
    }
}

impl Root {
    /// Runs `callback` on the stream `context_id` with host calls pointed at it, unless Envoy has
    /// ended it.
    fn on_stream(context_id: u32, stream: &Weak<RefCell<StreamState>>, callback: impl FnOnce(&mut StreamState)) {
        let Some(stream) = stream.upgrade() else { return };
        if hostcalls::set_effective_context(context_id).is_err() {
            return;
        }
        if let Ok(mut state) = stream.try_borrow_mut() {
            callback(&mut state);
        };
    }
}

/// The answer of a callout the root started for a paced request: routed to its stream.
impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let found = {
            let mut paced = self.paced.borrow_mut();
            let index = paced.callouts.iter().position(|(token, _, _)| *token == token_id);
            index.map(|index| paced.callouts.swap_remove(index))
        };
        let Some((_, context_id, stream)) = found else {
            log::warn!("scim-edge: answer for unknown callout {token_id}");
            return;
        };
        Root::on_stream(context_id, &stream, |state| {
            state.exchange.on_upstream_response(&mut state.host, token_id, body_size);
        });
    }
}

impl RootContext for Root {
    /// Paced requests get their turn, first come first served, while the budget allows; one past
    /// its maximum wait is answered 429 (src/exchange.rs, `resume`).
    fn on_tick(&mut self) {
        let waiting = std::mem::take(&mut self.paced.borrow_mut().waiting);
        let mut may_dispatch = true;
        let mut still = VecDeque::new();
        let mut started = Vec::new();
        for (context_id, stream) in waiting {
            let mut resumed = Resumed::Answered;
            Root::on_stream(context_id, &stream, |state| {
                resumed = state.exchange.resume(&mut state.host, may_dispatch);
            });
            match resumed {
                Resumed::Waiting => {
                    may_dispatch = false;
                    still.push_back((context_id, stream));
                }
                Resumed::Dispatched(token) => started.push((token, context_id, stream)),
                Resumed::Answered => {}
            }
        }
        let mut paced = self.paced.borrow_mut();
        paced.waiting = still;
        paced.callouts.extend(started);
    }

    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        follow_host_log_level();
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        follow_host_log_level();
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        // The upstream credential comes from the VM's environment (WASI `environ_get`, which Envoy
        // fills from `vm_config.environment_variables`).
        match Config::from_json(&bytes, &host::env_var) {
            Ok(config) => {
                log::info!(
                    "scim-edge {}: configured: prefix {}, {} token(s) [{}], upstream cluster '{}' base path '{}', \
                     profile {}, budget {}",
                    env!("CARGO_PKG_VERSION"),
                    config.scim_prefix,
                    config.tokens.names().count(),
                    comma_separated(&config.tokens.names().collect::<Vec<_>>()),
                    config.upstream.cluster,
                    config.upstream.base_path,
                    config.mapping.users.profile.as_str(),
                    config
                        .rate_limit
                        .map_or("off".to_string(), |l| format!("{}/min burst {}", l.requests_per_minute, l.burst)),
                );
                if let Some(limit) = config.rate_limit.filter(|limit| limit.pacing.enabled()) {
                    // A tick a quarter of the refill interval, within 10-100 ms: a token is used
                    // soon after it refills, and an idle worker wakes at most ten times a second.
                    let tick_ms = (limit.interval_ms() / 4).clamp(10, 100);
                    self.set_tick_period(Duration::from_millis(tick_ms));
                }
                self.config = Some(Rc::new(config));
                true
            }
            Err(error) => {
                log::error!("scim-edge: invalid configuration: {error}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let host = HostCalls::new(Rc::clone(&self.counters), Rc::clone(&self.paced));
        let state = self.config.as_ref().map(|config| {
            Rc::new(RefCell::new(StreamState { exchange: Exchange::new(Rc::clone(config), context_id), host }))
        });
        Some(Box::new(Stream { context_id, state, paced: Rc::clone(&self.paced) }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream: its [`Exchange`] and the host calls it makes.
struct Stream {
    context_id: u32,
    /// `None` when the plugin has no valid configuration. Envoy refuses a plugin whose
    /// on_configure failed, so this is a should-not-happen; if it does, nothing gets through.
    state: Option<Rc<RefCell<StreamState>>>,
    paced: Rc<RefCell<Paced>>,
}

impl Stream {
    /// Runs a request callback on the exchange, or refuses the request when there is none; a
    /// request that now waits for the budget joins the worker's queue.
    fn on_request(&mut self, callback: impl FnOnce(&mut Exchange, &mut HostCalls) -> Flow) -> Action {
        let flow = match self.state.as_ref().map(|state| state.try_borrow_mut()) {
            Some(Ok(mut state)) => {
                let StreamState { exchange, host } = &mut *state;
                let flow = callback(exchange, host);
                if exchange.is_waiting() {
                    if let (Ok(mut paced), Some(shared)) = (self.paced.try_borrow_mut(), self.state.as_ref()) {
                        paced.waiting.push_back((self.context_id, Rc::downgrade(shared)));
                    }
                }
                flow
            }
            _ => {
                refuse_unconfigured();
                Flow::Pause
            }
        };
        match flow {
            Flow::Continue => Action::Continue,
            Flow::Pause => Action::Pause,
        }
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        if let Some(Ok(mut state)) = self.state.as_ref().map(|state| state.try_borrow_mut()) {
            let StreamState { exchange, host } = &mut *state;
            exchange.on_upstream_response(host, token_id, body_size);
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        if let Some(state) = &self.state {
            inject_fault(&state.borrow().host);
        }
        self.on_request(|exchange, host| exchange.on_request_headers(host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_request(|exchange, host| exchange.on_request_body(host, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_request(|exchange, host| exchange.on_request_trailers(host))
    }

    fn on_log(&mut self) {
        if let Some(Ok(mut state)) = self.state.as_ref().map(|state| state.try_borrow_mut()) {
            state.exchange.on_stream_end();
        }
    }
}

/// Answers the current stream 503: the gateway has no configuration for it.
fn refuse_unconfigured() {
    let response = ScimError::new(503, "The SCIM gateway has no valid configuration").into_response();
    let headers: Vec<(&str, &str)> = response.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    if let Err(status) = hostcalls::send_http_response(u32::from(response.status), headers, Some(&response.body)) {
        log::error!("scim-edge: cannot send the response (503): {status:?}");
    }
}

/// Test builds only (`--features fault-injection`, never `make build`): `x-scim-edge-fault: panic`
/// kills the VM, so tests/test_faults.py can prove what Envoy does when the filter dies.
#[cfg(feature = "fault-injection")]
#[allow(clippy::panic)] // the one deliberate panic: it is the fault being injected
fn inject_fault(host: &HostCalls) {
    use crate::exchange::Host;
    if host.request_header("x-scim-edge-fault").as_deref() == Some(b"panic".as_slice()) {
        panic!("scim-edge: fault injected (x-scim-edge-fault: panic)");
    }
}
