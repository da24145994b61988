//! The host calls the filter makes without the SDK's wrappers, because Envoy answers them with a
//! value the wrapper does not expect and the wrapper would panic (or read an invalid enum), which
//! kills the VM and every request on it. The SDK's maintainers keep those panics on purpose
//! (proxy-wasm-rust-sdk issue 310, "Panics in the SDK"); the usual answer, as in Kuadrant's
//! wasm-shim, is to stay on the SDK and call around the few wrappers that bite. Exactly these:
//!
//! - [`call_response_headers`] and [`call_response_body`]: reading the answer of a callout that
//!   failed after its response started (the upstream sent the headers, then reset the
//!   connection). Envoy still calls `on_http_call_response`, and `proxy_get_header_map_pairs` /
//!   `proxy_get_buffer_bytes` answer `BadArgument`, on which the SDK's `get_map_bytes` and
//!   `get_buffer` panic. Reproduced by tests/test_operations.py
//!   `test_a_reset_after_the_headers_is_a_502_and_the_vm_survives`.
//! - [`log_level`]: Envoy hands over its spdlog level as is, and `off` is 6, which is not a
//!   variant of the SDK's `LogLevel` enum that `get_log_level` writes it into. Reproduced by
//!   tests/test_operations.py `test_a_gateway_with_wasm_logs_off_serves_requests`.
//!
//! Everything else goes through the SDK.

use proxy_wasm::types::LogLevel;

use crate::header_map::HeaderMap;

/// The ABI v0.2.1 values this module passes and reads.
const MAP_HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
const BUFFER_HTTP_CALL_RESPONSE_BODY: u32 = 4;
const STATUS_OK: u32 = 0;

// The SDK declares the same imports with its enums for the arguments and the status; here they
// are plain integers, so no value the host returns can be an invalid enum.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of bytes the host wrote into memory it got from the SDK's
/// `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes).
///
/// # Safety
/// `data` and `size` must come from a host call that just returned `Ok`.
unsafe fn host_bytes(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    // SAFETY: the caller's contract; a null pointer means the host wrote nothing.
    (!data.is_null()).then(|| unsafe { Vec::from_raw_parts(data, size, size) })
}

/// The callout answer's headers; `None` when Envoy has none to give (see the module doc).
pub fn call_response_headers() -> Option<HeaderMap> {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    // SAFETY: the host writes a pointer and a size into the two locals, nothing else.
    let status = unsafe { proxy_get_header_map_pairs(MAP_HTTP_CALL_RESPONSE_HEADERS, &mut data, &mut size) };
    if status != STATUS_OK {
        return None;
    }
    // SAFETY: the host answered Ok, so `data`/`size` describe memory it allocated through us.
    HeaderMap::decode(unsafe { host_bytes(data, size) }?)
}

/// Up to `size` bytes of the callout answer's body; `None` when Envoy has none to give.
pub fn call_response_body(size: usize) -> Option<Vec<u8>> {
    let mut data = std::ptr::null_mut();
    let mut returned = 0;
    // SAFETY: as in `call_response_headers`.
    let status = unsafe { proxy_get_buffer_bytes(BUFFER_HTTP_CALL_RESPONSE_BODY, 0, size, &mut data, &mut returned) };
    if status != STATUS_OK {
        return None;
    }
    // SAFETY: the host answered Ok.
    unsafe { host_bytes(data, returned) }
}

/// Envoy's log level for the `wasm` component; `None` for `off` (or a level the ABI does not
/// name).
pub fn log_level() -> Option<LogLevel> {
    let mut level = u32::MAX;
    // SAFETY: the host writes one u32.
    if unsafe { proxy_get_log_level(&mut level) } != STATUS_OK {
        return Some(LogLevel::Info);
    }
    match level {
        0 => Some(LogLevel::Trace),
        1 => Some(LogLevel::Debug),
        2 => Some(LogLevel::Info),
        3 => Some(LogLevel::Warn),
        4 => Some(LogLevel::Error),
        5 => Some(LogLevel::Critical),
        _ => None,
    }
}
