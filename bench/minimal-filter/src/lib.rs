//! The (b) filter of `make bench`: check a bearer token, forward over the callout, relay.
//!
//! Like the main filter (src/proxy), it speaks the proxy-wasm ABI v0.2.1 itself, without the SDK,
//! is built for wasm32-unknown-unknown, and exports only the callbacks it acts on; Envoy skips
//! the others. So (b) and (c) differ by what the filter does, not by how it talks to Envoy.
//!
//! Plugin configuration (a `StringValue`, one `key=value` a line, no JSON parser on purpose):
//!
//! ```text
//! sha256=<hex digest of the client token>
//! cluster=scim_upstream
//! authority=scim-upstream
//! prefix=/api/scim/v2          # the client-side prefix, replaced by base_path upstream
//! base_path=/v2
//! upstream_token=<the upstream credential>
//! timeout_ms=10000
//! ```
//!
//! The token check hashes the presented token with SHA-256 and compares the 32-byte digests with
//! `==` (the real filter also hashes, and compares in constant time). Flow as in scim-edge
//! (src/exchange.rs): a body-less request is dispatched from the headers callback (`Pause`); when
//! a body follows, the headers callback returns `Continue` (the buffer filter behind it holds the
//! router back) and the body callback returns `Pause` until the end of the stream, then
//! dispatches. Paths outside the prefix are left alone. Nothing panics: a stream the filter has
//! no state for is answered 503.

use std::cell::RefCell;
use std::ptr::{null, null_mut};
use std::rc::Rc;

use sha2::{Digest, Sha256};

// ABI v0.2.1 values: filter status, map and buffer types, log level.
const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;
const REQUEST_HEADERS: u32 = 0;
const CALL_RESPONSE_HEADERS: u32 = 6;
const REQUEST_BODY: u32 = 0;
const CALL_RESPONSE_BODY: u32 = 4;
const PLUGIN_CONFIGURATION: u32 = 7;
const LOG_ERROR: u32 = 4;

// The host calls (ABI v0.2.1 imports): data goes as (pointer, length) pairs; the host fills `*mut`s.
#[rustfmt::skip]
#[allow(clippy::too_many_arguments)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message: *const u8, len: usize) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_get_buffer_bytes(kind: u32, start: usize, max: usize, data: *mut *mut u8, len: *mut usize) -> u32;
    fn proxy_get_header_map_value(kind: u32, key: *const u8, key_len: usize, data: *mut *mut u8, len: *mut usize)
        -> u32;
    fn proxy_send_local_response(status: u32, details: *const u8, details_len: usize, body: *const u8,
        body_len: usize, headers: *const u8, headers_len: usize, grpc_status: i32) -> u32;
    fn proxy_http_call(cluster: *const u8, cluster_len: usize, headers: *const u8, headers_len: usize,
        body: *const u8, body_len: usize, trailers: *const u8, trailers_len: usize, timeout_ms: u32,
        token: *mut u32) -> u32;
}

// ---- Host calls -------------------------------------------------------------------------------

/// Bytes the host wrote into memory it got from `proxy_on_memory_allocate`; `None` for the
/// host's NotFound (or any other failure). SAFETY: `call` must leave `data`/`size` describing
/// such an allocation, or null, when it returns Ok (0).
unsafe fn host_bytes(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    if call(&mut data, &mut size) != 0 {
        return None;
    }
    Some(if data.is_null() { Vec::new() } else { Vec::from_raw_parts(data, size, size) })
}

fn header(map: u32, name: &str) -> Option<Vec<u8>> {
    // SAFETY: `name` is live for the call; the host fills the out-parameters.
    unsafe { host_bytes(|data, size| proxy_get_header_map_value(map, name.as_ptr(), name.len(), data, size)) }
}

fn buffer(kind: u32, size: usize) -> Option<Vec<u8>> {
    // SAFETY: the host fills the out-parameters.
    unsafe { host_bytes(|data, out| proxy_get_buffer_bytes(kind, 0, size, data, out)) }
}

/// The ABI's header-map encoding: the pair count, each pair's name and value sizes (u32 LE),
/// then each name and value followed by a NUL.
fn encode(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + pairs.iter().map(|(n, v)| n.len() + v.len() + 10).sum::<usize>());
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    bytes.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        bytes.extend_from_slice(&len(name.len()));
        bytes.extend_from_slice(&len(value.len()));
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name);
        bytes.push(0);
        bytes.extend_from_slice(value);
        bytes.push(0);
    }
    bytes
}

