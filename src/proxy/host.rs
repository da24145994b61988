//! [`HostCalls`]: the core's [`Host`] over the SDK's host calls, and the VM's metric ids.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::traits::Context;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

use crate::exchange::{Host, SharedWrite};
use crate::http::Response;
use crate::metrics::{Counter, Histogram};
use crate::upstream::UpstreamCall;

/// The VM's environment variable `name`; `None` when unset, not UTF-8, or unreadable. The filter
/// is built for `wasm32-unknown-unknown` (no wasi-libc, so no `std::env`): it asks WASI for the
/// environment buffer through the `wasi` crate's bindings and looks the name up in it.
pub fn env_var(name: &str) -> Option<String> {
    // SAFETY: WASI fills the two sizes.
    let (count, size) = unsafe { wasi::environ_sizes_get() }.ok()?;
    let mut pointers = vec![std::ptr::null_mut::<u8>(); count];
    let mut buffer = vec![0u8; size];
    // SAFETY: `pointers` has room for `count` pointers and `buffer` for `size` bytes, the sizes WASI
    // just gave. The entries lie back to back in `buffer`; the pointers are not needed.
    unsafe { wasi::environ_get(pointers.as_mut_ptr(), buffer.as_mut_ptr()) }.ok()?;
    crate::environ::lookup(&buffer, name)
}

/// Metric ids, defined on first use and shared by every stream of the VM.
#[derive(Default)]
pub struct Counters {
    /// Sorted by name, for a binary search: a few dozen names.
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
        match hostcalls::define_metric(metric_type, name) {
            Ok(id) => {
                self.ids.insert(slot, (name.to_string(), id));
                Some(id)
            }
            Err(status) => {
                log::warn!("scim-edge: cannot define metric {name}: {status:?}");
                None
            }
        }
    }

    fn increment(&mut self, name: &str) {
        if let Some(id) = self.id(MetricType::Counter, name) {
            if let Err(status) = hostcalls::increment_metric(id, 1) {
                log::warn!("scim-edge: cannot increment {name}: {status:?}");
            }
        }
    }

    fn record(&mut self, name: &str, value: u64) {
        if let Some(id) = self.id(MetricType::Histogram, name) {
            if let Err(status) = hostcalls::record_metric(id, value) {
                log::warn!("scim-edge: cannot record {name}: {status:?}");
            }
        }
    }
}

/// [`Host`] over the real host calls, for one stream.
pub struct HostCalls {
    counters: Rc<RefCell<Counters>>,
    paced: Rc<RefCell<super::Paced>>,
    /// The request's headers, read in one host call on the first lookup (the filter reads them
    /// only while handling the request headers).
    request_headers: OnceCell<Vec<(String, Vec<u8>)>>,
    /// The callout answer's headers, likewise (one callout per stream).
    response_headers: OnceCell<Vec<(String, Vec<u8>)>>,
}

impl HostCalls {
    pub fn new(counters: Rc<RefCell<Counters>>, paced: Rc<RefCell<super::Paced>>) -> Self {
        HostCalls { counters, paced, request_headers: OnceCell::new(), response_headers: OnceCell::new() }
    }
}

/// A header from a map read once per stream: `cache` holds the whole map after the first lookup.
fn cached_header(cache: &OnceCell<Vec<(String, Vec<u8>)>>, map_type: MapType, name: &str) -> Option<Vec<u8>> {
    let headers = cache.get_or_init(|| hostcalls::get_map_bytes(map_type).unwrap_or_default());
    headers.iter().find(|(n, _)| n == name).map(|(_, value)| value.clone())
}

/// The SDK's `Context` calls (`dispatch_http_call` registers the callout with the SDK's
/// dispatcher, which routes its answer back to the stream that started it).
impl Context for HostCalls {}

impl Host for HostCalls {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        cached_header(&self.request_headers, MapType::HttpRequestHeaders, name)
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size).ok().flatten()
    }

    fn upstream_response_header(&self, name: &str) -> Option<Vec<u8>> {
        // A callout that failed after its response started has no headers: ":status" is absent,
        // which the exchange reads as a reset.
        cached_header(&self.response_headers, MapType::HttpCallResponseHeaders, name)
    }

    fn upstream_response_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size).ok().flatten()
    }

    fn dispatch(&mut self, call: &UpstreamCall) -> Result<u32, String> {
        let headers: Vec<(&str, &str)> = call.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.dispatch_http_call(&call.cluster, headers, call.body.as_deref(), Vec::new(), call.timeout)
            .map_err(|status| format!("{status:?}"))
    }

    fn send_response(&mut self, response: &Response) {
        let headers: Vec<(&str, &str)> = response.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        if let Err(status) = hostcalls::send_http_response(u32::from(response.status), headers, Some(&response.body)) {
            log::error!("scim-edge: cannot send the response ({}): {status:?}", response.status);
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
        hostcalls::get_shared_data(key).unwrap_or((None, None))
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => SharedWrite::Stored,
            Err(Status::CasMismatch) => SharedWrite::Conflict,
            Err(_) => SharedWrite::Failed,
        }
    }

    fn waiting(&self) -> usize {
        // While the root's tick walks the queue it has taken it out: nothing is counted twice.
        self.paced.try_borrow().map_or(0, |paced| paced.queued())
    }

    fn now(&self) -> Option<Duration> {
        hostcalls::get_current_time().ok()?.duration_since(UNIX_EPOCH).ok()
    }
}
