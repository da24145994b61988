//! The host calls the filter makes without the SDK's wrapper, because the wrapper cannot take a
//! value Envoy really returns. The SDK's wrappers panic on a status they do not expect (its
//! maintainers keep those panics on purpose: proxy-wasm-rust-sdk issue 310, "Panics in the SDK"),
//! and a panic kills the VM with every request on it; the usual answer, as in Kuadrant's
//! wasm-shim, is to stay on the SDK and call around the wrapper that bites. Exactly one here:
//!
//! - [`log_level`]: Envoy hands over its spdlog level as is (`Context::getLogLevel`), and `off`
//!   is 6, which is not a variant of the SDK's `LogLevel`; `hostcalls::get_log_level` has the
//!   host write it straight into that enum, an invalid value the SDK then matches on. Exercised by
//!   tests/test_operations.py `test_a_gateway_with_wasm_logs_off_serves_requests`.
//!
//! Checked and not needed on Envoy 1.40 (docs/robustness.md): reading the answer of a callout
//! that failed after its response started. Envoy calls `on_http_call_response` with no headers,
//! and `proxy_get_header_map_pairs` answers `Ok` with an empty map (seen in the wasm trace of
//! tests/test_operations.py `test_a_reset_after_the_headers_is_a_502_and_the_vm_survives`, which
//! runs through the SDK's `get_map_bytes` and sees no VM failure).

use proxy_wasm::types::LogLevel;

/// ABI v0.2.1 `WasmResult::Ok`.
const STATUS_OK: u32 = 0;

// The SDK declares the same import with its `LogLevel` enum as the out-parameter; here it is a
// plain integer, so no value the host writes can be an invalid enum.
#[allow(clashing_extern_declarations)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
}

/// Envoy's log level for the `wasm` component; `None` for `off` (or a level the ABI does not
/// name).
pub fn log_level() -> Option<LogLevel> {
    let mut level = u32::MAX;
    // SAFETY: the host writes one u32 into `level`.
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