/// Answers the current stream (empty response-code details, as the SDK sent).
fn send_response(status: u32, headers: &[(&[u8], &[u8])], body: Option<&[u8]>) {
    let headers = encode(headers);
    let (body, body_size) = body.map_or((null(), 0), |b| (b.as_ptr(), b.len()));
    // SAFETY: every pointer/length pair is a live slice (or null and 0) for the call. Nothing to
    // do if it fails: the stream is gone.
    unsafe { proxy_send_local_response(status, null(), 0, body, body_size, headers.as_ptr(), headers.len(), -1) };
}

fn local_reply(status: u32, body: &[u8]) {
    send_response(status, &[(b"content-type", b"application/scim+json")], Some(body));
}

// ---- Configuration ----------------------------------------------------------------------------

#[derive(Default)]
struct Config {
    digest: [u8; 32],
    cluster: String,
    authority: String,
    prefix: String,
    base_path: String,
    upstream_auth: String,
    timeout_ms: u32,
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

impl Config {
    fn parse(text: &str) -> Option<Config> {
        let mut config = Config { timeout_ms: 10_000, ..Config::default() };
        let mut has_digest = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let Some((key, value)) = line.split_once('=') else { continue };
            let value = value.trim().to_string();
            match key.trim() {
                "sha256" => {
                    config.digest = unhex(&value)?;
                    has_digest = true;
                }
                "cluster" => config.cluster = value,
                "authority" => config.authority = value,
                "prefix" => config.prefix = value,
                "base_path" => config.base_path = value,
                "upstream_token" => config.upstream_auth = format!("Bearer {value}"),
                "timeout_ms" => config.timeout_ms = value.parse().ok()?,
                _ => return None,
            }
        }
        (has_digest && !config.cluster.is_empty() && !config.authority.is_empty()).then_some(config)
    }
}

// ---- One HTTP stream --------------------------------------------------------------------------

struct Stream {
    config: Rc<Config>,
    /// The upstream path, once the request is admitted.
    path: Option<Vec<u8>>,
    method: Vec<u8>,
    /// The token of the callout in flight.
    callout: Option<u32>,
}

