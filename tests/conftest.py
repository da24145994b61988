"""End-to-end fixtures: a real scim2-server, a recording hop in front of it, and real Envoys
loading the built scim-edge wasm with the shipped configuration (ports changed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))
sys.path.insert(0, str(ROOT / "tests"))

import local_stack as stack  # noqa: E402
from support import gateways  # noqa: E402
from support.gateways import Gateway, start_gateway, stop_gateway  # noqa: E402
from support.upstream_recorder import UpstreamRecorder  # noqa: E402


def pytest_sessionstart(session):
    if not stack.WASM.exists():
        pytest.exit(f"{stack.WASM} is missing: run the tests with 'make test' (it builds the filter)", returncode=2)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for envoy in gateways.running_envoys:
            report.sections.append((f"{envoy.name} log (tail)", "\n".join(envoy.log_text().splitlines()[-60:])))
    return report


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def scim_upstream(run_dir):
    """scim2-server with Omni-shaped (dashed UUID) ids, so what the shipped (omni) gateway forwards
    can be held to Omni's OpenAPI document."""
    from support import omni_upstream

    port = stack.free_port()
    service = omni_upstream.start(port, run_dir, name="scim2-server")
    yield port
    service.stop()


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


@pytest.fixture
def shipped_plugin() -> dict:
    import yaml

    return stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
