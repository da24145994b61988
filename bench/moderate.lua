-- The Entra-shaped mix of bench/entra_mix.lua at a moderate, bounded rate (bench/bench.py's
-- "moderate load" rows): each connection waits BENCH_DELAY_MS before sending its next request
-- (wrk's delay() hook), so the box is not saturated and latency is the path's own, not a queue's.
-- wrk times a request from the moment it is written, so the wait is not counted in the latency.
dofile(os.getenv("BENCH_MIX"))

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

function delay()
  return delay_ms
end
