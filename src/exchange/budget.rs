//! The upstream's request budget as the exchange meets it: drawing from it before a callout,
//! pacing a request that finds it spent (the `Waiting` state and its [`Exchange::resume`]),
//! refusing one that cannot wait, and backing off when the upstream answers 429. The bucket
//! arithmetic and the compare-and-swap loop are in src/ratelimit.rs.

use super::*;
use crate::ratelimit::{Decision, RateLimit};

/// A request waiting for the upstream's budget: the callout, ready, and what its answer needs.
#[derive(Debug)]
pub(super) struct Waiting {
    call: UpstreamCall,
    public: PublicBase,
    resource_type: Option<ResourceType>,
    projection: Projection,
    /// When it started waiting.
    since_ms: u64,
}

/// What [`Exchange::resume`] did with a waiting request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// Still waiting for the budget.
    Waiting,
    /// The callout started (its token), or the request was answered: it no longer waits.
    Dispatched(u32),
    Answered,
}

impl Exchange {
    /// Sends the callout if the budget allows it; otherwise the request waits its turn (pacing)
    /// or is answered 429.
    pub(super) fn within_budget(
        &mut self,
        host: &mut dyn Host,
        call: UpstreamCall,
        public: PublicBase,
        since: Option<Duration>,
        resource_type: Option<ResourceType>,
        projection: Projection,
    ) {
        if let Some(limit) = self.config.rate_limit {
            let ahead = if limit.pacing.enabled() { host.waiting() } else { 0 };
            // First come, first served: while others wait on this worker, a new request queues
            // behind them instead of drawing the budget.
            let decision = if ahead > 0 {
                let retry_after_s = (limit.interval_ms() * ahead as u64).div_ceil(1000).max(1);
                Decision::Deny { retry_after_s }
            } else {
                self.draw_budget(host, &limit, since)
            };
            if let Decision::Deny { retry_after_s } = decision {
                let Some(now_ms) = since.and_then(|t| u64::try_from(t.as_millis()).ok()) else {
                    return self.budget_spent(host, &limit, retry_after_s, "rate_limited");
                };
                if !limit.pacing.enabled() {
                    return self.budget_spent(host, &limit, retry_after_s, "rate_limited");
                }
                if ahead >= limit.pacing.max_waiting as usize {
                    host.count(Counter::PacingRefused("queue_full"));
                    return self.budget_spent(host, &limit, retry_after_s, "queue_full");
                }
                // The wait this request would have: its place in the queue at the refill rate, or
                // the budget's own answer when that is later (an upstream 429's back-off).
                let estimate_ms = (retry_after_s * 1000).max(limit.interval_ms() * (ahead as u64 + 1));
                if estimate_ms > u64::from(limit.pacing.max_wait_ms) {
                    host.count(Counter::PacingRefused("max_wait"));
                    return self.budget_spent(host, &limit, estimate_ms.div_ceil(1000), "max_wait");
                }
                host.count(Counter::Paced);
                self.state = State::Waiting(Waiting { call, public, resource_type, projection, since_ms: now_ms });
                return;
            }
        }
        self.dispatch(host, call, public, since, resource_type, projection);
    }

