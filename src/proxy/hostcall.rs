//! The two host calls whose SDK wrappers panic on a status they do not expect
//! (`hostcalls::send_http_response`, `hostcalls::define_metric`). A panic kills the VM and with it
//! every request on the listener, so these call the ABI directly and hand back the status.
//! ABI: proxy-wasm spec v0.2.1, `proxy_send_local_response` and `proxy_define_metric`.

use proxy_wasm::types::{MetricType, Status};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> Status;

    fn proxy_define_metric(
        metric_type: MetricType,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> Status;
}

/// Answers the client and ends the stream.
pub fn send_local_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Result<(), Status> {
    let headers = serialize_map(headers);
    let details = b"scim_edge";
    // SAFETY: every pointer/length pair describes a live slice for the duration of the call.
    let result = unsafe {
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
    };
    match result {
        Status::Ok => Ok(()),
        status => Err(status),
    }
}

pub fn define_metric(metric_type: MetricType, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    // SAFETY: `name` is a live slice and `id` a live u32 for the duration of the call.
    match unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) } {
        Status::Ok => Ok(id),
        status => Err(status),
    }
}

/// The proxy-wasm map encoding: pair count, then each pair's name and value sizes (u32 LE), then
/// each name and value followed by a NUL.
fn serialize_map(pairs: &[(String, String)]) -> Vec<u8> {
    let size = 4 + pairs.iter().map(|(n, v)| n.len() + v.len() + 10).sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    bytes.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        bytes.extend_from_slice(&len(name.len()));
        bytes.extend_from_slice(&len(value.len()));
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}
