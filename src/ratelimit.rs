//! The upstream's request budget: a token bucket per upstream credential (Omni allows 60 SCIM
//! requests per minute per API key, then answers 429).
//!
//! The bucket lives in proxy-wasm shared data, so every worker of the VM draws from the same one;
//! updates use the host's compare-and-swap. This module holds the arithmetic, the encoding and the
//! one compare-and-swap loop ([`update`]); the exchange hands it the host's shared data.

/// Refill rate and capacity of a bucket, and how requests wait for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests_per_minute: u32,
    pub burst: u32,
    pub pacing: Pacing,
}

/// Pacing: when the bucket is empty, a request waits at the edge for its turn instead of being
/// refused, within these bounds (past either, it gets 429 with `Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// The longest a request may wait; 0 turns pacing off (an empty bucket is an immediate 429).
    pub max_wait_ms: u32,
    /// How many requests may wait at once, per worker.
    pub max_waiting: u32,
}

impl Pacing {
    /// Well inside Entra's 60 s request timeout, with room for the upstream's own answer.
    pub const DEFAULT: Pacing = Pacing { max_wait_ms: 30_000, max_waiting: 100 };
    pub const OFF: Pacing = Pacing { max_wait_ms: 0, max_waiting: 0 };

    pub fn enabled(&self) -> bool {
        self.max_wait_ms > 0 && self.max_waiting > 0
    }
}

/// A bucket as stored: milli-tokens (so a refill of a fraction of a token is not lost), when it
/// was last updated, and until when the upstream asked us to stop (its 429 `Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub milli_tokens: u64,
    pub updated_ms: u64,
    pub blocked_until_ms: u64,
}

/// Whether a request may go upstream now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Over budget: try again after this many seconds.
    Deny {
        retry_after_s: u64,
    },
}

const MILLI: u64 = 1000;

impl Bucket {
    pub const ENCODED_LEN: usize = 24;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut bytes = [0u8; Self::ENCODED_LEN];
        for (chunk, value) in bytes.chunks_exact_mut(8).zip([self.milli_tokens, self.updated_ms, self.blocked_until_ms])
        {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    /// `None` for anything that is not a bucket this module wrote.
    pub fn decode(bytes: &[u8]) -> Option<Bucket> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        let mut values = bytes.chunks_exact(8).map(|c| <[u8; 8]>::try_from(c).ok().map(u64::from_le_bytes));
        Some(Bucket { milli_tokens: values.next()??, updated_ms: values.next()??, blocked_until_ms: values.next()?? })
    }
}

impl RateLimit {
    /// Milliseconds between two tokens at the refill rate.
    pub fn interval_ms(&self) -> u64 {
        60_000u64.div_ceil(u64::from(self.requests_per_minute.max(1)))
    }

    fn capacity(&self) -> u64 {
        u64::from(self.burst) * MILLI
    }

    /// The bucket refilled up to `now_ms` (a new bucket starts full).
    fn refilled(&self, bucket: Option<Bucket>, now_ms: u64) -> Bucket {
        let Some(bucket) = bucket else {
            return Bucket { milli_tokens: self.capacity(), updated_ms: now_ms, blocked_until_ms: 0 };
        };
        let elapsed = now_ms.saturating_sub(bucket.updated_ms);
        // requests_per_minute tokens per 60 000 ms = requests_per_minute milli-tokens per 60 ms.
        let refill = elapsed.saturating_mul(u64::from(self.requests_per_minute)) / 60;
        Bucket {
            milli_tokens: bucket.milli_tokens.saturating_add(refill).min(self.capacity()),
            updated_ms: now_ms.max(bucket.updated_ms),
            blocked_until_ms: bucket.blocked_until_ms,
        }
    }

    /// Takes one token if there is one: the bucket to store and the decision.
    pub fn take(&self, bucket: Option<Bucket>, now_ms: u64) -> (Bucket, Decision) {
        let mut bucket = self.refilled(bucket, now_ms);
        if bucket.blocked_until_ms > now_ms {
            let retry_after_s = (bucket.blocked_until_ms - now_ms).div_ceil(MILLI).max(1);
            return (bucket, Decision::Deny { retry_after_s });
        }
        if bucket.milli_tokens >= MILLI {
            bucket.milli_tokens -= MILLI;
            return (bucket, Decision::Allow);
        }
        let missing = MILLI - bucket.milli_tokens;
        // missing milli-tokens at requests_per_minute per 60 s.
        let retry_after_s = (missing * 60).div_ceil(u64::from(self.requests_per_minute.max(1)) * MILLI).max(1);
        (bucket, Decision::Deny { retry_after_s })
    }

