//! The (b) filter of `make bench`: check a bearer token, forward over the callout, relay.
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
//! dispatches. Paths outside the prefix are left alone.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};
use sha2::{Digest, Sha256};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Clone, Default)]
struct Config {
    digest: [u8; 32],
    cluster: String,
    authority: String,
    prefix: String,
    base_path: String,
    upstream_auth: String,
    timeout: Duration,
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

impl Config {
    fn parse(text: &str) -> Option<Config> {
        let mut config = Config { timeout: Duration::from_millis(10_000), ..Config::default() };
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
                "timeout_ms" => config.timeout = Duration::from_millis(value.parse().ok()?),
                _ => return None,
            }
        }
        (has_digest && !config.cluster.is_empty() && !config.authority.is_empty()).then_some(config)
    }
}

#[derive(Default)]
struct Root {
    config: Option<std::rc::Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size).ok().flatten().unwrap_or_default();
        match Config::parse(&String::from_utf8_lossy(&bytes)) {
            Some(config) => {
                self.config = Some(std::rc::Rc::new(config));
                true
            }
            None => {
                log::error!("minimal-filter: invalid configuration");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Filter { config, path: None, method: String::new() }))
    }
}

struct Filter {
    config: std::rc::Rc<Config>,
    /// The upstream path, once the request is admitted.
    path: Option<String>,
    method: String,
}

fn header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name).ok().flatten()
}

fn local_reply(status: u32, body: &[u8]) {
    let headers = vec![("content-type", "application/scim+json")];
    let _ = hostcalls::send_http_response(status, headers, Some(body));
}

impl Filter {
    fn authorised(&self) -> bool {
        let Some(value) = header("authorization") else { return false };
        let Some(token) = value.strip_prefix("Bearer ") else { return false };
        Sha256::digest(token.as_bytes()).as_slice() == self.config.digest.as_slice()
    }

    fn dispatch(&self, body: Option<&[u8]>) {
        let Some(path) = self.path.as_deref() else { return };
        let mut headers = vec![
            (":method", self.method.as_str()),
            (":path", path),
            (":authority", self.config.authority.as_str()),
            ("authorization", self.config.upstream_auth.as_str()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/scim+json"));
        }
        if hostcalls::dispatch_http_call(&self.config.cluster, headers, body, Vec::new(), self.config.timeout).is_err() {
            local_reply(503, br#"{"detail":"callout not started"}"#);
        }
    }
}

impl Context for Filter {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse::<u32>().ok());
        let Some(status) = status else {
            return local_reply(502, br#"{"detail":"upstream reset"}"#);
        };
        let content_type = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, "content-type").ok().flatten();
        let body = if body_size == 0 {
            None
        } else {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size).ok().flatten()
        };
        let mut headers = Vec::new();
        if let Some(ct) = content_type.as_deref() {
            headers.push(("content-type", ct));
        }
        let _ = hostcalls::send_http_response(status, headers, body.as_deref());
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let path = header(":path").unwrap_or_default();
        let Some(rest) = path.strip_prefix(self.config.prefix.as_str()) else { return Action::Continue };
        if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
            return Action::Continue;
        }
        if !self.authorised() {
            local_reply(401, br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401"}"#);
            return Action::Pause;
        }
        self.method = header(":method").unwrap_or_default();
        self.path = Some(format!("{}{}", self.config.base_path, rest));
        if end_of_stream {
            self.dispatch(None);
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.path.is_none() {
            return Action::Continue;
        }
        if end_of_stream {
            let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size).ok().flatten();
            self.dispatch(Some(body.as_deref().unwrap_or_default()));
        }
        Action::Pause
    }
}
