"""The filter loaded the way control planes load it: Envoy fetches the module itself over
`vm_config.code.remote` (HTTP, sha256 pinned, retry policy), in the static configuration and
delivered over ECDS. A module that does not match its sha256 never runs, and nothing reaches the
upstream: at start the client gets an empty 503 on every path. Measured as well (and held here so
a change in Envoy shows): an ECDS *update* naming remote code Envoy has not loaded yet is never
fetched, and the new filter lets requests by; the shipped route table is what keeps them from
the upstream (docs/deploy.md, "Remote loading")."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from support import gateways
import local_stack as stack
from support.upstream_recorder import UpstreamRecorder

P = stack.SCIM_PREFIX
AUTH = {"Authorization": f"Bearer {stack.CLIENT_TOKEN}"}
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
RETRIES = 3


class ModuleServer:
    """Serves the built filter at /scim_edge.wasm; the first `failures` fetches get a 503."""

    def __init__(self, failures: int = 0):
        self.module = stack.WASM.read_bytes()
        self.sha256 = hashlib.sha256(self.module).hexdigest()
        self.failures = failures
        self.fetches: list[int] = []  # the status each fetch got
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                status = 503 if len(server.fetches) < server.failures else 200
                server.fetches.append(status)
                body = self.module_bytes() if status == 200 else b""
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def module_bytes(self):
                return server.module if self.path == "/scim_edge.wasm" else b"not a module"

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.http.server_address[1]
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stop(self):
        self.http.shutdown()
        self.http.server_close()

    def cluster(self) -> dict:
        address = {"socket_address": {"address": "127.0.0.1", "port_value": self.port}}
        return {
            "name": "wasm_modules",
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "wasm_modules", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}]},
        }

    def code(self, sha256: str | None = None, path: str = "/scim_edge.wasm") -> dict:
        """`vm_config.code` as docs/deploy.md shows it."""
        return {
            "remote": {
                "http_uri": {"uri": f"http://127.0.0.1:{self.port}{path}", "cluster": "wasm_modules", "timeout": "5s"},
                "sha256": sha256 or self.sha256,
                "retry_policy": {"num_retries": RETRIES, "retry_back_off": {"base_interval": "0.1s", "max_interval": "0.5s"}},
            }
        }


class RemoteEdge:
    """The shipped envoy.yaml with the wasm filter's code fetched from `modules`; with `ecds`, the
    filter's whole configuration is an ECDS resource in a file Envoy watches."""

    def __init__(self, run_dir: Path, recorder: UpstreamRecorder, modules: ModuleServer, name: str, code: dict, ecds: bool = False):
        self.listen, self.admin_port = stack.free_port(), stack.free_port()
        config = stack.render(listen_port=self.listen, admin_port=self.admin_port, upstream_port=recorder.port)
        config["static_resources"]["clusters"].append(modules.cluster())
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        index = next(i for i, f in enumerate(hcm["http_filters"]) if f["name"] == "envoy.filters.http.wasm")
        self.wasm = copy.deepcopy(hcm["http_filters"][index]["typed_config"])
        self.wasm["config"]["vm_config"]["code"] = code
        if ecds:
            config["node"] = {"id": name, "cluster": "scim-edge"}
            self.dir = run_dir / f"{name}-ecds"
            self.dir.mkdir(parents=True, exist_ok=True)
            self.path = self.dir / "scim_edge_filter.yaml"
            self.version = 0
            self.publish(code)
            hcm["http_filters"][index] = {
                "name": "scim_edge",
                "config_discovery": {
                    "config_source": {"resource_api_version": "V3", "path_config_source": {"path": str(self.path)}},
                    "type_urls": [WASM_TYPE],
                },
            }
        else:
            hcm["http_filters"][index]["typed_config"] = self.wasm
        self.envoy = stack.start_envoy(config, self.admin_port, run_dir, name=name)
        gateways.running_envoys.append(self.envoy)
        self.origin = f"http://127.0.0.1:{self.listen}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"

    def publish(self, code: dict) -> None:
        self.version += 1
        wasm = copy.deepcopy(self.wasm)
        wasm["config"]["vm_config"]["code"] = code
        document = {
            "version_info": str(self.version),
            "resources": [{"@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig", "name": "scim_edge", "typed_config": {"@type": WASM_TYPE, **wasm}}],
        }
        staged = self.dir / f".staged-{self.version}.yaml"
        staged.write_text(yaml.safe_dump(document, sort_keys=False))
        os.replace(staged, self.path)

    def stat(self, name: str) -> int:
        return gateways.admin_stat(self.admin, name)

    def stop(self) -> None:
        self.envoy.stop()
        gateways.running_envoys.remove(self.envoy)


@pytest.fixture(scope="module")
def recorder(module_recorder):
    return module_recorder


