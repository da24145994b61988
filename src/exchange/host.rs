//! The exchange's one view of the proxy: the [`Host`] trait the proxy-wasm adapter
//! (src/proxy/host.rs) implements, and the recording hosts of the tests, the dry run and the
//! benchmark.

use super::*;
use crate::ratelimit::SharedData;
use crate::upstream::{UpstreamReply, RELAYED_RESPONSE_HEADERS};

/// What the exchange needs from the proxy. Header values are raw bytes: Envoy allows non-UTF-8
/// header values, and the gateway must refuse those, not crash on them.
pub trait Host {
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// The buffered request body, `size` bytes of it.
    fn request_body(&self, size: usize) -> Option<Vec<u8>>;
    fn upstream_response_header(&self, name: &str) -> Option<Vec<u8>>;
    fn upstream_response_body(&self, size: usize) -> Option<Vec<u8>>;
    /// Starts the callout; its token, or a reason (a host status, never a secret).
    fn dispatch(&mut self, call: &UpstreamCall) -> Result<u32, String>;
    /// Answers the client and ends the stream.
    fn send_response(&mut self, response: &Response);
    fn count(&mut self, counter: Counter<'_>);
    /// Monotonic enough for latencies; `None` when the host cannot tell.
    fn now(&self) -> Option<Duration>;
    fn record(&mut self, histogram: Histogram, value: u64);
    /// The VM's shared data (common to all workers) under `key`, with its compare-and-swap token.
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` under `key` unless it was written since `cas` was read.
    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite;
    /// How many requests of this worker are waiting for the upstream's budget (pacing), ahead of
    /// a new one.
    fn waiting(&self) -> usize;
    /// A property of the stream (proxy-wasm `get_property`), as the host serialises it: Entra's
    /// verified JWT payload in `jwt_authn`'s dynamic metadata (src/entra.rs). `None` when absent.
    fn property(&self, _path: &[&str]) -> Option<Vec<u8>> {
        None
    }
}

/// The budgets' compare-and-swap loop ([`crate::ratelimit::update`]) over the host's shared data.
impl<H: Host + ?Sized> SharedData for H {
    fn load(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        self.shared_get(key)
    }

    fn store(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite {
        self.shared_set(key, value, cas)
    }
}

/// The upstream's answer as the callout delivered it: status, the headers the gateway relays,
/// and a body the caller has already bounded.
pub(super) fn upstream_reply(host: &dyn Host, body_size: usize) -> UpstreamReply {
    let mut headers = Vec::new();
    for &name in RELAYED_RESPONSE_HEADERS {
        if let Some(value) = header_text_of(host.upstream_response_header(name)) {
            headers.push((name.to_string(), value));
        }
    }
    UpstreamReply {
        status: header_text_of(host.upstream_response_header(":status")).and_then(|s| s.parse().ok()),
        content_type: header_text_of(host.upstream_response_header("content-type")),
        headers,
        body: if body_size == 0 { Vec::new() } else { host.upstream_response_body(body_size).unwrap_or_default() },
    }
}

pub(super) fn header_text(host: &dyn Host, name: &str) -> Option<String> {
    header_text_of(host.request_header(name))
}

/// Header bytes as text; non-UTF-8 values count as absent.
pub(super) fn header_text_of(value: Option<Vec<u8>>) -> Option<String> {
    value.and_then(|v| String::from_utf8(v).ok())
}