impl Stream {
    fn on_request_headers(&mut self, end_of_stream: bool) -> u32 {
        let path = header(REQUEST_HEADERS, ":path").unwrap_or_default();
        let Some(rest) = path.strip_prefix(self.config.prefix.as_bytes()) else { return CONTINUE };
        if !(rest.is_empty() || rest.starts_with(b"/") || rest.starts_with(b"?")) {
            return CONTINUE;
        }
        let authorization = header(REQUEST_HEADERS, "authorization");
        let token = authorization.as_deref().and_then(|value| value.strip_prefix(b"Bearer "));
        if token.is_none_or(|token| Sha256::digest(token).as_slice() != self.config.digest.as_slice()) {
            local_reply(401, br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401"}"#);
            return PAUSE;
        }
        self.method = header(REQUEST_HEADERS, ":method").unwrap_or_default();
        self.path = Some([self.config.base_path.as_bytes(), rest].concat());
        if end_of_stream {
            self.dispatch(None);
            PAUSE
        } else {
            CONTINUE
        }
    }

    fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> u32 {
        if self.path.is_none() {
            return CONTINUE;
        }
        if end_of_stream {
            let body = buffer(REQUEST_BODY, body_size);
            self.dispatch(Some(body.as_deref().unwrap_or_default()));
        }
        PAUSE
    }

    fn dispatch(&mut self, body: Option<&[u8]>) {
        let Some(path) = self.path.as_deref() else { return };
        let config = &*self.config;
        let mut headers: Vec<(&[u8], &[u8])> = vec![
            (b":method", &self.method),
            (b":path", path),
            (b":authority", config.authority.as_bytes()),
            (b"authorization", config.upstream_auth.as_bytes()),
        ];
        if body.is_some() {
            headers.push((b"content-type", b"application/scim+json"));
        }
        let (headers, trailers) = (encode(&headers), encode(&[]));
        let (body, body_size) = body.map_or((null(), 0), |b| (b.as_ptr(), b.len()));
        let mut token = 0u32;
        // SAFETY: every pointer/length pair is a live slice (or null and 0) for the call, and
        // `token` a live out-parameter.
        #[rustfmt::skip]
        let status = unsafe {
            proxy_http_call(config.cluster.as_ptr(), config.cluster.len(), headers.as_ptr(), headers.len(), body,
                body_size, trailers.as_ptr(), trailers.len(), config.timeout_ms, &mut token)
        };
        if status == 0 {
            self.callout = Some(token);
        } else {
            local_reply(503, br#"{"detail":"callout not started"}"#);
        }
    }
}

/// The callout's answer, relayed to the client: its status, content type and body.
fn relay(body_size: usize) {
    let status = header(CALL_RESPONSE_HEADERS, ":status");
    let Some(status) = status.and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u32>().ok()) else {
        return local_reply(502, br#"{"detail":"upstream reset"}"#);
    };
    let content_type = header(CALL_RESPONSE_HEADERS, "content-type");
    let body = if body_size == 0 { None } else { buffer(CALL_RESPONSE_BODY, body_size) };
    let headers: Vec<(&[u8], &[u8])> =
        content_type.iter().map(|ct| (b"content-type".as_slice(), ct.as_slice())).collect();
    send_response(status, &headers, body.as_deref());
}

// ---- The exports: contexts and callbacks ------------------------------------------------------

/// The VM's contexts. One worker thread per VM, never re-entered during a callback, so one
/// `RefCell`; a borrow that fails anyway is treated like an unknown context.
struct Contexts {
    /// Root contexts (one per plugin) and their configuration, once valid.
    roots: Vec<(u32, Option<Rc<Config>>)>,
    /// Live streams, sorted by context id (Envoy's ids increase, so inserts append).
    streams: Vec<(u32, Stream)>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = const { RefCell::new(Contexts { roots: Vec::new(), streams: Vec::new() }) };
}

/// Runs a request callback on stream `id`; one the filter has no state for is refused (503).
fn on_stream(id: u32, callback: impl FnOnce(&mut Stream) -> u32) -> u32 {
    let result = CONTEXTS.with(|contexts| {
        let mut contexts = contexts.try_borrow_mut().ok()?;
        let index = contexts.streams.binary_search_by_key(&id, |(stream, _)| *stream).ok()?;
        contexts.streams.get_mut(index).map(|(_, stream)| callback(stream))
    });
    result.unwrap_or_else(|| {
        local_reply(503, br#"{"detail":"no configuration"}"#);
        PAUSE
    })
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Where the host writes what it hands the filter; `host_bytes` takes ownership.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    std::mem::ManuallyDrop::new(Vec::<u8>::with_capacity(size)).as_mut_ptr()
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_context_id: u32) {
    CONTEXTS.with(|contexts| {
        let Ok(mut contexts) = contexts.try_borrow_mut() else { return };
        if root_context_id == 0 {
            return contexts.roots.push((context_id, None));
        }
        let root = contexts.roots.iter().find(|(id, _)| *id == root_context_id);
        // No configured root (Envoy refuses a plugin whose configure failed): no state, so 503.
        let Some(config) = root.and_then(|(_, config)| config.clone()) else { return };
        let stream = Stream { config, path: None, method: Vec::new(), callout: None };
        match contexts.streams.binary_search_by_key(&context_id, |(id, _)| *id) {
            Ok(index) => {
                if let Some(slot) = contexts.streams.get_mut(index) {
                    slot.1 = stream;
                }
            }
            Err(index) => contexts.streams.insert(index, (context_id, stream)),
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_context_id: u32, size: usize) -> bool {
    let bytes = buffer(PLUGIN_CONFIGURATION, size).unwrap_or_default();
    let config = Config::parse(&String::from_utf8_lossy(&bytes)).map(Rc::new);
    let configured = config.is_some();
    let stored = CONTEXTS.with(|contexts| {
        let mut contexts = contexts.try_borrow_mut().ok()?;
        let root = contexts.roots.iter_mut().find(|(id, _)| *id == root_context_id)?;
        root.1 = config;
        Some(())
    });
    if !configured {
        let message = "minimal-filter: invalid configuration";
        // SAFETY: `message` is live for the call.
        unsafe { proxy_log(LOG_ERROR, message.as_ptr(), message.len()) };
    }
    configured && stored.is_some()
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, end_of_stream: bool) -> u32 {
    on_stream(context_id, |stream| stream.on_request_headers(end_of_stream))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: bool) -> u32 {
    on_stream(context_id, |stream| stream.on_request_body(body_size, end_of_stream))
}

/// Envoy makes this call on the root context: find the stream that started the callout and
/// point the host calls at it before relaying.
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(_: u32, token: u32, _: usize, body_size: usize, _: usize) {
    let stream = CONTEXTS.with(|contexts| {
        let mut contexts = contexts.try_borrow_mut().ok()?;
        let (id, stream) = contexts.streams.iter_mut().find(|(_, stream)| stream.callout == Some(token))?;
        stream.callout = None;
        Some(*id)
    });
    // SAFETY: plain value argument. A failure means the stream is gone: nothing to answer.
    if stream.is_some_and(|id| unsafe { proxy_set_effective_context(id) } == 0) {
        relay(body_size);
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    CONTEXTS.with(|contexts| {
        let Ok(mut contexts) = contexts.try_borrow_mut() else { return };
        match contexts.streams.binary_search_by_key(&context_id, |(id, _)| *id) {
            Ok(index) => drop(contexts.streams.remove(index)),
            Err(_) => contexts.roots.retain(|(id, _)| *id != context_id),
        }
    });
}
