"""Pacing through the real Envoy (`--concurrency 2`): when the upstream's budget is spent, a request
waits at the edge for its turn instead of being refused, within bounds.

The recorder in front of scim2-server timestamps every request that reaches the upstream, so the
rate is measured where it matters. Budgets are small and fast (120 a minute, a token every 0.5 s)
to keep the tests short.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid

import pytest
import requests

from support import gateways
import local_stack as stack
from support.scim import AUTH, SCIM_JSON, USER_SCHEMA
from support.upstream_recorder import UpstreamRecorder

# How much earlier than the budget allows a request may reach the upstream: the clocks of the
# recorder and of Envoy, and the recorder's own scheduling.
TOLERANCE_S = 0.15


@pytest.fixture
def recorder(scim_upstream):
    recorder = UpstreamRecorder(scim_upstream).start()
    yield recorder
    recorder.stop()


def paced_plugin(**rate_limit) -> dict:
    plugin = gateways.plugin_with_profile("omni")
    plugin["rate_limit"] = {"requests_per_minute": 120, "burst": 5, **rate_limit}
    return plugin


def create(gw, results: list, start: threading.Barrier) -> None:
    user = {"schemas": [USER_SCHEMA], "userName": f"paced-{uuid.uuid4().hex[:10]}@example.com",
            "displayName": "Paced User", "active": True}
    start.wait()
    sent = time.monotonic()
    response = requests.post(f"{gw.base}/Users", headers=SCIM_JSON, data=json.dumps(user), timeout=60)
    results.append((sent, time.monotonic(), response))


def burst(gw, count: int) -> list:
    results: list = []
    start = threading.Barrier(count)
    threads = [threading.Thread(target=create, args=(gw, results, start)) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def arrival_times(recorder: UpstreamRecorder, mark: int) -> list[float]:
    return sorted(r.received for r in recorder.since(mark))


def assert_within_budget(arrivals: list[float], burst_size: int, interval_s: float) -> None:
    """Nothing reached the upstream faster than the bucket allows: after the burst, the k-th
    request no earlier than k refill intervals after the first."""
    first = arrivals[0]
    for index, at in enumerate(arrivals):
        earliest = max(0, index - burst_size + 1) * interval_s
        assert at - first >= earliest - TOLERANCE_S, (
            f"request {index} reached the upstream {at - first:.3f} s after the first; the budget allows "
            f"{earliest:.3f} s"
        )


def test_a_burst_of_creates_is_paced_to_the_budget_and_none_is_refused(run_dir, recorder):
    gw = gateways.start_gateway(run_dir, "envoy-paced", recorder.port, recorder, paced_plugin())
    try:
        mark = recorder.mark()
        results = burst(gw, 20)
        statuses = sorted(r.status_code for _, _, r in results)
        assert statuses == [201] * 20, [r.text for _, _, r in results if r.status_code != 201]
        arrivals = arrival_times(recorder, mark)
        assert len(arrivals) == 20
        assert_within_budget(arrivals, burst_size=5, interval_s=0.5)
        # 15 waited for a token each: the last about 7.5 s after the first.
        span = arrivals[-1] - arrivals[0]
        assert 7.5 - TOLERANCE_S <= span <= 9.5, span
        assert gw.counter("paced") == 15
        assert gw.counter("rate_limited") == 0
        waits = [int(m) for m in re.findall(r"waited_ms=(\d+)", gw.envoy.log_text())]
        assert len(waits) == 15 and max(waits) >= 7000, waits
        # Both workers served the burst and drew on one bucket (the rate above held across them).
        workers = {m for m in re.findall(r"\]\[(\d+)\]\[info\]\[wasm\].*POST Users", gw.envoy.log_text())}
        assert len(workers) == 2, "one worker served every request"
        print(f"\npaced: 20 creates, upstream span {span:.2f} s (budget: 5 at once, then 2/s); "
              f"waits {min(waits)}-{max(waits)} ms")
    finally:
        gateways.stop_gateway(gw)


def test_past_the_bounds_the_answer_is_429_with_retry_after(run_dir, recorder):
    # At most 2 s of waiting: with 5 at once and 2 a second, 4 more fit; the rest are refused.
    gw = gateways.start_gateway(run_dir, "envoy-paced-bounds", recorder.port, recorder,
                                paced_plugin(max_wait_ms=2000))
    try:
        mark = recorder.mark()
        results = burst(gw, 16)
        ok = [r for _, _, r in results if r.status_code == 201]
        refused = [r for _, _, r in results if r.status_code == 429]
        assert len(ok) + len(refused) == 16
        assert 8 <= len(ok) <= 10, f"{len(ok)} created"
        for response in refused:
            assert response.headers["content-type"] == "application/scim+json"
            assert int(response.headers["retry-after"]) >= 1
        assert len(recorder.since(mark)) == len(ok)
        assert_within_budget(arrival_times(recorder, mark), burst_size=5, interval_s=0.5)
        assert gw.counter("paced.refused.max_wait") == len(refused)
    finally:
        gateways.stop_gateway(gw)


def test_a_client_that_leaves_while_waiting_sends_nothing_upstream(run_dir, recorder):
    gw = gateways.start_gateway(run_dir, "envoy-paced-gone", recorder.port, recorder,
                                paced_plugin(requests_per_minute=60, burst=1), concurrency=1)
    try:
        url = f"{gw.base}/Users?count=1"
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 200  # the one token
        mark = recorder.mark()
        host, port = gw.origin.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(f"GET {stack.SCIM_PREFIX}/Users?count=2 HTTP/1.1\r\nHost: {host}\r\n"
                         f"Authorization: Bearer {stack.CLIENT_TOKEN}\r\n\r\n".encode())
            deadline = time.monotonic() + 5
            while gw.counter("paced") < 1:
                assert time.monotonic() < deadline, "the request never started waiting"
                time.sleep(0.02)
        # Past the next refill: a request still queued would have gone by now.
        time.sleep(1.5)
        assert recorder.since(mark) == [], "the abandoned request reached the upstream"
        assert "reason=client_gone_waiting" in gw.envoy.log_text()
        # The queue is empty again: the next request is served with the token that refilled.
        assert requests.get(url, headers=AUTH, timeout=10).status_code == 200
        assert [r.path for r in recorder.since(mark)] == ["/v2/Users?count=1"]
    finally:
        gateways.stop_gateway(gw)
