//! The host calls whose SDK wrappers panic on a status they do not expect
//! (`hostcalls::send_http_response`, `define_metric`, `get_map_value_bytes`, `get_buffer`). A
//! panic kills the VM and with it every request on the listener — and Envoy does answer
//! `BadArgument` where the SDK does not expect it: reading the headers of a callout that failed
//! after its response started. So these call the ABI (proxy-wasm spec v0.2.1) directly and hand
//! back the status.

use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

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

    fn proxy_get_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
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

/// One header of a map, as bytes; `Ok(None)` when absent.
pub fn header_value(map_type: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: `name` is a live slice; `data`/`size` are live out-parameters the host fills.
    match unsafe { proxy_get_header_map_value(map_type, name.as_ptr(), name.len(), &mut data, &mut size) } {
        // SAFETY: on Ok the host handed us `size` bytes at `data`.
        Status::Ok => Ok(Some(unsafe { host_bytes(data, size) })),
        Status::NotFound => Ok(None),
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
