//! The callbacks Envoy makes into the filter (proxy-wasm ABI v0.2.1 exports), and the table of
//! live contexts they are routed to.
//!
//! Only the callbacks the filter acts on are exported. Envoy skips a callback a module does not
//! export (proxy-wasm-cpp-host answers `Continue` for the stream callbacks and `true` for
//! `on_done`), so a request crosses into the VM four or five times: context create, request
//! headers, request body (when there is one), the callout's answer, and delete; the SDK exported
//! every callback and Envoy made each call.
//!
//! Nothing here panics: an unknown context is logged and, on the request path, answered 503.

use std::cell::RefCell;

use super::hostcall;
use super::{logger, refuse_unconfigured, Filter, Root};

/// `proxy_on_request_*` results (ABI v0.2.1 `FilterHeadersStatus` / `FilterDataStatus`).
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;

/// The VM's contexts. A VM runs on one worker thread and Envoy never re-enters it while a
/// callback runs (it defers a callout answer that arrives during a host call), so one
/// `RefCell` holds them all; a borrow that fails anyway is logged and the request refused.
struct Contexts {
    /// One per plugin sharing this VM (usually one), by root context id.
    roots: Vec<(u32, Root)>,
    /// Live HTTP streams, by context id. Envoy hands out increasing ids, so inserts append; each
    /// stream is boxed so that removing one shifts pointers, not whole exchanges.
    streams: Vec<(u32, Box<Filter>)>,
    /// Callouts waiting for an answer: (token, stream context id).
    callouts: Vec<(u32, u32)>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> =
        const { RefCell::new(Contexts { roots: Vec::new(), streams: Vec::new(), callouts: Vec::new() }) };
}

impl Contexts {
    fn root(&mut self, id: u32) -> Option<&mut Root> {
        self.roots.iter_mut().find(|(root_id, _)| *root_id == id).map(|(_, root)| root)
    }

    fn stream_index(&self, id: u32) -> Result<usize, usize> {
        self.streams.binary_search_by_key(&id, |(stream_id, _)| *stream_id)
    }

    fn stream(&mut self, id: u32) -> Option<&mut Filter> {
        let index = self.stream_index(id).ok()?;
        self.streams.get_mut(index).map(|(_, filter)| &mut **filter)
    }
}

/// Runs `callback` on stream `id` and records a callout it started. `None` when there is no
/// such stream, or the table is busy (a re-entrant call, which Envoy does not make).
fn on_stream<R>(id: u32, callback: impl FnOnce(&mut Filter) -> R) -> Option<R> {
    CONTEXTS.with(|contexts| {
        let mut contexts = contexts.try_borrow_mut().ok()?;
        let filter = contexts.stream(id)?;
        let result = callback(filter);
        if let Some(token) = filter.host.callout.take() {
            contexts.callouts.push((token, id));
        }
        Some(result)
    })
}

/// A request callback for a stream the filter does not know: refuse it (fail closed).
fn unknown_stream(id: u32) -> u32 {
    log::error!("scim-edge: no state for stream context {id}: refusing the request");
    refuse_unconfigured();
    PAUSE
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Where the host writes what it hands the filter (buffers, header maps); the filter takes
/// ownership with `hostcall::host_bytes`.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    // `Vec::with_capacity` allocates exactly `size` bytes, the layout `Vec::from_raw_parts`
    // later frees with.
    std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size)).as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    CONTEXTS.with(|contexts| {
        let Ok(mut contexts) = contexts.try_borrow_mut() else {
            log::error!("scim-edge: cannot create context {context_id}: the context table is busy");
            return;
        };
        if root_context_id == 0 {
            contexts.roots.push((context_id, Root::default()));
            return;
        }
        let filter = Box::new(match contexts.root(root_context_id) {
            Some(root) => root.create_http_context(context_id),
            None => {
                log::error!("scim-edge: stream {context_id} has no root context {root_context_id}");
                Filter::unconfigured()
            }
        });
        match contexts.stream_index(context_id) {
            Ok(index) => {
                if let Some(slot) = contexts.streams.get_mut(index) {
                    slot.1 = filter;
                }
            }
            Err(index) => contexts.streams.insert(index, (context_id, filter)),
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_context_id: u32, _vm_configuration_size: usize) -> bool {
    logger::init();
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_context_id: u32, plugin_configuration_size: usize) -> bool {
    logger::init();
    CONTEXTS.with(|contexts| match contexts.try_borrow_mut() {
        Ok(mut contexts) => match contexts.root(root_context_id) {
            Some(root) => root.on_configure(plugin_configuration_size),
            None => {
                log::error!("scim-edge: configure for unknown root context {root_context_id}");
                false
            }
        },
        Err(_) => false,
    })
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, end_of_stream: u32) -> u32 {
    // Flags arrive as i32 words: read as integers, so no host value can make an invalid `bool`.
    on_stream(context_id, |filter| filter.on_request_headers(end_of_stream != 0))
        .map_or_else(|| unknown_stream(context_id), action)
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    on_stream(context_id, |filter| filter.on_request_body(body_size, end_of_stream != 0))
        .map_or_else(|| unknown_stream(context_id), action)
}

/// A callout's answer. Envoy makes this call on the root context; the token says which stream
/// started the callout, and host calls are pointed at that stream before it runs.
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _root_context_id: u32,
    token: u32,
    _headers: usize,
    body_size: usize,
    _trailers: usize,
) {
    let stream = CONTEXTS.with(|contexts| {
        let mut contexts = contexts.try_borrow_mut().ok()?;
        let index = contexts.callouts.iter().position(|(waiting, _)| *waiting == token)?;
        Some(contexts.callouts.swap_remove(index).1)
    });
    let Some(stream) = stream else {
        log::warn!("scim-edge: answer for unknown callout {token}");
        return;
    };
    if let Err(status) = hostcall::set_effective_context(stream) {
        // The stream is gone (reset by the client): nothing left to answer.
        log::debug!("scim-edge: callout {token} answered after stream {stream} ended: {status}");
        return;
    }
    if on_stream(stream, |filter| filter.on_http_call_response(token, body_size)).is_none() {
        log::debug!("scim-edge: callout {token} answered after stream {stream} ended");
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    CONTEXTS.with(|contexts| {
        let Ok(mut contexts) = contexts.try_borrow_mut() else {
            log::error!("scim-edge: cannot delete context {context_id}: the context table is busy");
            return;
        };
        if let Ok(index) = contexts.stream_index(context_id) {
            contexts.streams.remove(index);
            contexts.callouts.retain(|(_, stream)| *stream != context_id);
        } else {
            contexts.roots.retain(|(root_id, _)| *root_id != context_id);
        }
    });
}

fn action(flow: crate::exchange::Flow) -> u32 {
    match flow {
        crate::exchange::Flow::Continue => CONTINUE,
        crate::exchange::Flow::Pause => PAUSE,
    }
}