    /// A paced request's turn, maybe: called in order of arrival on every tick while it waits.
    /// `may_dispatch` is false once an earlier request found the budget still spent (nobody
    /// overtakes it); a request past its maximum wait is answered 429 either way.
    pub fn resume(&mut self, host: &mut dyn Host, may_dispatch: bool) -> Resumed {
        let waiting = match std::mem::replace(&mut self.state, State::Done) {
            State::Waiting(waiting) => waiting,
            other => {
                self.state = other;
                return Resumed::Answered;
            }
        };
        let (Some(limit), Some(now)) = (self.config.rate_limit, host.now()) else {
            self.state = State::Waiting(waiting);
            return Resumed::Waiting;
        };
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let waited_ms = now_ms.saturating_sub(waiting.since_ms);
        let decision = if may_dispatch { Some(self.draw_budget(host, &limit, Some(now))) } else { None };
        match decision {
            Some(Decision::Allow) => {
                self.record.waited_ms = Some(waited_ms);
                host.record(Histogram::PacingWaitMs, waited_ms);
                let Waiting { call, public, resource_type, projection, .. } = waiting;
                self.dispatch(host, call, public, Some(now), resource_type, projection);
                match &self.state {
                    State::AwaitingUpstream(flight) => Resumed::Dispatched(flight.token),
                    _ => Resumed::Answered,
                }
            }
            _ if waited_ms >= u64::from(limit.pacing.max_wait_ms) => {
                self.record.waited_ms = Some(waited_ms);
                host.count(Counter::PacingRefused("max_wait"));
                let retry_after_s = match decision {
                    Some(Decision::Deny { retry_after_s }) => retry_after_s,
                    _ => limit.interval_ms().div_ceil(1000).max(1),
                };
                self.budget_spent(host, &limit, retry_after_s, "max_wait");
                Resumed::Answered
            }
            _ => {
                self.state = State::Waiting(waiting);
                Resumed::Waiting
            }
        }
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self.state, State::Waiting(_))
    }

    /// The upstream's budget is spent and the request will not wait (or waited its longest):
    /// SCIM 429 with when to retry.
    fn budget_spent(&mut self, host: &mut dyn Host, limit: &RateLimit, retry_after_s: u64, note: &'static str) {
        host.count(Counter::RateLimited);
        self.record.note = note;
        let error = ScimError::new(
            429,
            format!(
                "The upstream's request budget ({} per minute) is spent; retry after {retry_after_s} s",
                limit.requests_per_minute
            ),
        )
        .with_header("retry-after", retry_after_s.to_string());
        self.reply(host, error.into_response());
    }

    /// The upstream answered 429: the budget stops until its `Retry-After` (bounded: see
    /// [`crate::retry_after`]), and the client is told when to retry.
    pub(super) fn upstream_throttled(&mut self, host: &mut dyn Host, response: &mut Response) {
        let retry_after_s = match response.header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            Some(bounded) => bounded,
            None => {
                let wait = crate::retry_after::retry_after_seconds(None, None, self.config.upstream.max_retry_after_s);
                response.headers.push(("retry-after".to_string(), wait.to_string()));
                wait
            }
        };
        let (Some(limit), Some(now_ms)) = (self.config.rate_limit, now_ms(host)) else {
            return;
        };
        let max_block_ms = self.config.upstream.max_retry_after_s.saturating_mul(1000);
        let key = self.config.upstream.budget_key();
        let updated = crate::ratelimit::update(host, key, now_ms, max_block_ms, |bucket| {
            (limit.back_off(bucket, now_ms, retry_after_s), ())
        });
        if updated.is_none() {
            log::warn!("scim-edge ctx={}: the upstream's 429 could not be stored in the budget", self.context_id);
        }
    }

    /// Rewrites the upstream's `Retry-After`, in whatever form it came, as delta-seconds within
    /// `upstream.max_retry_after_s` (RFC 9110 §10.2.3).
    pub(super) fn bound_retry_after(&self, host: &dyn Host, response: &mut Response) {
        let now_s = host.now().map(|t| t.as_secs());
        let max = self.config.upstream.max_retry_after_s;
        for (name, value) in response.headers.iter_mut() {
            if name == "retry-after" {
                *value = crate::retry_after::retry_after_seconds(Some(value), now_s, max).to_string();
            }
        }
    }

    /// Draws one request from the upstream's budget (shared by every worker through the host's
    /// compare-and-swap). Fails closed: when the budget cannot be read or written, or other
    /// workers keep winning the race, the request is refused (429, retry after a second) rather
    /// than sent past a budget nobody could check.
    fn draw_budget(&mut self, host: &mut dyn Host, limit: &RateLimit, now: Option<Duration>) -> Decision {
        let Some(now_ms) = now.and_then(|t| u64::try_from(t.as_millis()).ok()) else {
            log::warn!("scim-edge ctx={}: no clock for the request budget", self.context_id);
            return Decision::Deny { retry_after_s: 1 };
        };
        let max_block_ms = self.config.upstream.max_retry_after_s.saturating_mul(1000);
        let key = self.config.upstream.budget_key();
        match crate::ratelimit::update(host, key, now_ms, max_block_ms, |bucket| limit.take(bucket, now_ms)) {
            Some(decision) => decision,
            None => {
                log::warn!("scim-edge ctx={}: the request budget is unavailable (shared data)", self.context_id);
                Decision::Deny { retry_after_s: 1 }
            }
        }
    }
}

fn now_ms(host: &dyn Host) -> Option<u64> {
    host.now().and_then(|t| u64::try_from(t.as_millis()).ok())
}
