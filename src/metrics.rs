//! The counters the gateway keeps. Envoy shows them in `/stats` as `wasmcustom.<name>`, and in
//! `/stats/prometheus`. Names carry token names, reasons and kinds, never a token or a value.

use crate::auth::AuthFailure;
use crate::scim::normalisation::Normalisation;
use crate::scim_error::ScimType;
use crate::upstream::UpstreamFailure;

pub const PREFIX: &str = "scim_edge";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter<'a> {
    /// Every request under the SCIM prefix.
    Requests,
    /// Requests authenticated, by token name.
    AuthAccepted(&'a str),
    /// Requests refused 401, by reason.
    AuthRejected(AuthFailure),
    /// Responses sent to clients, by status class (`2xx`...).
    Responses(&'static str),
    /// Callouts that gave no usable answer, by kind.
    UpstreamFailures(UpstreamFailure),
    /// Requests refused as invalid SCIM, by `scimType`.
    Invalid(ScimType),
    /// Rewrites applied to forwarded requests, by kind.
    Normalised(Normalisation),
    /// Attributes the mapping kept from the upstream, by (counter-safe) name.
    Stripped(&'a str),
    /// Routed requests by endpoint (ids redacted) and method.
    Endpoint(&'static str, &'static str),
    /// Requests refused because the upstream's budget was spent.
    RateLimited,
}

/// The histograms the gateway records (Envoy shows them in `/stats` with percentiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Histogram {
    /// Time from dispatching the callout to its answer.
    UpstreamLatencyMs,
}

impl Histogram {
    pub fn name(self) -> &'static str {
        match self {
            Histogram::UpstreamLatencyMs => "scim_edge.upstream.latency_ms",
        }
    }
}

/// An endpoint label as a counter name segment: `Users/{id}` is `Users_id`, `.search` is `search`.
fn label_segment(label: &str) -> String {
    label.chars().filter(|c| !matches!(c, '{' | '}' | '.')).map(|c| if c == '/' { '_' } else { c }).collect()
}

impl Counter<'_> {
    pub fn name(&self) -> String {
        match self {
            Counter::Requests => format!("{PREFIX}.requests"),
            Counter::AuthAccepted(token) => format!("{PREFIX}.auth.accepted.{token}"),
            Counter::AuthRejected(reason) => format!("{PREFIX}.auth.rejected.{}", reason.as_str()),
            Counter::Responses(class) => format!("{PREFIX}.responses.{class}"),
            Counter::UpstreamFailures(kind) => format!("{PREFIX}.upstream.failures.{}", kind.as_str()),
            Counter::Invalid(scim_type) => format!("{PREFIX}.invalid.{}", scim_type.as_str()),
            Counter::Normalised(kind) => format!("{PREFIX}.normalised.{}", kind.as_str()),
            Counter::Stripped(name) => format!("{PREFIX}.stripped.{name}"),
            Counter::Endpoint(label, method) => format!("{PREFIX}.requests.{}.{method}", label_segment(label)),
            Counter::RateLimited => format!("{PREFIX}.rate_limited"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn names_are_stable() {
        assert_eq!(Counter::Requests.name(), "scim_edge.requests");
        assert_eq!(Counter::AuthAccepted("entra").name(), "scim_edge.auth.accepted.entra");
        assert_eq!(Counter::AuthRejected(AuthFailure::Missing).name(), "scim_edge.auth.rejected.missing");
        assert_eq!(Counter::Responses("4xx").name(), "scim_edge.responses.4xx");
        assert_eq!(Counter::UpstreamFailures(UpstreamFailure::Timeout).name(), "scim_edge.upstream.failures.timeout");
    }
}
