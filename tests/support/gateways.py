"""Gateways for the end-to-end tests: a real Envoy with the built filter and the shipped
configuration (other ports), started and stopped by the tests, with what they read from it (stats,
the filter's log lines) and the checks that its wasm VM never failed."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import requests

import local_stack as stack
from support.upstream_recorder import UpstreamRecorder

ROOT = stack.ROOT
# Envoys started and not yet stopped, whose logs a failing test's report shows (conftest).
running_envoys: list[stack.Service] = []


@dataclass
class Gateway:
    base: str  # the SCIM base URL at the edge
    origin: str  # scheme://host:port of the edge
    admin: str
    recorder: UpstreamRecorder
    envoy: stack.Service

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.admin}/stats?filter=scim_edge&format=json", timeout=5) as r:
            return {s["name"]: s["value"] for s in json.load(r)["stats"] if "value" in s}

    def counter(self, name: str) -> int:
        return self.stats().get(f"wasmcustom.scim_edge.{name}", 0)


def start_gateway(
    run_dir: Path,
    name: str,
    upstream_port: int,
    recorder: UpstreamRecorder,
    plugin=None,
    *,
    wasm: Path = stack.WASM,
    extra_args: tuple = (),
    concurrency: int = 2,
) -> Gateway:
    """Envoy with the shipped configuration (other ports; optionally another plugin configuration,
    wasm build, Envoy arguments or worker count) in front of `upstream_port`."""
    listen, admin = stack.free_port(), stack.free_port()
    config = stack.render(listen_port=listen, admin_port=admin, upstream_port=upstream_port, plugin=plugin, wasm=wasm)
    envoy = stack.start_envoy(config, admin, run_dir, name=name, extra_args=extra_args, concurrency=concurrency)
    running_envoys.append(envoy)
    origin = f"http://127.0.0.1:{listen}"
    return Gateway(f"{origin}{stack.SCIM_PREFIX}", origin, f"http://127.0.0.1:{admin}", recorder, envoy)


def stop_gateway(gateway: Gateway) -> None:
    gateway.envoy.stop()
    running_envoys.remove(gateway.envoy)


def plugin_with_profile(profile: str) -> dict:
    """The shipped plugin configuration with `mapping` set to `{"profile": <profile>}` ("omni" or "rfc")."""
    import yaml

    plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    plugin["mapping"] = {"profile": profile}
    return plugin


# Envoy's own record of a wasm VM failing: a panic (a trap in the VM) kills the VM; with
# failure_policy FAIL_RELOAD Envoy counts the reload under wasm.<plugin stat prefix>.vm_reload*
# and creates a new VM (wasm.envoy.wasm.runtime.v8.created goes up). Measured with a filter built
# to panic on demand: vm_reload_backoff 0 -> 2, vm_reload_success 0 -> 1, created 5 -> 6, and the
# log gets "[critical][wasm] ... panicked at" and "Function: proxy_on_... failed".
VM_FAILURE_COUNTERS = (
    "wasm.scim_edge.vm_reload",
    "wasm.scim_edge.vm_reload_backoff",
    "wasm.scim_edge.vm_reload_failure",
    "wasm.scim_edge.vm_reload_success",
)
VMS_CREATED = "wasm.envoy.wasm.runtime.v8.created"


def wasm_stats(gateway) -> dict[str, int]:
    response = requests.get(f"{gateway.admin}/stats", params={"filter": r"^wasm\.", "format": "json"}, timeout=5)
    return {s["name"]: s["value"] for s in response.json()["stats"] if "value" in s}


@contextlib.contextmanager
def edge(
    run_dir,
    name: str,
    recorder: UpstreamRecorder,
    plugin: dict | None = None,
    extra_args: tuple = (),
    upstream_port: int | None = None,
):
    """A gateway like conftest's (upstream: the recorder, unless `upstream_port`), plus Envoy
    command-line arguments; it knows how many wasm VMs Envoy had created once it was ready (the
    baseline for `assert_vm_never_failed`)."""
    upstream_port = recorder.port if upstream_port is None else upstream_port
    gateway = start_gateway(run_dir, name, upstream_port, recorder, plugin, extra_args=extra_args)
    gateway.vms_created = wasm_stats(gateway)[VMS_CREATED]
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


def assert_vm_never_failed(gateway) -> None:
    stats = wasm_stats(gateway)
    for name in VM_FAILURE_COUNTERS:
        assert stats[name] == 0, f"{name} = {stats[name]}: the wasm VM failed and was reloaded"
    assert stats[VMS_CREATED] == gateway.vms_created, "Envoy created a new wasm VM: the old one failed"
    log = gateway.envoy.log_text().splitlines()
    panics = [f"{line} {following}" for line, following in zip(log, log[1:] + [""]) if "panicked at" in line]
    assert panics == [], "the filter panicked, which kills its VM"
    assert not [line for line in log if re.search(r"Function: \S+ failed", line)], "a wasm callback trapped"


def without_pacing(plugin: dict) -> dict:
    """The plugin with its budget refusing at once when spent (`max_wait_ms` 0), as before pacing."""
    return with_plugin(plugin, rate_limit={**plugin["rate_limit"], "max_wait_ms": 0})


def with_plugin(base: dict, **changes) -> dict:
    plugin = copy.deepcopy(base)
    for key, value in changes.items():
        if key.startswith("upstream_"):
            plugin["upstream"][key.removeprefix("upstream_")] = value
        else:
            plugin[key] = value
    return plugin


def filter_lines(gateway, count: int, timeout: float = 5.0) -> list[str]:
    """The filter's per-request log lines, once there are `count` of them (Envoy writes the line
    just after the answer, so it may trail the client by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in gateway.envoy.log_text().splitlines() if re.search(r"scim-edge ctx=\d+ ", line)]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def matching_lines(gateway, pattern: str) -> int:
    return sum(1 for line in filter_lines(gateway, 0) if re.search(pattern, line))


def await_line(gateway, pattern: str, seen_before: int, timeout: float = 5.0) -> None:
    """Waits for a new filter log line matching `pattern` (there were `seen_before`)."""
    deadline = time.monotonic() + timeout
    while matching_lines(gateway, pattern) <= seen_before:
        assert time.monotonic() < deadline, f"no new log line matching {pattern!r}"
        time.sleep(0.02)


def admin_stat(admin: str, name: str) -> int:
    """One counter or gauge from an Envoy admin endpoint (`http://127.0.0.1:<port>`), 0 when absent."""
    with urllib.request.urlopen(f"{admin}/stats?format=json&filter=^{name}$", timeout=5) as r:
        return sum(s["value"] for s in json.load(r)["stats"] if s.get("name") == name)
