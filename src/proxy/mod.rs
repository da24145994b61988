//! The proxy-wasm adapter: the only code that talks to Envoy. It reads the plugin configuration,
//! creates one [`Exchange`] per HTTP stream and translates host callbacks into calls on it.
//!
//! [`exports`] holds the callbacks Envoy makes (the proxy-wasm ABI v0.2.1 exports) and routes
//! them to a [`Root`] (one per plugin) or a [`Filter`] (one per HTTP stream); [`hostcall`] holds
//! the calls the filter makes, each returning the host's status. No proxy-wasm SDK: see
//! `hostcall` for why.

mod exports;
mod hostcall;
mod logger;

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use crate::config::{comma_separated, Config};
use crate::exchange::{Exchange, Flow, Host, SharedWrite};
use crate::header_map::HeaderMap;
use crate::http::Response;
use crate::metrics::{Counter, Histogram};
use crate::scim_error::ScimError;
use crate::upstream::UpstreamCall;
use hostcall::{BufferType, MapType, MetricType, Status};

#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
    counters: Rc<RefCell<Counters>>,
}

impl Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match hostcall::buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(bytes) => bytes.unwrap_or_default(),
            Err(status) => {
                log::error!("scim-edge: cannot read the plugin configuration: {status}");
                return false;
            }
        };
        match Config::from_json(&bytes, &hostcall::env_var) {
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

    fn create_http_context(&self, context_id: u32) -> Filter {
        let host = HostCalls::new(Rc::clone(&self.counters));
        let exchange = self.config.as_ref().map(|config| Exchange::new(Rc::clone(config), context_id));
        Filter { exchange, host }
    }
}

/// One HTTP stream.
struct Filter {
    /// `None` when the plugin has no valid configuration. Envoy refuses a plugin whose
    /// on_configure failed, so this is a should-not-happen; if it does, nothing gets through.
    exchange: Option<Exchange>,
    host: HostCalls,
}

impl Filter {
    /// A stream of a plugin that has no root context (should not happen): every request is
    /// refused.
    fn unconfigured() -> Filter {
        Filter { exchange: None, host: HostCalls::new(Rc::default()) }
    }

    fn on_http_call_response(&mut self, token: u32, body_size: usize) {
        if let Some(exchange) = &mut self.exchange {
            exchange.on_upstream_response(&mut self.host, token, body_size);
        }
    }

    fn on_request_headers(&mut self, end_of_stream: bool) -> Flow {
        #[cfg(feature = "fault-injection")]
        inject_fault(&self.host);
        match &mut self.exchange {
            Some(exchange) => exchange.on_request_headers(&mut self.host, end_of_stream),
            None => {
                refuse_unconfigured();
                Flow::Pause
            }
        }
    }

    fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Flow {
        match &mut self.exchange {
            Some(exchange) => exchange.on_request_body(&mut self.host, body_size, end_of_stream),
            None => Flow::Continue,
        }
    }
}

/// Answers the current stream 503: the gateway has no configuration (or no state) for it.
fn refuse_unconfigured() {
    let response = ScimError::new(503, "The SCIM gateway has no valid configuration").into_response();
    if let Err(status) = hostcall::send_local_response(response.status, &response.headers, &response.body) {
        log::error!("scim-edge: cannot send the response ({}): {status}", response.status);
    }
}

/// Test builds only (`--features fault-injection`, never `make build`): `x-scim-edge-fault: panic`
/// kills the VM, so tests/test_faults.py can prove what Envoy does when the filter dies.
#[cfg(feature = "fault-injection")]
#[allow(clippy::panic)] // the one deliberate panic: it is the fault being injected
fn inject_fault(host: &HostCalls) {
    if host.request_header("x-scim-edge-fault").as_deref() == Some(b"panic".as_slice()) {
        panic!("scim-edge: fault injected (x-scim-edge-fault: panic)");
    }
}

/// Metric ids, defined on first use and shared by every stream of the VM.
#[derive(Default)]
struct Counters {
    /// Sorted by name, for a binary search. A few dozen names: as quick as a `HashMap` (no
    /// SipHash of the name), and without the module size of std's hash map and its random keys.
    ids: Vec<(String, u32)>,
    /// The name being looked up, reused across increments.
    name: String,
}

