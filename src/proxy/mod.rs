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

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::{comma_separated, Config};
use crate::exchange::{Exchange, Flow};
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

/// One plugin: its compiled configuration and the VM's metric ids, shared by its streams.
#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    counters: Rc<std::cell::RefCell<Counters>>,
}

impl Context for Root {}

impl RootContext for Root {
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
        let exchange = self.config.as_ref().map(|config| Exchange::new(Rc::clone(config), context_id));
        Some(Box::new(Stream { exchange, host: HostCalls::new(Rc::clone(&self.counters)) }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP stream: its [`Exchange`] and the host calls it makes.
struct Stream {
    /// `None` when the plugin has no valid configuration. Envoy refuses a plugin whose
    /// on_configure failed, so this is a should-not-happen; if it does, nothing gets through.
    exchange: Option<Exchange>,
    host: HostCalls,
}

impl Stream {
    /// Runs a request callback on the exchange, or refuses the request when there is none.
    fn on_request(&mut self, callback: impl FnOnce(&mut Exchange, &mut HostCalls) -> Flow) -> Action {
        let flow = match &mut self.exchange {
            Some(exchange) => callback(exchange, &mut self.host),
            None => {
                refuse_unconfigured(&mut self.host);
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
        if let Some(exchange) = &mut self.exchange {
            exchange.on_upstream_response(&mut self.host, token_id, body_size);
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        inject_fault(&self.host);
        self.on_request(|exchange, host| exchange.on_request_headers(host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.on_request(|exchange, host| exchange.on_request_body(host, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.on_request(|exchange, host| exchange.on_request_trailers(host))
    }

    fn on_log(&mut self) {
        if let Some(exchange) = &mut self.exchange {
            exchange.on_stream_end();
        }
    }
}

/// Answers the current stream 503: the gateway has no configuration for it.
fn refuse_unconfigured(host: &mut HostCalls) {
    let response = ScimError::new(503, "The SCIM gateway has no valid configuration").into_response();
    crate::exchange::Host::send_response(host, &response);
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
