"""Faults while traffic runs, end to end through the real Envoy (`--concurrency 2`):

1. Load under upstream faults: 8 client threads x 25 requests (GET, POST, PATCH, each with a
   unique marker) while the upstream goes down, gets slow, slower than the callout timeout,
   flaps, answers HTML, 5xx in SCIM JSON, 5xx in plain text, and recovers. Every request gets
   exactly one well-formed answer; no marker reaches the upstream twice (Envoy's async client does
   not retry callouts: `cluster.scim_upstream.upstream_rq_retry` stays 0); the VM never fails.
2. Hot reload of the token set, by ECDS: the wasm filter's configuration comes from a
   filesystem-watched extension config (`config_discovery` with a `path_config_source`), the
   process keeps running and so do its connections. Traffic with the old and the new token runs
   across the switch: every request is answered (200 or 401), the old token works until the
   reload and is refused after it, the new one the other way round, and nothing a 401 answered
   reaches the upstream. A broken new configuration is refused and the current one stays.
3. A VM restart (FAIL_RELOAD) mid-traffic: a test build (`--features fault-injection`, built here
   into target/fault-injection) panics on `x-scim-edge-fault: panic`. Envoy answers that request
   with an empty 503, counts the reload and creates a new VM; later requests are served; nothing
   was sent upstream twice. The shipped build does not react to the header at all.

After every scenario a normal request works.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import hashlib
import http.client
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml

from support import gateways
import local_stack as stack
from support.scim import AUTH, ERROR_SCHEMA, PATCH_SCHEMA, SCIM_JSON, USER_SCHEMA, new_user
from support.gateways import VM_FAILURE_COUNTERS, VMS_CREATED, assert_vm_never_failed, edge, wasm_stats, with_plugin
from support.upstream_recorder import UpstreamRecorder

ROOT = gateways.ROOT
FAULT_TARGET_DIR = ROOT / "target" / "fault-injection"
FAULT_WASM = FAULT_TARGET_DIR / stack.FILTER_TARGET / "release" / "scim_edge.wasm"
FAULT_HEADER = "x-scim-edge-fault"
MARKER = re.compile(r"m[0-9a-f]{16}")
P = stack.SCIM_PREFIX


# ---------------------------------------------------------------------------------------------------
# Helpers


@dataclass
class Result:
    kind: str  # what was sent: GET, POST, PATCH, or a token label
    marker: str
    phase: str
    status: int | None  # None: no answer
    problem: str | None  # why the answer is not well-formed (or the exception)
    sent: float = 0.0
    answered: float = 0.0


def well_formed(status: int, content_type: str | None, body: bytes) -> str | None:
    """None when the answer is a well-formed SCIM answer: 204 with no body, else SCIM JSON whose
    error `status` is the HTTP status."""
    if status == 204:
        return None if body == b"" else "204 with a body"
    if content_type != "application/scim+json":
        return f"{status} with content type {content_type!r}: {body[:120]!r}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{status} with a body that is not JSON: {body[:120]!r}"
    if not isinstance(document, dict) or not document.get("schemas"):
        return f"{status} with no schemas: {body[:120]!r}"
    if status >= 400 and (document["schemas"] != [ERROR_SCHEMA] or document.get("status") != str(status)):
        return f"{status} with an error body that does not say so: {body[:200]!r}"
    return None


def call(origin: str, method: str, path: str, headers: dict, body: bytes | None = None, timeout: float = 10.0):
    """One request on its own connection: (status, content type, body, headers), or raises."""
    host, port = origin.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, response.getheader("content-type"), payload, {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def marker() -> str:
    return "m" + uuid.uuid4().hex[:16]


def markers_upstream(recorder: UpstreamRecorder, mark: int) -> collections.Counter:
    seen: collections.Counter = collections.Counter()
    for request in recorder.since(mark):
        text = urllib.parse.unquote(request.path) + request.body.decode("utf-8", "replace")
        seen.update(set(MARKER.findall(text)))
    return seen


def cluster_stat(gateway, name: str) -> int:
    response = requests.get(f"{gateway.admin}/stats", params={"filter": f"^cluster\\.scim_upstream\\.{name}$", "format": "json"})
    return next((s["value"] for s in response.json()["stats"] if s.get("name") == f"cluster.scim_upstream.{name}"), 0)


def assert_normal_request_works(gateway) -> None:
    gateway.recorder.behaviour = "forward"
    mark = gateway.recorder.mark()
    status, content_type, body, _ = call(gateway.origin, "GET", f"{P}/Users?count=1", AUTH)
    assert status == 200, body
    assert json.loads(body)["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert [(r.method, r.path) for r in gateway.recorder.since(mark)] == [("GET", "/v2/Users?count=1")]


@pytest.fixture
def recorder(scim_upstream):
    recorder = UpstreamRecorder(scim_upstream).start()
    yield recorder
    recorder.stop()


# ---------------------------------------------------------------------------------------------------
# 1. Load under upstream faults

TIMEOUT_MS = 1000
# (name, recorder behaviour, settings, the statuses the phase must show at least once)
PHASES = [
    ("down", "down", {}, {503}),
    ("slow", "slow", {"slow_seconds": 0.3}, {200, 201}),
    ("slower than the timeout", "slow", {"slow_seconds": 1.4}, {504}),
    ("flapping", "flap", {}, {502}),
    ("html", "html", {}, {502}),
    ("5xx json", "error_json", {"error_status": 500}, {500}),
    ("5xx text", "error_text", {"error_status": 503}, {502}),
    ("ok", "forward", {}, {200, 201}),
]
THREADS, PER_THREAD = 8, 25


def test_load_under_upstream_faults_every_request_gets_one_answer_and_nothing_goes_twice(run_dir, recorder, shipped_plugin):
    plugin = with_plugin(shipped_plugin, upstream_timeout_ms=TIMEOUT_MS)
    with edge(run_dir, "envoy-load-faults", recorder, plugin) as gw:
        seed = requests.post(f"{gw.base}/Users", headers=SCIM_JSON, json=new_user())
        assert seed.status_code == 201, seed.text
        seed_path = f"{P}/Users/{seed.json()['id']}"
        mark = recorder.mark()
        retries_before = cluster_stat(gw, "upstream_rq_retry")

        total = THREADS * PER_THREAD
        per_phase = -(-total // len(PHASES))
        results: list[Result] = []
        lock = threading.Lock()
        phase_now = [PHASES[0][0]]
        done = threading.Condition(lock)

        def request(i: int) -> Result:
            tag = marker()
            kind = ("GET", "POST", "PATCH")[i % 3]
            if kind == "GET":
                path, body = f"{P}/Users?filter=" + urllib.parse.quote(f'userName eq "{tag}@example.com"', safe=""), None
            elif kind == "POST":
                path, body = f"{P}/Users", json.dumps(new_user(f"{tag}@example.com")).encode()
            else:
                operation = {"op": "replace", "path": "displayName", "value": tag}
                path, body = seed_path, json.dumps({"schemas": [PATCH_SCHEMA], "Operations": [operation]}).encode()
            headers = SCIM_JSON if body is not None else AUTH
            phase, sent = phase_now[0], time.monotonic()
            try:
                status, content_type, payload, _ = call(gw.origin, kind, path, headers, body, timeout=10)
                return Result(kind, tag, phase, status, well_formed(status, content_type, payload), sent, time.monotonic())
            except Exception as error:  # no answer at all
                return Result(kind, tag, phase, None, repr(error), sent, time.monotonic())

        def client(n: int):
            for i in range(PER_THREAD):
                result = request(n * PER_THREAD + i)
                with done:
                    results.append(result)
                    done.notify_all()

        def controller():
            for index, (name, behaviour, settings, _) in enumerate(PHASES):
                for key, value in settings.items():
                    setattr(recorder, key, value)
                if behaviour == "down":
                    recorder.down()
                else:
                    if index and PHASES[index - 1][1] == "down":
                        recorder.up()
                    recorder.behaviour = behaviour
                phase_now[0] = name
                with done:
                    done.wait_for(lambda: len(results) >= min(total, (index + 1) * per_phase), timeout=30)

        started = time.monotonic()
        threads = [threading.Thread(target=controller)] + [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - started

        # Exactly one answer for each request, and each answer well-formed.
        assert len(results) == total
        assert len({r.marker for r in results}) == total
        unanswered = [r for r in results if r.status is None]
        assert unanswered == [], f"requests without an answer: {unanswered[:5]}"
        malformed = [r for r in results if r.problem]
        assert malformed == [], f"answers that are not well-formed SCIM: {malformed[:5]}"
        by_phase = collections.defaultdict(collections.Counter)
        for r in results:
            by_phase[r.phase][r.status] += 1
        for name, _, _, expected in PHASES:
            assert expected & set(by_phase[name]), f"phase {name!r}: {dict(by_phase[name])}, expected one of {expected}"

        # Nothing went upstream twice, and Envoy retried nothing.
        seen = markers_upstream(recorder, mark)
        twice = {tag: count for tag, count in seen.items() if count > 1}
        assert twice == {}, f"sent upstream more than once: {twice}"
        assert set(seen) <= {r.marker for r in results}
        served = [r for r in results if 200 <= r.status < 300]
        assert all(seen[r.marker] == 1 for r in served), "a request answered 2xx never reached the upstream"
        assert cluster_stat(gw, "upstream_rq_retry") == retries_before == 0

        report = {name: dict(sorted(by_phase[name].items())) for name, *_ in PHASES}
        print(f"\n{total} requests in {elapsed:.1f}s, {sum(seen.values())} reached the upstream, by phase: {report}")
        assert_normal_request_works(gw)
        assert_vm_never_failed(gw)


# ---------------------------------------------------------------------------------------------------
# 2. Hot reload of the token set (ECDS from a watched file)

NEW_TOKEN = "rotated-" + uuid.uuid4().hex


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class EcdsEdge:
    """An Envoy whose scim-edge filter configuration is an ECDS resource in a file Envoy watches;
    `publish()` replaces the file atomically (rename), which is how Envoy's path config source
    expects an update."""

    def __init__(self, run_dir: Path, recorder: UpstreamRecorder, name: str):
        self.listen, self.admin_port = stack.free_port(), stack.free_port()
        config = stack.render(listen_port=self.listen, admin_port=self.admin_port, upstream_port=recorder.port)
        config["node"] = {"id": name, "cluster": "scim-edge"}  # xDS (ECDS included) needs a node identity
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        index = next(i for i, f in enumerate(hcm["http_filters"]) if f["name"] == "envoy.filters.http.wasm")
        self.wasm = copy.deepcopy(hcm["http_filters"][index]["typed_config"])
        self.dir = run_dir / f"{name}-ecds"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "scim_edge_filter.yaml"
        self.version = 0
        self.publish(json.loads(self.wasm["config"]["configuration"]["value"]))
        hcm["http_filters"][index] = {
            "name": "scim_edge",
            "config_discovery": {
                "config_source": {"resource_api_version": "V3", "path_config_source": {"path": str(self.path)}},
                "type_urls": ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"],
            },
        }
        self.envoy = stack.start_envoy(config, self.admin_port, run_dir, name=name)
        gateways.running_envoys.append(self.envoy)
        self.origin = f"http://127.0.0.1:{self.listen}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.base = self.origin + P
        self.recorder = recorder
        self.vms_created = wasm_stats(self)[VMS_CREATED]

    def publish(self, plugin: dict) -> None:
        self.version += 1
        wasm = copy.deepcopy(self.wasm)
        wasm["config"]["configuration"]["value"] = json.dumps(plugin)
        document = {
            "version_info": str(self.version),
            "resources": [
                {
                    "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
                    "name": "scim_edge",
                    "typed_config": wasm,
                }
            ],
        }
        staged = self.dir / f".staged-{self.version}.yaml"
        staged.write_text(yaml.safe_dump(document, sort_keys=False))
        os.replace(staged, self.path)

    def ecds(self, what: str) -> int:
        response = requests.get(f"{self.admin}/stats", params={"filter": "extension_config_discovery", "format": "json"})
        return sum(s["value"] for s in response.json()["stats"] if s.get("name", "").endswith(f".{what}"))

    def stop(self) -> None:
        self.envoy.stop()
        gateways.running_envoys.remove(self.envoy)


def test_a_new_token_set_is_loaded_without_a_restart_and_no_request_is_dropped(run_dir, recorder, shipped_plugin):
    gw = EcdsEdge(run_dir, recorder, "envoy-ecds")
    try:
        old = {"Authorization": f"Bearer {stack.CLIENT_TOKEN}"}
        new = {"Authorization": f"Bearer {NEW_TOKEN}"}
        assert call(gw.origin, "GET", f"{P}/Users?count=1", old)[0] == 200
        assert call(gw.origin, "GET", f"{P}/Users?count=1", new)[0] == 401
        reloads = gw.ecds("config_reload")
        mark = recorder.mark()
        results: list[Result] = []
        lock = threading.Lock()
        stop = threading.Event()
        switch: dict[str, float] = {}

        def client(n: int):
            i = 0
            while not stop.is_set():
                label, headers = ("old", old) if (i + n) % 2 else ("new", new)
                tag = marker()
                path = f"{P}/Users?filter=" + urllib.parse.quote(f'userName eq "{tag}"', safe="")
                sent = time.monotonic()
                try:
                    status, content_type, body, _ = call(gw.origin, "GET", path, headers)
                    result = Result(label, tag, "", status, well_formed(status, content_type, body), sent, time.monotonic())
                except Exception as error:
                    result = Result(label, tag, "", None, repr(error), sent, time.monotonic())
                with lock:
                    results.append(result)
                i += 1

        kept: list[tuple[float, str, int]] = []
        sockets: set[int] = set()

        def keep_alive_client():
            # One connection opened before the reload and used across it: ECDS changes the filter
            # for every new stream, so the connection is neither closed nor drained.
            host, port = gw.origin.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            i = 0
            while not stop.is_set():
                label, headers = ("old", old) if i % 2 else ("new", new)
                connection.request("GET", f"{P}/Users?count=1", headers=headers)
                sockets.add(id(connection.sock))
                response = connection.getresponse()
                response.read()
                kept.append((time.monotonic(), label, response.status))
                i += 1
            connection.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        threads.append(threading.Thread(target=keep_alive_client))
        for thread in threads:
            thread.start()
        time.sleep(0.6)
        rotated = {**shipped_plugin, "tokens": [{"name": "rotated", "sha256": sha256(NEW_TOKEN)}]}
        switch["published"] = time.monotonic()
        gw.publish(rotated)
        deadline = time.monotonic() + 10
        while gw.ecds("config_reload") == reloads:
            assert time.monotonic() < deadline, "Envoy did not load the new filter configuration"
            time.sleep(0.01)
        switch["reloaded"] = time.monotonic()
        time.sleep(0.8)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

        assert [r for r in results if r.status is None] == [], "a request got no answer across the reload"
        assert [r for r in results if r.problem] == []
        assert {r.status for r in results} <= {200, 401}
        before = [r for r in results if r.answered < switch["published"]]
        after = [r for r in results if r.sent > switch["reloaded"] + 0.2]  # every worker has it by then
        assert before and after
        assert {(r.kind, r.status) for r in before} == {("old", 200), ("new", 401)}
        assert {(r.kind, r.status) for r in after} == {("old", 401), ("new", 200)}
        during = [r for r in results if r not in before and r not in after]

        assert len(sockets) == 1, "the keep-alive connection was closed across the reload"
        assert {(label, status) for t, label, status in kept if t < switch["published"]} == {("old", 200), ("new", 401)}
        assert {(label, status) for t, label, status in kept if t > switch["reloaded"] + 0.2} == {("old", 401), ("new", 200)}

        seen = markers_upstream(recorder, mark)
        assert all(seen[r.marker] == 0 for r in results if r.status == 401), "a refused request reached the upstream"
        assert all(seen[r.marker] == 1 for r in results if r.status == 200)
        print(
            f"\n{len(results)} requests across the reload ({len(before)} before, {len(during)} during the switch, "
            f"{len(after)} after; {len(kept)} on one keep-alive connection), reload took {1000 * (switch['reloaded'] - switch['published']):.0f} ms"
        )

        # The old token is refused as any unknown token is; the new one is served.
        status, _, body, headers = call(gw.origin, "GET", f"{P}/Users?count=1", old)
        assert status == 401 and headers["www-authenticate"] == 'Bearer realm="scim-edge", error="invalid_token"'
        assert call(gw.origin, "GET", f"{P}/Users?count=1", new)[0] == 200

        # A broken configuration is refused by on_configure: the rotated set stays in force.
        failures = gw.ecds("config_fail")
        gw.publish({**rotated, "tokens": [{"name": "broken", "sha256": "not-a-digest"}]})
        deadline = time.monotonic() + 10
        while gw.ecds("config_fail") == failures:
            assert time.monotonic() < deadline, "Envoy did not report the broken configuration"
            time.sleep(0.01)
        assert call(gw.origin, "GET", f"{P}/Users?count=1", new)[0] == 200
        assert call(gw.origin, "GET", f"{P}/Users?count=1", old)[0] == 401

        stats = wasm_stats(gw)
        assert all(stats[name] == 0 for name in VM_FAILURE_COUNTERS), stats
        assert "panicked at" not in gw.envoy.log_text()
    finally:
        gw.stop()


# ---------------------------------------------------------------------------------------------------
# 3. A VM that dies mid-traffic (FAIL_RELOAD)


@pytest.fixture(scope="module")
def fault_wasm() -> Path:
    """The filter built with `--features fault-injection`, in its own target directory (the
    shipped build is never touched)."""
    command = [
        "cargo", "build", "--release", "--target", stack.FILTER_TARGET,
        "--features", "fault-injection", "--target-dir", str(FAULT_TARGET_DIR),
    ]
    built = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, f"{' '.join(command)} failed:\n{built.stderr[-4000:]}"
    assert FAULT_WASM.exists()
    return FAULT_WASM


@contextlib.contextmanager
def edge_with_wasm(run_dir, name: str, recorder: UpstreamRecorder, wasm: Path, concurrency: int = 2):
    gateway = gateways.start_gateway(run_dir, name, recorder.port, recorder, wasm=wasm, concurrency=concurrency)
    gateway.vms_created = wasm_stats(gateway)[VMS_CREATED]
    try:
        yield gateway
    finally:
        gateways.stop_gateway(gateway)


def test_the_shipped_build_has_no_fault_injection(run_dir, recorder, fault_wasm):
    assert FAULT_HEADER.encode() in fault_wasm.read_bytes(), "the test build should carry the fault hook"
    assert FAULT_HEADER.encode() not in stack.WASM.read_bytes(), "the shipped wasm carries the fault hook"
    with edge(run_dir, "envoy-shipped-no-fault", recorder) as gw:
        status, _, body, _ = call(gw.origin, "GET", f"{P}/Users?count=1", {**AUTH, FAULT_HEADER: "panic"})
        assert status == 200, body
        assert_normal_request_works(gw)
        assert_vm_never_failed(gw)


def test_a_vm_that_panics_mid_traffic_is_replaced_and_nothing_goes_twice(run_dir, recorder, fault_wasm):
    recorder.behaviour, recorder.slow_seconds = "slow", 0.15
    with edge_with_wasm(run_dir, "envoy-vm-panic", recorder, fault_wasm) as gw:
        assert_vm_never_failed(gw)
        recorder.behaviour = "slow"
        mark = recorder.mark()
        results: list[Result] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client(n: int):
            while not stop.is_set():
                tag = marker()
                path = f"{P}/Users?filter=" + urllib.parse.quote(f'userName eq "{tag}"', safe="")
                sent = time.monotonic()
                try:
                    status, content_type, body, _ = call(gw.origin, "GET", path, AUTH, timeout=3)
                    problem = well_formed(status, content_type, body)
                    result = Result("GET", tag, "", status, problem, sent, time.monotonic())
                except Exception as error:
                    result = Result("GET", tag, "", None, repr(error), sent, time.monotonic())
                with lock:
                    results.append(result)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        panic_at = time.monotonic()
        status, content_type, body, headers = call(
            gw.origin, "GET", f"{P}/Users?count=1", {**AUTH, FAULT_HEADER: "panic"}, timeout=5
        )
        # What Envoy answers the request whose callback trapped: an empty 503 of its own.
        assert (status, body, headers.get("content-length")) == (503, b"", "0")
        deadline = time.monotonic() + 10
        while wasm_stats(gw)["wasm.scim_edge.vm_reload_success"] == 0:
            assert time.monotonic() < deadline, "FAIL_RELOAD did not bring a new VM"
            time.sleep(0.02)
        reloaded_at = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

        stats = wasm_stats(gw)
        assert stats["wasm.scim_edge.vm_reload_success"] >= 1
        assert stats["wasm.scim_edge.vm_reload_failure"] == 0
        assert stats[VMS_CREATED] > gw.vms_created, "no new VM was created"
        assert "panicked at" in gw.envoy.log_text()

        # Before the panic and after the reload, every request is served.
        before = [r for r in results if r.answered < panic_at]
        after = [r for r in results if r.sent > reloaded_at + 0.1]
        assert before and after
        assert {r.status for r in before} == {200}
        assert {r.status for r in after} == {200}, collections.Counter(r.status for r in after)
        # Around the panic: Envoy's empty 503 while FAIL_RELOAD backs off, else served; except the
        # requests that were waiting for their callout on the VM that died: those get no answer
        # (the xfail below), and only those.
        around = [r for r in results if r not in before and r not in after]
        stranded = [r for r in around if r.status is None]
        assert all(r.sent < panic_at for r in stranded), "a request sent after the panic got no answer"
        answered = [r for r in around if r.status is not None]
        assert all(r.status == 200 or (r.status == 503 and "content type None" in (r.problem or "")) for r in answered), [
            (r.status, r.problem) for r in answered
        ]

        seen = markers_upstream(recorder, mark)
        assert {tag: n for tag, n in seen.items() if n > 1} == {}, "a request went upstream twice"
        assert all(seen[r.marker] == 1 for r in results if r.status == 200)
        assert all(seen[r.marker] == 0 for r in results if r.status == 503)
        counts = collections.Counter(r.status for r in results)
        print(
            f"\nVM panic mid-traffic: {len(results)} requests, {dict(counts)}, {len(around)} around the reload, "
            f"{len(stranded)} stranded, reload {1000 * (reloaded_at - panic_at):.0f} ms after the panic"
        )
        assert_normal_request_works(gw)


@pytest.mark.xfail(
    strict=True,
    reason="BUG (Envoy + FAIL_RELOAD): a request waiting for its callout on the VM that panicked "
    "gets no answer until Envoy's stream_idle_timeout (30 s in the shipped config)",
)
def test_a_request_in_flight_when_the_vm_dies_gets_an_answer(run_dir, recorder, fault_wasm):
    recorder.behaviour, recorder.slow_seconds = "slow", 1.0
    # One worker, so the VM that panics is the one the waiting requests are on.
    with edge_with_wasm(run_dir, "envoy-vm-panic-in-flight", recorder, fault_wasm, concurrency=1) as gw:
        mark = recorder.mark()
        answers: list = []

        def in_flight():
            try:
                answers.append(call(gw.origin, "GET", f"{P}/Users?count=1", AUTH, timeout=3)[0])
            except Exception as error:
                answers.append(repr(error))

        # Requests wait on the slow upstream, then the worker's VM panics.
        waiting = [threading.Thread(target=in_flight) for _ in range(4)]
        for thread in waiting:
            thread.start()
        deadline = time.monotonic() + 5
        while len(recorder.since(mark)) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert call(gw.origin, "GET", f"{P}/Users?count=1", {**AUTH, FAULT_HEADER: "panic"}, timeout=5)[0] == 503
        for thread in waiting:
            thread.join(timeout=10)
        assert all(isinstance(a, int) for a in answers), answers
