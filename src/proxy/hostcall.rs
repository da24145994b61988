//! The host calls whose SDK wrappers panic on a status they do not expect
//! (`hostcalls::send_http_response`, `define_metric`, `get_map_value_bytes`, `get_map`, `get_buffer`). A
//! panic kills the VM and with it every request on the listener — and Envoy does answer
//! `BadArgument` where the SDK does not expect it: reading the headers of a callout that failed
//! after its response started. So these call the ABI (proxy-wasm spec v0.2.1) directly and hand
//! back the status.

use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

use crate::header_map::{self, HeaderMap};

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

    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;

    fn proxy_get_buffer_bytes(
        buffer_type: BufferType,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> Status;
}

/// Takes ownership of bytes the host allocated in this VM's memory (through the SDK's exported
/// `proxy_on_memory_allocate`, which allocates with the global allocator).
///
/// SAFETY: `data` must be null or point to `size` bytes the host allocated for this call.
unsafe fn host_bytes(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

/// A whole header map in one call; `Ok(None)` when the host has none (or sent a malformed one).
pub fn header_map(map_type: MapType) -> Result<Option<HeaderMap>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: `data`/`size` are live out-parameters the host fills.
    match unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) } {
        // SAFETY: on Ok the host handed us `size` bytes at `data`.
        Status::Ok if !data.is_null() => Ok(HeaderMap::decode(unsafe { host_bytes(data, size) })),
        Status::Ok | Status::NotFound => Ok(None),
        status => Err(status),
    }
}

/// `max_size` bytes of a buffer from `start`; `Ok(None)` when there is none.
pub fn buffer(buffer_type: BufferType, start: usize, max_size: usize) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: `data`/`size` are live out-parameters the host fills.
    match unsafe { proxy_get_buffer_bytes(buffer_type, start, max_size, &mut data, &mut size) } {
        // SAFETY: on Ok the host handed us `size` bytes at `data`.
        Status::Ok if !data.is_null() => Ok(Some(unsafe { host_bytes(data, size) })),
        Status::Ok | Status::NotFound => Ok(None),
        status => Err(status),
    }
}

/// Answers the client and ends the stream.
pub fn send_local_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Result<(), Status> {
    let headers = header_map::encode(headers);
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
