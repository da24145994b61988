//! The (b) filter of `make bench`: check a bearer token, forward over the callout, relay.
//!
//! Written the way a user writes the minimal token-and-callout filter: on the proxy-wasm SDK
//! (`RootContext` / `HttpContext`, `proxy_wasm::main!`), like the main filter (src/proxy), built
//! for wasm32-unknown-unknown. So (b) and (c) differ by what the filter does, not by how it talks
//! to Envoy.
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

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use sha2::{Digest, Sha256};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { config: None }) });
}}

struct Root {
    config: Option<Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        self.config = Config::parse(&String::from_utf8_lossy(&bytes)).map(Rc::new);
        if self.config.is_none() {
            log::error!("minimal-filter: invalid configuration");
        }
        self.config.is_some()
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let config = self.config.clone()?;
        Some(Box::new(Stream { config, path: None, method: String::new() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    config: Rc<Config>,
    /// The upstream path, once the request is authenticated.
    path: Option<String>,
    method: String,
}

const UNAUTHORIZED: &[u8] = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401"}"#;

impl Stream {
    fn dispatch(&mut self, body: Option<&[u8]>) {
        let Some(path) = self.path.as_deref() else { return };
        let config = &*self.config;
        let mut headers = vec![
            (":method", self.method.as_str()),
            (":path", path),
            (":authority", config.authority.as_str()),
            ("authorization", config.upstream_auth.as_str()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/scim+json"));
        }
        let timeout = Duration::from_millis(u64::from(config.timeout_ms));
        if self.dispatch_http_call(&config.cluster, headers, body, vec![], timeout).is_err() {
            self.send_http_response(503, vec![], Some(br#"{"detail":"callout not started"}"#));
        }
    }
}

impl Context for Stream {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let status = self.get_http_call_response_header(":status").and_then(|s| s.parse::<u32>().ok());
        let Some(status) = status else {
            return self.send_http_response(502, vec![], Some(br#"{"detail":"upstream reset"}"#));
        };
        let content_type = self.get_http_call_response_header("content-type");
        let body = if body_size == 0 { None } else { self.get_http_call_response_body(0, body_size) };
        let headers = content_type.iter().map(|ct| ("content-type", ct.as_str())).collect();
        self.send_http_response(status, headers, body.as_deref());
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        let Some(rest) = path.strip_prefix(&self.config.prefix) else { return Action::Continue };
        if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
            return Action::Continue;
        }
        let authorization = self.get_http_request_header("authorization");
        let token = authorization.as_deref().and_then(|value| value.strip_prefix("Bearer "));
        if token.is_none_or(|token| Sha256::digest(token).as_slice() != self.config.digest.as_slice()) {
            self.send_http_response(401, vec![], Some(UNAUTHORIZED));
            return Action::Pause;
        }
        self.method = self.get_http_request_header(":method").unwrap_or_default();
        self.path = Some(format!("{}{rest}", self.config.base_path));
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
            let body = self.get_http_request_body(0, body_size);
            self.dispatch(Some(body.as_deref().unwrap_or_default()));
        }
        Action::Pause
    }
}

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
