"""Running it in production, end to end through the real Envoy (`--concurrency 2`):

1. the upstream's request budget is one bucket shared by every worker, answers 429 with
   `Retry-After` when spent, and refills at its rate;
2. an upstream 429 is relayed with its `Retry-After` (60 s without one) and stops the traffic at
   the edge until then;
3. every way the upstream can fail ends in a SCIM error, counted by kind, and never fails the
   wasm VM (Envoy's wasm stats stay put, and the gateway keeps serving);
4. nothing secret (tokens, the upstream credential, attribute values the client sent) reaches
   Envoy's log, its stats or an error body, even at `--component-log-level wasm:debug`;
5. the counters and the upstream latency histogram are exposed to Prometheus.

The Location / `meta.location` rewrite of the upstream's own URLs is asserted in
test_gateway_e2e.py (test_user_lifecycle_through_the_gateway) and upstream.rs's unit tests.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import socket
import threading
import time
import urllib.parse
import uuid

import pytest
import requests

from support import gateways
import local_stack as stack
from support.scim import AUTH, PATCH_SCHEMA, SCIM_JSON, USER_SCHEMA, assert_scim_error, eq_filter, new_user
from support.gateways import (
    edge,
    assert_vm_never_failed,
    without_pacing,
    with_plugin,
    filter_lines,
    matching_lines,
    await_line,
)
from support.upstream_recorder import UpstreamRecorder

FIXTURES = gateways.ROOT / "tests" / "fixtures"
OMNI_ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"

@pytest.fixture
def recorder(scim_upstream):
    recorder = UpstreamRecorder(scim_upstream).start()
    yield recorder
    recorder.stop()


# ---------------------------------------------------------------------------------------------------
# 1. The budget


def test_the_budget_is_one_bucket_shared_by_every_worker(gateway_factory, recorder, shipped_plugin):
    plugin = with_plugin(shipped_plugin, rate_limit={"requests_per_minute": 6, "burst": 3, "max_wait_ms": 0})
    gw = gateway_factory("envoy-budget", recorder.port, recorder, plugin)
    fired = 12
    start = threading.Barrier(fired)
    answers: list[requests.Response] = []

    def one():
        start.wait()
        # requests.get opens a connection of its own each time, so Envoy spreads them over its workers.
        answers.append(requests.get(f"{gw.base}/Users?count=1", headers=AUTH, timeout=10))

    threads = [threading.Thread(target=one) for _ in range(fired)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.status_code for a in answers) == [200] * 3 + [429] * (fired - 3)
    assert len(recorder.since(0)) == 3
    for refused in (a for a in answers if a.status_code == 429):
        body = assert_scim_error(refused, 429)
        assert "budget (6 per minute)" in body["detail"]
        # One token every 10 s at 6 per minute.
        assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert gw.counter("rate_limited") == fired - 3
    assert gw.counter("requests.Users.GET") == fired
    # Both workers served some of the burst (Envoy's log line names the thread), so the three
    # allowed requests were counted against one bucket, not one per worker.
    lines = filter_lines(gw, fired)
    workers = {re.search(r"\]\[(\d+)\]\[info\]\[wasm\]", line).group(1) for line in lines}
    assert len(lines) == fired and len(workers) == 2, lines
    assert sum("reason=rate_limited" in line for line in lines) == fired - 3


def test_the_budget_refills_at_its_rate(gateway_factory, recorder, shipped_plugin):
    plugin = with_plugin(shipped_plugin, rate_limit={"requests_per_minute": 60, "burst": 2, "max_wait_ms": 0})
    gw = gateway_factory("envoy-refill", recorder.port, recorder, plugin)
    url = f"{gw.base}/Users?count=1"
    assert [requests.get(url, headers=AUTH).status_code for _ in range(2)] == [200, 200]
    spent = requests.get(url, headers=AUTH)
    assert_scim_error(spent, 429)
    assert spent.headers["retry-after"] == "1"  # one token a second
    time.sleep(float(spent.headers["retry-after"]))  # the deliberate refill wait
    assert requests.get(url, headers=AUTH).status_code == 200
    # One token came back, not the whole burst.
    assert_scim_error(requests.get(url, headers=AUTH), 429)
    assert len(recorder.since(0)) == 3
    assert gw.counter("rate_limited") == 2


def test_requests_the_edge_answers_itself_spend_no_budget(gateway_factory, recorder, shipped_plugin):
    plugin = with_plugin(shipped_plugin, rate_limit={"requests_per_minute": 6, "burst": 1, "max_wait_ms": 0})
    gw = gateway_factory("envoy-budget-local", recorder.port, recorder, plugin)
    assert_scim_error(requests.get(f"{gw.base}/Users"), 401)
    assert_scim_error(requests.get(f"{gw.base}/Users?filter=bad", headers=AUTH), 400)
    assert requests.get(f"{gw.base}/Users?{eq_filter('externalId', 'x')}", headers=AUTH).json()["totalResults"] == 0
    assert recorder.since(0) == []
    assert requests.get(f"{gw.base}/Users?count=1", headers=AUTH).status_code == 200
    assert_scim_error(requests.get(f"{gw.base}/Users?count=1", headers=AUTH), 429)
    assert gw.counter("rate_limited") == 1


def test_the_budget_can_be_turned_off(gateway_factory, recorder, shipped_plugin):
    gw = gateway_factory("envoy-budget-off", recorder.port, recorder, with_plugin(shipped_plugin, rate_limit="off"))
    assert [requests.get(f"{gw.base}/Users?count=1", headers=AUTH).status_code for _ in range(5)] == [200] * 5
    assert gw.counter("rate_limited") == 0


# ---------------------------------------------------------------------------------------------------
# 2. The upstream's own 429


@pytest.mark.parametrize("retry_after, expected", [("7", 7), (None, 60)], ids=["with-retry-after", "without"])
def test_an_upstream_429_is_relayed_and_the_edge_backs_off(gateway_factory, recorder, shipped_plugin, retry_after,
                                                           expected):
    recorder.behaviour, recorder.retry_after = "throttle", retry_after
    gw = gateway_factory("envoy-throttled", recorder.port, recorder, without_pacing(shipped_plugin))

    relayed = requests.get(f"{gw.base}/Users?count=1", headers=AUTH)
    body = assert_scim_error(relayed, 429)
    assert body["detail"] == "Too many requests", "the upstream's own SCIM error, relayed"
    assert relayed.headers["retry-after"] == str(expected)
    assert len(recorder.since(0)) == 1

    # Within the window the edge answers itself; the upstream hears nothing.
    recorder.behaviour = "forward"
    held = requests.get(f"{gw.base}/Users?count=1", headers=AUTH)
    body = assert_scim_error(held, 429)
    assert "budget" in body["detail"]
    assert expected - 2 <= int(held.headers["retry-after"]) <= expected
    assert len(recorder.since(0)) == 1
    assert gw.counter("rate_limited") == 1
    assert gw.counter("responses.4xx") == 2
    assert gw.counter("upstream.failures.status_5xx") == 0


def test_an_upstream_429_in_plain_text_is_still_a_429_that_backs_off(gateway_factory, recorder, shipped_plugin):
    """Rate limiters in front of an API (and many APIs) answer 429 with a text body. It is still
    the upstream saying "slow down": the client must get 429 + Retry-After, not a 502, and the
    edge must back off."""
    recorder.behaviour, recorder.retry_after = "throttle_text", "5"
    gw = gateway_factory("envoy-throttled-text", recorder.port, recorder, without_pacing(shipped_plugin))
    relayed = requests.get(f"{gw.base}/Users?count=1", headers=AUTH)
    assert_scim_error(relayed, 429)
    assert relayed.headers["retry-after"] == "5"
    recorder.behaviour = "forward"
    assert_scim_error(requests.get(f"{gw.base}/Users?count=1", headers=AUTH), 429)
    assert len(recorder.since(0)) == 1


# ---------------------------------------------------------------------------------------------------
# 3. Failure modes: a SCIM error each, counted, and the VM survives them all

MAX_RESPONSE_BYTES = 2048
TIMEOUT_MS = 500


@pytest.fixture(scope="module")
def fault_edge(run_dir, scim_upstream):
    """One gateway for every fault (so the VM sees them all in turn), in front of a recorder
    that forwards to scim2-server unless told to misbehave."""
    import yaml

    shipped = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    plugin = with_plugin(shipped, upstream_max_response_bytes=MAX_RESPONSE_BYTES, upstream_timeout_ms=TIMEOUT_MS)
    recorder = UpstreamRecorder(scim_upstream).start()
    recorder.hang_seconds = 1.5
    try:
        with edge(run_dir, "envoy-faults", recorder, plugin) as gw:
            yield gw
    finally:
        recorder.stop()


def assert_still_serving(gateway) -> None:
    gateway.recorder.behaviour = "forward"
    # A lookup that matches nothing: a small answer, whatever other tests stored upstream.
    nobody = 'filter=userName%20eq%20%22still-serving%40example.com%22'
    response = requests.get(f"{gateway.base}/Users?{nobody}", headers=AUTH)
    assert response.status_code == 200, response.text
    assert_vm_never_failed(gateway)


FAULTS = {
    # behaviour: (status, counter kind, words of the detail)
    "close": (502, "reset", "closed the connection"),
    "hang": (504, "timeout", f"within {TIMEOUT_MS} ms"),
    "html": (502, "malformed", "not SCIM JSON"),
    "error_text": (502, "malformed", "not SCIM JSON"),
    "big": (502, "oversized", f"more than {MAX_RESPONSE_BYTES} bytes"),
}


@pytest.mark.parametrize("behaviour", list(FAULTS))
def test_each_upstream_fault_is_a_scim_error_and_the_vm_survives(fault_edge, behaviour):
    status, kind, detail = FAULTS[behaviour]
    failures_before = fault_edge.counter(f"upstream.failures.{kind}")
    logged = rf"GET Users token=local-dev status={status} .*reason={kind}$"
    logged_before = matching_lines(fault_edge, logged)
    fault_edge.recorder.behaviour = behaviour
    mark = fault_edge.recorder.mark()

    response = requests.get(f"{fault_edge.base}/Users?count=1", headers=AUTH, timeout=10)

    body = assert_scim_error(response, status)
    assert detail in body["detail"]
    assert len(fault_edge.recorder.since(mark)) == 1, "the upstream was called once, not retried"
    assert fault_edge.counter(f"upstream.failures.{kind}") == failures_before + 1
    await_line(fault_edge, logged, logged_before)
    assert_still_serving(fault_edge)


def test_a_reset_after_the_headers_is_a_502_and_the_vm_survives(run_dir, recorder, shipped_plugin):
    """The upstream sends its status line and headers (with a Content-Length), part of the body,
    and closes. Envoy then reports the callout as failed with no response at all (no headers
    map): asking it for a response header is an error, not "absent". Its own gateway, so that if
    the VM does fail, the other fault tests are not affected."""
    recorder.behaviour = "reset_mid_body"
    plugin = with_plugin(shipped_plugin, upstream_timeout_ms=TIMEOUT_MS)
    with edge(run_dir, "envoy-reset-mid-body", recorder, plugin) as gw:
        try:
            # Far above the callout's timeout: only a gateway that will never answer takes this long.
            response = requests.get(f"{gw.base}/Users?count=1", headers=AUTH, timeout=2)
        except requests.exceptions.ReadTimeout:
            response = None
        assert_vm_never_failed(gw)
        assert response is not None, "the client got no answer"
        body = assert_scim_error(response, 502)
        assert "closed the connection" in body["detail"]
        assert gw.counter("upstream.failures.reset") == 1
        assert_still_serving(gw)


def logged_request_ids(gateway, pattern: str) -> list[str]:
    """The `request_id=` of each filter log line matching `pattern`."""
    return [m.group(1) for line in filter_lines(gateway, 0) if re.search(pattern, line)
            for m in [re.search(r"request_id=(\S+)", line)] if m]


def test_a_change_whose_client_went_away_still_leaves_one_log_line(run_dir, recorder):
    """The client sends a create and goes away while the callout is in flight. The upstream still
    gets it and applies it (ABI v0.2.1 cannot cancel a callout); its answer finds no stream. The
    request must still leave exactly one log line, with Envoy's x-request-id (the one the
    upstream got, to tie the line to the upstream's own log), the token name, and why the client
    got nothing."""
    recorder.behaviour = "slow"
    recorder.slow_seconds = 1.0
    with edge(run_dir, "envoy-client-gone", recorder) as gw:
        mark = recorder.mark()
        body = json.dumps(new_user()).encode()
        host, port = gw.origin.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                f"POST {stack.SCIM_PREFIX}/Users HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {stack.CLIENT_TOKEN}\r\nContent-Type: application/scim+json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )
            deadline = time.monotonic() + 5
            while not recorder.since(mark):  # the callout reached the upstream: now go away
                assert time.monotonic() < deadline, "the create never reached the upstream"
                time.sleep(0.01)
        gone = r"POST Users token=local-dev status=- reason=client_gone$"
        await_line(gw, gone, 0)
        time.sleep(recorder.slow_seconds + 0.5)  # the upstream's answer arrives for a stream that is gone
        reached = recorder.since(mark)
        assert [r.method for r in reached] == ["POST"]
        ids = logged_request_ids(gw, r"POST Users")
        assert ids == [reached[0].headers["x-request-id"]], "one line, with the id the upstream got"
        assert_vm_never_failed(gw)


def test_the_log_line_carries_envoys_request_id_and_never_a_client_chosen_string(run_dir, recorder):
    with edge(run_dir, "envoy-request-id", recorder) as gw:
        mark = recorder.mark()
        hostile = "evil token=admin status=200 " + "x" * 200
        requests.get(f"{gw.base}/Users?count=1", headers={**AUTH, "x-request-id": hostile}, timeout=10)
        await_line(gw, r"GET Users token=local-dev status=200", 0)
        [sent] = recorder.since(mark)
        assert logged_request_ids(gw, r"GET Users") == [sent.headers["x-request-id"]]
        assert re.fullmatch(r"[0-9a-f-]{36}", sent.headers["x-request-id"]), "Envoy's own id, not the client's"
        assert matching_lines(gw, "evil") == 0


def test_a_gateway_with_wasm_logs_off_serves_requests(run_dir, recorder):
    """Envoy hands the filter its log level as spdlog's number, and `off` (6) is not one of the
    ABI's levels: read into the SDK's `LogLevel` enum it would be an invalid value. The filter
    reads it as an integer (src/proxy/raw.rs) and turns its own lines off."""
    with edge(run_dir, "envoy-wasm-logs-off", recorder, extra_args=("--component-log-level", "wasm:off")) as gw:
        assert_still_serving(gw)
        response = requests.get(f"{gw.base}/Users?count=1", headers={"Authorization": "Bearer wrong"}, timeout=10)
        assert_scim_error(response, 401)
        assert_vm_never_failed(gw)
        assert "scim-edge" not in gw.envoy.log_text(), "the filter logged with the wasm component off"


@pytest.mark.parametrize("status", [500, 503])
def test_an_upstream_5xx_in_scim_json_is_relayed_and_counted(fault_edge, status):
    before = fault_edge.counter("upstream.failures.status_5xx")
    logged = rf"GET Users token=local-dev status={status} upstream_status={status} upstream_ms=\d+$"
    logged_before = matching_lines(fault_edge, logged)
    fault_edge.recorder.behaviour, fault_edge.recorder.error_status = "error_json", status
    body = assert_scim_error(requests.get(f"{fault_edge.base}/Users?count=1", headers=AUTH), status)
    assert body["detail"] == "The user store failed", "the upstream's own error, as it sent it"
    assert fault_edge.counter("upstream.failures.status_5xx") == before + 1
    await_line(fault_edge, logged, logged_before)
    assert_still_serving(fault_edge)


def test_an_answer_just_under_the_response_limit_is_relayed(fault_edge):
    fault_edge.recorder.behaviour, fault_edge.recorder.big_bytes = "big", MAX_RESPONSE_BYTES - 64
    response = requests.get(f"{fault_edge.base}/Users?count=1", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["Resources"][0]["userName"] == "big@example.com"
    fault_edge.recorder.big_bytes = MAX_RESPONSE_BYTES * 4  # back to over the limit
    assert_still_serving(fault_edge)


def test_a_refused_connection_is_a_503_and_the_vm_survives(run_dir, recorder):
    with edge(run_dir, "envoy-refused", recorder, upstream_port=stack.free_port()) as gw:
        for _ in range(3):
            response = requests.get(f"{gw.base}/Users?count=1", headers=AUTH)
            assert_scim_error(response, 503)
            assert response.headers["retry-after"] == "10"
        assert gw.counter("upstream.failures.unreachable") == 3
        assert_vm_never_failed(gw)


# ---------------------------------------------------------------------------------------------------
# 4. Secrets


def distinctive(tag: str) -> str:
    return f"{tag}{uuid.uuid4().hex[:12]}"


def test_no_secret_and_no_value_reaches_logs_stats_or_error_bodies(run_dir, recorder):
    wrong_token = distinctive("WrongTok")
    sent = {
        "userName": distinctive("Un") + "@testuser.com",
        "displayName": distinctive("Dn"),
        "email": distinctive("Em") + "@testuser.com",
        "givenName": distinctive("Gn"),
        "familyName": distinctive("Fn"),
        "formatted": distinctive("Fo"),
        "externalId": distinctive("Ex"),
        "patchedDisplayName": distinctive("Pd"),
        "patchedGivenName": distinctive("Pg"),
        "patchedTitle": distinctive("Ti"),
        "filterExternalId": distinctive("Fx"),
        "badFilter": distinctive("Bf"),
        "systemAttribute": distinctive("Sa"),
        "typeError": distinctive("Te"),
        "failedLookup": distinctive("Fl"),
    }
    user = json.loads((FIXTURES / "entra" / "create-user.json").read_text())
    user.update(userName=sent["userName"], displayName=sent["displayName"], externalId=sent["externalId"])
    user["emails"][0]["value"] = sent["email"]
    user["name"] = {"formatted": sent["formatted"], "familyName": sent["familyName"], "givenName": sent["givenName"]}

    answers: list[requests.Response] = []

    def send(method: str, path: str, headers=SCIM_JSON, **kwargs) -> requests.Response:
        response = requests.request(method, f"{gw.base}{path}", headers=headers, timeout=10, **kwargs)
        answers.append(response)
        return response

    with edge(run_dir, "envoy-secrets", recorder, extra_args=("--component-log-level", "wasm:debug")) as gw:
        created = send("POST", "/Users", json=user)
        assert created.status_code == 201, created.text
        user_id = created.json()["id"]
        patch = {
            "schemas": [PATCH_SCHEMA],
            "Operations": [
                {"op": "Replace", "path": "displayName", "value": sent["patchedDisplayName"]},
                {"op": "replace", "value": {"name.givenName": sent["patchedGivenName"], "title": sent["patchedTitle"]}},
            ],
        }
        assert send("PATCH", f"/Users/{user_id}", json=patch).status_code in (200, 204)
        found = send("GET", f"/Users?{eq_filter('userName', sent['userName'])}", headers=AUTH)
        assert found.json()["totalResults"] == 1
        assert send("GET", f"/Users?{eq_filter('externalId', sent['filterExternalId'])}", headers=AUTH).ok
        assert_scim_error(send("GET", f"/Users/{user_id}", headers={"Authorization": f"Bearer {wrong_token}"}), 401)
        bad_filter = "filter=" + urllib.parse.quote(f'userName eq "{sent["badFilter"]}', safe="")
        assert_scim_error(send("GET", f"/Users?{bad_filter}", headers=AUTH), 400)
        system = {
            "schemas": [USER_SCHEMA],
            "userName": sent["userName"],
            "displayName": "X",
            f"{OMNI_ATTRIBUTES}:omni_user_timezone": sent["systemAttribute"],
        }
        assert assert_scim_error(send("POST", "/Users", json=system), 400)["scimType"] == "mutability"
        typed = {**new_user(), "active": sent["typeError"]}
        assert_scim_error(send("POST", "/Users", json=typed), 400)
        recorder.behaviour = "html"
        assert_scim_error(send("GET", f"/Users?{eq_filter('userName', sent['failedLookup'])}", headers=AUTH), 502)
        recorder.behaviour = "close"
        assert_scim_error(send("PATCH", f"/Users/{user_id}", json=patch), 502)
        recorder.behaviour = "forward"

        stats = "\n".join(
            requests.get(f"{gw.admin}{path}", timeout=5).text
            for path in ("/stats", "/stats?format=json", "/stats/prometheus")
        )
        lines = filter_lines(gw, len(answers))
        assert len(lines) == len(answers), lines
    log = gw.envoy.log_text()  # complete: Envoy has stopped

    # The scan covers the debug lines too: each stripped attribute is named there, by name.
    assert re.search(r"\[debug\]\[wasm\].*scim-edge ctx=\d+: stripped emails", log), "wasm:debug not in effect"
    assert "token=- status=401" in log and "token=local-dev" in log

    secrets = {
        "client token": stack.CLIENT_TOKEN,
        "wrong token": wrong_token,
        "upstream credential": stack.UPSTREAM_TOKEN,
        **sent,
    }
    for what, value in secrets.items():
        forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote(value)}
        for form in forms:
            assert form not in log, f"{what} in Envoy's log"
            assert form not in stats, f"{what} in Envoy's stats"
    for response in answers:
        for token in (stack.CLIENT_TOKEN, wrong_token, stack.UPSTREAM_TOKEN):
            assert token not in response.text and token not in str(response.headers)
        if response.status_code >= 400:
            for what, value in sent.items():
                assert value not in response.text, f"{what} in a {response.status_code} body: {response.text}"


# ---------------------------------------------------------------------------------------------------
# 5. Metrics


def prometheus_value(text: str, name: str) -> float | None:
    match = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def test_prometheus_exposes_the_counters_and_the_upstream_latency_histogram(gateway_factory, recorder):
    gw = gateway_factory("envoy-metrics", recorder.port, recorder)
    base = gw.base
    assert requests.get(f"{base}/Users?count=1", headers=AUTH).status_code == 200
    assert requests.get(f"{base}/Users?count=2", headers=AUTH).status_code == 200
    user = requests.post(f"{base}/Users", headers=SCIM_JSON, json=new_user()).json()
    assert requests.get(f"{base}/Users/{user['id']}", headers=AUTH).status_code == 200
    patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert requests.patch(f"{base}/Users/{user['id']}", headers=SCIM_JSON, json=patch).status_code in (200, 204)
    assert requests.delete(f"{base}/Users/{user['id']}", headers=AUTH).status_code == 204
    assert requests.get(f"{base}/Groups?count=1", headers=AUTH).status_code == 200
    assert_scim_error(requests.get(f"{base}/Users"), 401)
    assert_scim_error(requests.get(f"{base}/Accounts", headers=AUTH), 404)
    upstream_calls = 7

    # Envoy merges histograms into what it exposes at its stats flush (every 5 s by default).
    deadline = time.monotonic() + 8
    while True:
        text = requests.get(f"{gw.admin}/stats/prometheus", timeout=5).text
        count = prometheus_value(text, "scim_edge_upstream_latency_ms_count")
        if count == upstream_calls or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert count == upstream_calls, "the latency histogram did not record every upstream call"
    buckets = re.findall(r'^scim_edge_upstream_latency_ms_bucket\{le="([^"]+)"\} (\S+)$', text, re.M)
    assert len(buckets) > 5 and buckets[-1] == ("+Inf", str(upstream_calls))
    assert prometheus_value(text, "scim_edge_upstream_latency_ms_sum") is not None

    expected = {
        "requests": 9,
        "requests_Users_GET": 2,
        "requests_Users_POST": 1,
        "requests_Users_id_GET": 1,
        "requests_Users_id_PATCH": 1,
        "requests_Users_id_DELETE": 1,
        "requests_Groups_GET": 1,
        "responses_2xx": 7,
        "responses_4xx": 2,
        "auth_accepted_local_dev": 8,
        "auth_rejected_missing": 1,
    }
    exposed = {name: prometheus_value(text, f"scim_edge_{name}") for name in expected}
    assert exposed == {name: float(value) for name, value in expected.items()}
    # The same numbers in /stats, under their dotted names.
    assert gw.counter("requests.Users_id.PATCH") == 1
    assert gw.counter("responses.5xx") == 0
