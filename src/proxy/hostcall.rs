//! The host calls the filter makes, over the proxy-wasm ABI v0.2.1 (the `env.proxy_*` imports
//! Envoy provides), each wrapped so that it returns the host's status instead of assuming it.
//!
//! The filter does not use the proxy-wasm SDK: its wrappers panic on a status they do not expect,
//! and Envoy does answer `BadArgument` where the SDK does not expect it (reading the headers of a
//! callout that failed after its response started); a panic kills the VM and every request on
//! it. It was also 42 KB of the module (314 KB then), which V8 compiles at every Envoy start
//! (docs/performance.md). The ABI surface the filter needs is the few calls below.

use std::fmt;
use std::ptr::{null, null_mut};

use crate::environ;
use crate::header_map::{self, HeaderMap};

/// A proxy-wasm status other than `Ok` (ABI v0.2.1 `WasmResult`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Status(u32);

impl Status {
    pub const NOT_FOUND: Status = Status(1);
    pub const CAS_MISMATCH: Status = Status(8);
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            7 => "Empty",
            8 => "CasMismatch",
            10 => "InternalFailure",
            12 => "Unimplemented",
            other => return write!(f, "status {other}"),
        };
        f.write_str(name)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `Ok(())` for the host's `Ok` (0), its status otherwise.
fn checked(status: u32) -> Result<(), Status> {
    match status {
        0 => Ok(()),
        other => Err(Status(other)),
    }
}

/// The host's log levels (ABI v0.2.1 `LogLevel`).
pub mod log_level {
    pub const TRACE: u32 = 0;
    pub const DEBUG: u32 = 1;
    pub const INFO: u32 = 2;
    pub const WARN: u32 = 3;
    pub const ERROR: u32 = 4;
    pub const CRITICAL: u32 = 5;
}

/// Which header map (ABI v0.2.1 `MapType`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum MapType {
    HttpRequestHeaders = 0,
    HttpCallResponseHeaders = 6,
}

/// Which buffer (ABI v0.2.1 `BufferType`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum BufferType {
    HttpRequestBody = 0,
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// Which kind of metric (ABI v0.2.1 `MetricType`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub enum MetricType {
    Counter = 0,
    Histogram = 2,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;

    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;

    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;

    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;

    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_milliseconds: u32,
        return_token: *mut u32,
    ) -> u32;

    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;

    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;

    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
}

// WASI's environment calls, which Envoy provides to every module (with the variables listed in
// `vm_config.environment_variables`). The filter is built for `wasm32-unknown-unknown`, without
// wasi-libc, so it reads the environment itself.
#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn environ_sizes_get(return_count: *mut usize, return_buffer_size: *mut usize) -> i32;
    fn environ_get(return_pointers: *mut *mut u8, return_buffer: *mut u8) -> i32;
}

/// The VM's environment variable `name`; `None` when unset, not UTF-8, or unreadable.
pub fn env_var(name: &str) -> Option<String> {
    let (mut count, mut size) = (0usize, 0usize);
    // SAFETY: `count`/`size` are live out-parameters.
    if unsafe { environ_sizes_get(&mut count, &mut size) } != 0 {
        return None;
    }
    let mut pointers = vec![null_mut::<u8>(); count];
    let mut buffer = vec![0u8; size];
    // SAFETY: `pointers` has room for `count` pointers and `buffer` for `size` bytes, the sizes the
    // host just gave. The pointers are not needed: the entries lie back to back in `buffer`.
    if unsafe { environ_get(pointers.as_mut_ptr(), buffer.as_mut_ptr()) } != 0 {
        return None;
    }
    environ::lookup(&buffer, name)
}

/// Takes ownership of bytes the host allocated in this VM's memory, through the exported
/// `proxy_on_memory_allocate` (`super::exports`), which allocates with the global allocator.
///
/// SAFETY: `data` must be null or point to `size` bytes the host allocated for this call.
unsafe fn host_bytes(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    (!data.is_null()).then(|| Vec::from_raw_parts(data, size, size))
}