    /// The upstream answered 429: nothing goes until its `Retry-After` has passed, and the bucket
    /// is empty then, so traffic resumes at the refill rate rather than in a burst.
    pub fn back_off(&self, bucket: Option<Bucket>, now_ms: u64, retry_after_s: u64) -> Bucket {
        let blocked_until_ms = now_ms.saturating_add(retry_after_s.saturating_mul(MILLI));
        let bucket = self.refilled(bucket, now_ms);
        Bucket {
            milli_tokens: 0,
            updated_ms: blocked_until_ms,
            blocked_until_ms: blocked_until_ms.max(bucket.blocked_until_ms),
        }
    }
}

/// The outcome of a compare-and-swap write to shared data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedWrite {
    Stored,
    /// Another worker wrote first: read again and retry.
    Conflict,
    Failed,
}

/// The VM's shared data (common to all workers) as a budget needs it; the exchange's host
/// provides it.
pub trait SharedData {
    /// The value under `key` with its compare-and-swap token.
    fn load(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>);
    /// Stores `value` under `key` unless it was written since `cas` was read.
    fn store(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> SharedWrite;
}

/// How many times a budget update is retried when other workers keep winning the CAS race.
const BUDGET_ATTEMPTS: usize = 16;

/// The CAS a new budget is written with: one no stored entry carries (the host hands them out
/// from 1 upwards, one per write), so the write creates the key or conflicts with whoever did.
const CREATE_CAS: u32 = u32::MAX;

/// One compare-and-swap update of the bucket under `key`: `change` gets the stored bucket (`None`
/// when there is none yet) and returns the bucket to store and what to answer. `None` when no
/// update could be stored within [`BUDGET_ATTEMPTS`]: callers fail closed on it.
///
/// Every write is conditional. The host creates a missing key whatever CAS it is given, but
/// rejects a CAS that does not match an existing key: writing a new bucket with a CAS no entry
/// carries ([`CREATE_CAS`]) creates it or, if another worker created it first (or the read failed
/// and read as missing), conflicts and is retried on what is there. A stored value that is not a
/// bucket counts as an empty one (it refills at the rate), never a full one; a value without a
/// CAS is not updated. A block longer than `max_block_ms` (stored before the bound was
/// configured) is cut.
pub fn update<S: SharedData + ?Sized, T>(
    shared: &mut S,
    key: &str,
    now_ms: u64,
    max_block_ms: u64,
    mut change: impl FnMut(Option<Bucket>) -> (Bucket, T),
) -> Option<T> {
    for _ in 0..BUDGET_ATTEMPTS {
        let (bucket, cas) = match shared.load(key) {
            (None, _) => (None, CREATE_CAS),
            (Some(bytes), Some(cas)) => {
                let empty = Bucket { milli_tokens: 0, updated_ms: now_ms, blocked_until_ms: 0 };
                let mut bucket = Bucket::decode(&bytes).unwrap_or(empty);
                bucket.blocked_until_ms = bucket.blocked_until_ms.min(now_ms.saturating_add(max_block_ms));
                bucket.updated_ms = bucket.updated_ms.min(now_ms.saturating_add(max_block_ms));
                (Some(bucket), cas)
            }
            // A value without a CAS cannot be updated safely.
            (Some(_), None) => return None,
        };
        let (next, outcome) = change(bucket);
        match shared.store(key, &next.encode(), Some(cas)) {
            SharedWrite::Stored => return Some(outcome),
            SharedWrite::Conflict => continue,
            SharedWrite::Failed => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const OMNI: RateLimit = RateLimit { requests_per_minute: 60, burst: 60, pacing: Pacing::DEFAULT };

    /// Runs `count` requests at `now_ms`, returning how many were allowed.
    fn burst(limit: &RateLimit, bucket: &mut Option<Bucket>, now_ms: u64, count: usize) -> usize {
        (0..count)
            .filter(|_| {
                let (next, decision) = limit.take(*bucket, now_ms);
                *bucket = Some(next);
                decision == Decision::Allow
            })
            .count()
    }

    #[test]
    fn a_full_bucket_allows_its_burst_then_refills_at_the_rate() {
        let mut bucket = None;
        assert_eq!(burst(&OMNI, &mut bucket, 1_000, 100), 60);
        assert_eq!(OMNI.take(bucket, 1_000).1, Decision::Deny { retry_after_s: 1 });
        // One token a second at 60 per minute.
        assert_eq!(burst(&OMNI, &mut bucket, 1_999, 5), 0);
        assert_eq!(burst(&OMNI, &mut bucket, 2_000, 5), 1);
        assert_eq!(burst(&OMNI, &mut bucket, 12_000, 50), 10);
        // A minute later the bucket is full again, never fuller.
        assert_eq!(burst(&OMNI, &mut bucket, 600_000, 100), 60);
    }

    #[test]
    fn slow_rates_tell_how_long_to_wait() {
        let limit = RateLimit { requests_per_minute: 2, burst: 1, pacing: Pacing::OFF };
        let (bucket, decision) = limit.take(None, 0);
        assert_eq!(decision, Decision::Allow);
        assert_eq!(limit.take(Some(bucket), 0).1, Decision::Deny { retry_after_s: 30 });
        assert_eq!(limit.take(Some(bucket), 15_000).1, Decision::Deny { retry_after_s: 15 });
        assert_eq!(limit.take(Some(bucket), 30_000).1, Decision::Allow);
    }

    #[test]
    fn an_upstream_429_stops_traffic_until_its_retry_after_then_resumes_slowly() {
        let mut bucket = None;
        assert_eq!(burst(&OMNI, &mut bucket, 0, 10), 10);
        bucket = Some(OMNI.back_off(bucket, 1_000, 30));
        assert_eq!(OMNI.take(bucket, 1_000).1, Decision::Deny { retry_after_s: 30 });
        assert_eq!(OMNI.take(bucket, 30_500).1, Decision::Deny { retry_after_s: 1 });
        assert_eq!(burst(&OMNI, &mut bucket, 31_000, 10), 0, "empty when the block ends");
        assert_eq!(burst(&OMNI, &mut bucket, 33_000, 10), 2);
    }

    #[test]
    fn buckets_round_trip_and_garbage_is_not_a_bucket() {
        let bucket = Bucket { milli_tokens: 12_345, updated_ms: u64::MAX - 1, blocked_until_ms: 7 };
        assert_eq!(Bucket::decode(&bucket.encode()), Some(bucket));
        assert_eq!(Bucket::decode(b"short"), None);
        assert_eq!(Bucket::decode(&[0u8; 25]), None);
    }

    /// Shared data that answers a fixed read and a fixed write outcome, recording the writes.
    struct Scripted {
        read: (Option<Vec<u8>>, Option<u32>),
        write: SharedWrite,
        writes: Vec<Option<u32>>,
    }

    impl SharedData for Scripted {
        fn load(&self, _key: &str) -> (Option<Vec<u8>>, Option<u32>) {
            self.read.clone()
        }

        fn store(&mut self, _key: &str, _value: &[u8], cas: Option<u32>) -> SharedWrite {
            self.writes.push(cas);
            self.write
        }
    }

    fn scripted(read: (Option<Vec<u8>>, Option<u32>), write: SharedWrite) -> Scripted {
        Scripted { read, write, writes: Vec::new() }
    }

    #[test]
    fn the_cas_update_creates_conditionally_and_fails_closed() {
        let take = |bucket| OMNI.take(bucket, 1_000);
        // A missing key is created with a CAS no entry carries, never unconditionally.
        let mut shared = scripted((None, None), SharedWrite::Stored);
        assert_eq!(update(&mut shared, "k", 1_000, 0, take), Some(Decision::Allow));
        assert_eq!(shared.writes, vec![Some(CREATE_CAS)]);
        // A stored value that is not a bucket is an empty one: the request is refused.
        let mut shared = scripted((Some(b"garbage".to_vec()), Some(3)), SharedWrite::Stored);
        assert_eq!(update(&mut shared, "k", 1_000, 0, take), Some(Decision::Deny { retry_after_s: 1 }));
        assert_eq!(shared.writes, vec![Some(3)]);
        // Other workers winning every race, a failed write, a value without a CAS: no answer.
        let mut shared = scripted((None, None), SharedWrite::Conflict);
        assert_eq!(update(&mut shared, "k", 1_000, 0, take), None);
        assert_eq!(shared.writes.len(), BUDGET_ATTEMPTS);
        let mut shared = scripted((None, None), SharedWrite::Failed);
        assert_eq!(update(&mut shared, "k", 1_000, 0, take), None);
        let mut shared = scripted((Some(OMNI.take(None, 0).0.encode().to_vec()), None), SharedWrite::Stored);
        assert_eq!(update(&mut shared, "k", 1_000, 0, take), None);
        assert!(shared.writes.is_empty());
    }

    #[test]
    fn a_clock_going_backwards_neither_refills_nor_panics() {
        let (bucket, _) = OMNI.take(None, 10_000);
        let (later, decision) = OMNI.take(Some(bucket), 5_000);
        assert_eq!(decision, Decision::Allow);
        assert_eq!(later.milli_tokens, bucket.milli_tokens - MILLI);
    }
}