@pytest.fixture
def edge_factory(run_dir):
    started: list[RemoteEdge] = []
    servers: list[ModuleServer] = []

    def make(recorder, name: str, *, failures: int = 0, sha256: str | None = None, ecds: bool = False):
        modules = ModuleServer(failures)
        servers.append(modules)
        edge = RemoteEdge(run_dir, recorder, modules, name, modules.code(sha256), ecds=ecds)
        started.append(edge)
        return edge, modules

    yield make
    for edge in started:
        edge.stop()
    for server in servers:
        server.stop()


def create_user(edge: RemoteEdge) -> requests.Response:
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"remote-{uuid.uuid4().hex[:8]}@example.com", "displayName": "Remote Load", "active": True}
    return requests.post(
        f"{edge.origin}{P}/Users", headers={**AUTH, "Content-Type": "application/scim+json"}, data=json.dumps(user), timeout=10
    )


def assert_serves_scim(edge: RemoteEdge, recorder: UpstreamRecorder) -> None:
    mark = recorder.mark()
    created = create_user(edge)
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == "application/scim+json"
    [seen] = recorder.since(mark)
    assert (seen.method, seen.headers["authorization"]) == ("POST", f"Bearer {stack.UPSTREAM_TOKEN}")


def assert_fails_closed(edge: RemoteEdge, recorder: UpstreamRecorder) -> None:
    """Every path, SCIM or not, gets Envoy's empty 503; nothing reaches the upstream."""
    mark = recorder.mark()
    for method, path in [("POST", f"{P}/Users"), ("GET", f"{P}/Users"), ("GET", f"{P}/ServiceProviderConfig"), ("GET", "/")]:
        if method == "POST":
            response = create_user(edge)
        else:
            response = requests.get(f"{edge.origin}{path}", headers=AUTH, timeout=10)
        assert (response.status_code, response.content) == (503, b""), (path, response.text)
    assert recorder.since(mark) == []
    assert "Plugin scim_edge failed to load" in edge.envoy.log_text()


def test_envoy_fetches_the_filter_with_retries_and_serves_scim(recorder, edge_factory):
    edge, modules = edge_factory(recorder, "envoy-remote", failures=2)
    assert modules.fetches == [503, 503, 200], "two failed fetches retried, then the module"
    assert_serves_scim(edge, recorder)


def test_with_a_wrong_sha256_the_filter_never_runs_and_nothing_reaches_the_upstream(recorder, edge_factory):
    edge, modules = edge_factory(recorder, "envoy-remote-bad-sha", sha256="0" * 64)
    assert modules.fetches == [200] * (1 + RETRIES), "a mismatch is retried like a failed fetch"
    assert_fails_closed(edge, recorder)


def test_over_ecds_the_filter_with_remote_code_serves_scim(recorder, edge_factory):
    edge, modules = edge_factory(recorder, "envoy-ecds-remote", ecds=True)
    assert edge.stat("extension_config_discovery.http_filter.scim_edge.config_reload") == 1
    assert modules.fetches == [200]
    assert_serves_scim(edge, recorder)


def test_over_ecds_a_wrong_sha256_at_start_fails_closed(recorder, edge_factory):
    edge, _ = edge_factory(recorder, "envoy-ecds-bad-sha", sha256="f" * 64, ecds=True)
    assert_fails_closed(edge, recorder)


def wait_for_update(edge: RemoteEdge, reloads: int) -> None:
    deadline = time.monotonic() + 10
    while edge.stat("extension_config_discovery.http_filter.scim_edge.config_reload") < reloads:
        assert time.monotonic() < deadline, "the ECDS update was not applied"
        time.sleep(0.05)
    time.sleep(0.3)  # the workers take the new filter configuration


def test_an_ecds_update_to_remote_code_not_yet_loaded_is_not_fetched_and_only_the_route_table_holds(recorder, edge_factory):
    """Envoy 1.40: after start, an ECDS update whose module is not in Envoy's cache is accepted
    without a fetch, and the filter it installs runs no module: SCIM requests go on to the
    router. Deliver modules as local files over ECDS (Istio's agent does), or by a listener
    update; and keep a route table that forwards nothing under the SCIM prefix."""
    edge, modules = edge_factory(recorder, "envoy-ecds-update", ecds=True)
    assert_serves_scim(edge, recorder)
    # The same module again (another retry policy, so the resource changes): served from Envoy's
    # cache under its sha256, the update works.
    code = modules.code()
    code["remote"]["retry_policy"]["num_retries"] = RETRIES + 1
    edge.publish(code)
    wait_for_update(edge, 2)
    assert_serves_scim(edge, recorder)
    # Another sha256 (here a wrong one): accepted, never fetched, the filter is gone from the path.
    edge.publish(modules.code("0" * 64, path="/other.wasm"))
    wait_for_update(edge, 3)
    mark = recorder.mark()
    response = create_user(edge)
    assert modules.fetches == [200], "Envoy never fetched the updated module"
    assert response.status_code == 400, "the request went by the filter to the route table"
    assert response.json()["detail"].startswith("The gateway did not handle this request")
    assert recorder.since(mark) == []
