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
    /// Requests that waited for the budget (pacing) instead of being refused.
    Paced,
    /// Requests refused 429 past a pacing bound (`max_wait`, `queue_full`), or whose client
    /// went away while they waited (`client_gone`).
    PacingRefused(&'static str),
}

/// The histograms the gateway records (Envoy shows them in `/stats` with percentiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Histogram {
    /// Time from dispatching the callout to its answer.
    UpstreamLatencyMs,
    /// How long a paced request waited for the budget before its callout started.
    PacingWaitMs,
}

impl Histogram {
    pub fn name(self) -> &'static str {
        match self {
            Histogram::UpstreamLatencyMs => "scim_edge.upstream.latency_ms",
            Histogram::PacingWaitMs => "scim_edge.paced.wait_ms",
        }
    }
}

impl Counter<'_> {
    pub fn name(&self) -> String {
        let mut name = String::new();
        self.write_name(&mut name);
        name
    }

    /// Writes the name into `out` (cleared first): the adapter reuses one buffer for every
    /// increment, so counting allocates nothing once the buffer has grown.
    pub fn write_name(&self, out: &mut String) {
        out.clear();
        out.push_str(PREFIX);
        let (kind, detail) = match self {
            Counter::Requests => ("requests", None),
            Counter::AuthAccepted(token) => ("auth.accepted", Some(*token)),
            Counter::AuthRejected(reason) => ("auth.rejected", Some(reason.as_str())),
            Counter::Responses(class) => ("responses", Some(*class)),
            Counter::UpstreamFailures(kind) => ("upstream.failures", Some(kind.as_str())),
            Counter::Invalid(scim_type) => ("invalid", Some(scim_type.as_str())),
            Counter::Normalised(kind) => ("normalised", Some(kind.as_str())),
            Counter::Stripped(name) => ("stripped", Some(*name)),
            Counter::Endpoint(label, method) => {
                // `Users/{id}` is `Users_id`, `.search` is `search`.
                out.push_str(".requests.");
                out.extend(
                    label.chars().filter(|c| !matches!(c, '{' | '}' | '.')).map(|c| if c == '/' { '_' } else { c }),
                );
                out.push('.');
                out.push_str(method);
                return;
            }
            Counter::RateLimited => ("rate_limited", None),
            Counter::Paced => ("paced", None),
            Counter::PacingRefused(reason) => ("paced.refused", Some(*reason)),
        };
        out.push('.');
        out.push_str(kind);
        if let Some(detail) = detail {
            out.push('.');
            out.push_str(detail);
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
        assert_eq!(Counter::Endpoint("Users/{id}", "PATCH").name(), "scim_edge.requests.Users_id.PATCH");
        assert_eq!(Counter::Endpoint(".search", "POST").name(), "scim_edge.requests.search.POST");
        assert_eq!(Counter::RateLimited.name(), "scim_edge.rate_limited");
        assert_eq!(Counter::Paced.name(), "scim_edge.paced");
        assert_eq!(Counter::PacingRefused("max_wait").name(), "scim_edge.paced.refused.max_wait");
        let mut reused = String::from("left over");
        Counter::Stripped("emails").write_name(&mut reused);
        assert_eq!(reused, "scim_edge.stripped.emails");
    }
}
