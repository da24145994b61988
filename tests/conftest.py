"""End-to-end fixtures: a real scim2-server, a recording hop in front of it, and real Envoys
loading the built scim-edge wasm with the shipped configuration (ports changed)."""

from __future__ import annotations

import json
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
sys.path.insert(0, str(ROOT / "tests"))

import local_stack as stack  # noqa: E402
from upstream_recorder import UpstreamRecorder  # noqa: E402

_running_envoys: list[stack.Service] = []


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


def pytest_sessionstart(session):
    if not stack.WASM.exists():
        pytest.exit(f"{stack.WASM} is missing: run the tests with 'make test' (it builds the filter)", returncode=2)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for envoy in _running_envoys:
            report.sections.append((f"{envoy.name} log (tail)", "\n".join(envoy.log_text().splitlines()[-60:])))
    return report


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def scim_upstream(run_dir):
    """scim2-server with Omni-shaped (dashed UUID) ids, so what the shipped (omni) gateway forwards
    can be held to Omni's OpenAPI document."""
    import omni_upstream

    port = stack.free_port()
    service = omni_upstream.start(port, run_dir, name="scim2-server")
    yield port
    service.stop()


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
    _running_envoys.append(envoy)
    origin = f"http://127.0.0.1:{listen}"
    return Gateway(f"{origin}{stack.SCIM_PREFIX}", origin, f"http://127.0.0.1:{admin}", recorder, envoy)


def stop_gateway(gateway: Gateway) -> None:
    gateway.envoy.stop()
    _running_envoys.remove(gateway.envoy)


@pytest.fixture(scope="session")
def gateway(scim_upstream, run_dir):
    """The shipped configuration, unchanged but for ports, in front of scim2-server."""
    recorder = UpstreamRecorder(scim_upstream).start()
    gw = start_gateway(run_dir, "envoy", recorder.port, recorder)
    yield gw
    stop_gateway(gw)
    recorder.stop()


@pytest.fixture
def gateway_factory(run_dir):
    """Starts extra gateways for one test (other upstream, other plugin settings)."""
    started: list[Gateway] = []

    def make(name: str, upstream_port: int, recorder: UpstreamRecorder, plugin=None) -> Gateway:
        gw = start_gateway(run_dir, name, upstream_port, recorder, plugin)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def module_recorder(scim_upstream):
    """A recording hop in front of scim2-server for the Envoys one test module starts itself."""
    recorder = UpstreamRecorder(scim_upstream).start()
    yield recorder
    recorder.stop()


def admin_stat(admin: str, name: str) -> int:
    """One counter or gauge from an Envoy admin endpoint (`http://127.0.0.1:<port>`), 0 when absent."""
    with urllib.request.urlopen(f"{admin}/stats?format=json&filter=^{name}$", timeout=5) as r:
        return sum(s["value"] for s in json.load(r)["stats"] if s.get("name") == name)


@pytest.fixture
def shipped_plugin() -> dict:
    import yaml

    return stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))


def plugin_with_profile(profile: str) -> dict:
    """The shipped plugin configuration with `mapping` set to `{"profile": <profile>}` ("omni" or "rfc")."""
    import yaml

    plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    plugin["mapping"] = {"profile": profile}
    return plugin