impl Counters {
    fn id(&mut self, metric_type: MetricType, name: &str) -> Option<u32> {
        let slot = match self.ids.binary_search_by(|(known, _)| known.as_str().cmp(name)) {
            Ok(found) => return self.ids.get(found).map(|(_, id)| *id),
            Err(slot) => slot,
        };
        match hostcall::define_metric(metric_type, name) {
            Ok(id) => {
                self.ids.insert(slot, (name.to_string(), id));
                Some(id)
            }
            Err(status) => {
                log::warn!("scim-edge: cannot define metric {name}: {status}");
                None
            }
        }
    }

    fn increment(&mut self, name: &str) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            if let Err(status) = hostcall::increment_metric(id, 1) {
                log::warn!("scim-edge: cannot increment {name}: {status}");
            }
        }
    }

    fn record(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Histogram, name) {
            if let Err(status) = hostcall::record_metric(id, value) {
                log::warn!("scim-edge: cannot record {name}: {status}");
            }
        }
    }
}

/// [`Host`] over the real proxy-wasm host calls.
struct HostCalls {
    counters: Rc<RefCell<Counters>>,
    /// The request's headers, read in one host call on the first lookup (the filter reads them
    /// only while handling the request headers).
    request_headers: OnceCell<Option<HeaderMap>>,
    /// The callout answer's headers, likewise (one callout per stream).
    response_headers: OnceCell<Option<HeaderMap>>,
    /// The token of a callout started during the current callback, for [`exports`] to route
    /// its answer back to this stream.
    callout: Option<u32>,
}

impl HostCalls {
    fn new(counters: Rc<RefCell<Counters>>) -> Self {
        HostCalls { counters, request_headers: OnceCell::new(), response_headers: OnceCell::new(), callout: None }
    }
}

/// A header from a map read once per stream: `cache` holds the whole map after the first lookup.
fn cached_header(cache: &OnceCell<Option<HeaderMap>>, map_type: MapType, name: &str) -> Option<Vec<u8>> {
    cache.get_or_init(|| hostcall::header_map(map_type).ok().flatten()).as_ref()?.get(name).map(<[u8]>::to_vec)
}

impl Host for HostCalls {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        cached_header(&self.request_headers, MapType::HttpRequestHeaders, name)
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcall::buffer(BufferType::HttpRequestBody, 0, size).ok().flatten()
    }

    fn upstream_response_header(&self, name: &str) -> Option<Vec<u8>> {
        // A callout that failed after its response started has no headers: Envoy answers
        // BadArgument, which reads here as absent (and so as a reset).
        cached_header(&self.response_headers, MapType::HttpCallResponseHeaders, name)
    }

    fn upstream_response_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcall::buffer(BufferType::HttpCallResponseBody, 0, size).ok().flatten()
    }

    fn dispatch(&mut self, call: &UpstreamCall) -> Result<u32, String> {
        let timeout = u32::try_from(call.timeout.as_millis()).unwrap_or(u32::MAX);
        let token = hostcall::http_call(&call.cluster, &call.headers, call.body.as_deref(), timeout)
            .map_err(|status| status.to_string())?;
        self.callout = Some(token);
        Ok(token)
    }

    fn send_response(&mut self, response: &Response) {
        if let Err(status) = hostcall::send_local_response(response.status, &response.headers, &response.body) {
            log::error!("scim-edge: cannot send the response ({}): {status}", response.status);
        }
    }

    fn count(&mut self, counter: Counter<'_>) {
        if let Ok(mut counters) = self.counters.try_borrow_mut() {
            let mut name = std::mem::take(&mut counters.name);
            counter.write_name(&mut name);
            counters.increment(&name);
            counters.name = name;
        }
    }

    fn record(&mut self, histogram: Histogram, value: u64) {
        if let Ok(mut counters) = self.counters.try_borrow_mut() {
            counters.record(histogram.name(), value);
        }
    }

    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        hostcall::get_shared_data(key).unwrap_or((None, None))
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite {
        match hostcall::set_shared_data(key, value, cas) {
            Ok(()) => SharedWrite::Stored,
            Err(Status::CAS_MISMATCH) => SharedWrite::Conflict,
            Err(_) => SharedWrite::Failed,
        }
    }

    fn now(&self) -> Option<Duration> {
        hostcall::current_time_nanos().ok().map(Duration::from_nanos)
    }
}