/// Writes a line to Envoy's log (component `wasm`).
pub fn log(level: u32, message: &str) {
    // SAFETY: `message` is a live slice for the duration of the call.
    // Nowhere to report a failure to log.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// Envoy's log level for the `wasm` component.
pub fn log_level() -> Result<u32, Status> {
    let mut level = log_level::INFO;
    // SAFETY: `level` is a live out-parameter.
    checked(unsafe { proxy_get_log_level(&mut level) }).map(|()| level)
}

/// Nanoseconds since the Unix epoch, by the host's clock.
pub fn current_time_nanos() -> Result<u64, Status> {
    let mut nanos = 0u64;
    // SAFETY: `nanos` is a live out-parameter.
    checked(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) }).map(|()| nanos)
}

/// Makes the following host calls act on `context_id`'s stream (for callbacks the host makes on
/// the root context, such as a callout's answer).
pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    // SAFETY: plain value arguments.
    checked(unsafe { proxy_set_effective_context(context_id) })
}

/// A whole header map in one call; `Ok(None)` when the host has none (or sent a malformed one).
pub fn header_map(map_type: MapType) -> Result<Option<HeaderMap>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: `data`/`size` are live out-parameters the host fills.
    match checked(unsafe { proxy_get_header_map_pairs(map_type as u32, &mut data, &mut size) }) {
        // SAFETY: on Ok the host handed us `size` bytes at `data` (or null).
        Ok(()) => Ok(unsafe { host_bytes(data, size) }.and_then(HeaderMap::decode)),
        Err(Status::NOT_FOUND) => Ok(None),
        Err(status) => Err(status),
    }
}

/// `max_size` bytes of a buffer from `start`; `Ok(None)` when there is none.
pub fn buffer(buffer_type: BufferType, start: usize, max_size: usize) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: `data`/`size` are live out-parameters the host fills.
    match checked(unsafe { proxy_get_buffer_bytes(buffer_type as u32, start, max_size, &mut data, &mut size) }) {
        // SAFETY: on Ok the host handed us `size` bytes at `data` (or null).
        Ok(()) => Ok(unsafe { host_bytes(data, size) }),
        Err(Status::NOT_FOUND) => Ok(None),
        Err(status) => Err(status),
    }
}

/// Answers the client and ends the stream.
pub fn send_local_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Result<(), Status> {
    let headers = header_map::encode(headers);
    let details = b"scim_edge";
    // SAFETY: every pointer/length pair describes a live slice for the duration of the call.
    checked(unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Starts an HTTP call to `cluster`; the token its answer will carry.
pub fn http_call(
    cluster: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
    timeout_milliseconds: u32,
) -> Result<u32, Status> {
    let headers = header_map::encode(headers);
    let trailers = header_map::encode(&[]);
    let mut token = 0u32;
    // SAFETY: every pointer/length pair describes a live slice (or null and 0) for the duration
    // of the call, and `token` is a live out-parameter.
    checked(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body.map_or(null(), <[u8]>::as_ptr),
            body.map_or(0, <[u8]>::len),
            trailers.as_ptr(),
            trailers.len(),
            timeout_milliseconds,
            &mut token,
        )
    })
    .map(|()| token)
}

pub fn define_metric(metric_type: MetricType, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    // SAFETY: `name` is a live slice and `id` a live u32 for the duration of the call.
    checked(unsafe { proxy_define_metric(metric_type as u32, name.as_ptr(), name.len(), &mut id) }).map(|()| id)
}

pub fn increment_metric(id: u32, offset: i64) -> Result<(), Status> {
    // SAFETY: plain value arguments.
    checked(unsafe { proxy_increment_metric(id, offset) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), Status> {
    // SAFETY: plain value arguments.
    checked(unsafe { proxy_record_metric(id, value) })
}

/// The VM's shared data under `key` and its compare-and-swap token (`None` when unset).
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), Status> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: `key` is a live slice; `data`/`size`/`cas` are live out-parameters the host fills.
    match checked(unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) }) {
        // SAFETY: on Ok the host handed us `size` bytes at `data` (or null).
        Ok(()) => Ok((unsafe { host_bytes(data, size) }, (cas != 0).then_some(cas))),
        Err(Status::NOT_FOUND) => Ok((None, None)),
        Err(status) => Err(status),
    }
}

/// Stores `value` under `key`, unless it changed since `cas` was read (`None`: unconditionally).
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
    // SAFETY: `key` and `value` are live slices for the duration of the call.
    checked(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas.unwrap_or(0)) })
}
