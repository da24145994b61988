//! The access log: one line per request, written when the client has its answer (or went
//! away), with names and numbers only — never ids, tokens or attribute values.

use super::*;

/// The access-log record of one request: what its one log line says.
#[derive(Debug, Default)]
pub(super) struct AccessRecord {
    /// Envoy's `x-request-id` (bounded: see [`request_id`]), which Omni's log can be matched on.
    pub(super) request_id: String,
    pub(super) method: String,
    pub(super) endpoint: &'static str,
    /// How the request was admitted (`token=<name>`, `client=<name>`, `tenant=<name>`).
    pub(super) auth: Option<String>,
    pub(super) upstream_ms: Option<u64>,
    pub(super) upstream_status: Option<u16>,
    /// How long the request waited for the budget (pacing).
    pub(super) waited_ms: Option<u64>,
    pub(super) note: &'static str,
}

impl Exchange {
    /// The request's one log line: names and numbers, never ids, tokens or values.
    pub(super) fn log_line(&self, status: &str) {
        let o = &self.record;
        log::info!(
            "scim-edge ctx={} request_id={} {} {} {} status={status}{}{}",
            self.context_id,
            if o.request_id.is_empty() { "-" } else { &o.request_id },
            if o.method.is_empty() { "-" } else { &o.method },
            if o.endpoint.is_empty() { "-" } else { o.endpoint },
            o.auth.as_deref().unwrap_or("token=-"),
            o.upstream_status.map(|s| format!(" upstream_status={s}")).unwrap_or_default()
                + &o.upstream_ms.map(|ms| format!(" upstream_ms={ms}")).unwrap_or_default()
                + &o.waited_ms.map(|ms| format!(" waited_ms={ms}")).unwrap_or_default(),
            if o.note.is_empty() { String::new() } else { format!(" reason={}", o.note) },
        );
    }
}

/// Envoy's `x-request-id` for the log line, when it looks like one (a UUID or similar token: at
/// most 64 letters, digits, `-`, `_`, `.`); anything else a client could have put there is `-`.
pub(super) fn request_id(value: Option<&[u8]>) -> String {
    match value {
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            String::from_utf8_lossy(id).into_owned()
        }
        _ => String::new(),
    }
}

/// For the log line of a request that is not (yet) routed: the endpoint it aims at when that is a
/// SCIM name, never a client-chosen string.
pub(super) fn endpoint_hint(rest: &str) -> &'static str {
    crate::route::label_of(rest.split('/').next().unwrap_or_default()).unwrap_or("unknown")
}
