"""envoy/envoy.ratelimit.yaml, several replicas on one Omni key: Envoy's ratelimit filter before
scim-edge asks a rate limit service (here a stand-in speaking envoy.service.ratelimit.v3 over
gRPC). OVER_LIMIT gives the client a SCIM 429 with Retry-After and nothing reaches the upstream;
with the service down the request goes on (failure_mode_deny: false, docs/deploy.md). The route
the filter needs is segment-aware and cannot forward: /api/scim/v2x/... and everything else
reach nothing upstream, and even with the wasm filter gone the SCIM route forwards nothing.
The file is envoy.omni.yaml apart from these additions (issue 13, item 2: the README's old recipe
matched /api/scim/v2x and routed to Omni)."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from concurrent import futures

import grpc
import pytest
import requests
import yaml

from support import gateways
import local_stack as stack
from support.upstream_recorder import UpstreamRecorder

ROOT = stack.ROOT
CONFIG = ROOT / "envoy" / "envoy.ratelimit.yaml"
OMNI = ROOT / "envoy" / "envoy.omni.yaml"
SERVICE_CONFIG = ROOT / "deploy" / "ratelimit" / "config.yaml"
P = stack.SCIM_PREFIX
AUTH = {"Authorization": f"Bearer {stack.CLIENT_TOKEN}"}
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


# --- protobuf wire format, just what envoy.service.ratelimit.v3 needs ------------------------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of a message: varints as int, length-delimited as bytes."""
    out, i = [], 0

    def read_varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            byte = message[i]
            i += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while i < len(message):
        key = read_varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            out.append((number, read_varint()))
        elif wire_type == 2:
            length = read_varint()
            out.append((number, message[i : i + length]))
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
    return out


OK, OVER_LIMIT, MINUTE = 1, 2, 3


def rate_limit_response(code: int) -> bytes:
    """RateLimitResponse{overall_code, statuses: [{code, current_limit: {60/minute}, limit_remaining: 0,
    duration_until_reset: 42s}]}"""
    status = field(1, code) + field(2, field(1, 60) + field(2, MINUTE)) + field(3, 0) + field(4, field(1, 42))
    return field(1, code) + field(2, status)


class RateLimitService:
    """A stand-in for envoyproxy/ratelimit: answers every ShouldRateLimit with `code` and records
    (domain, [descriptor entries]) of each request."""

    def __init__(self):
        self.code = OK
        self.requests: list[tuple[str, list[list[tuple[str, str]]]]] = []
        self._lock = threading.Lock()
        self.port = stack.free_port()
        self.server = None

    def should_rate_limit(self, request: bytes, context) -> bytes:
        domain, descriptors = "", []
        for number, value in fields(request):
            if number == 1:
                domain = value.decode()
            elif number == 2:
                entries = []
                for entry_number, entry in fields(value):
                    if entry_number == 1:
                        kv = dict(fields(entry))
                        entries.append((kv[1].decode(), kv[2].decode()))
                descriptors.append(entries)
        with self._lock:
            self.requests.append((domain, descriptors))
        return rate_limit_response(self.code)

    def start(self) -> "RateLimitService":
        handler = grpc.method_handlers_generic_handler(
            "envoy.service.ratelimit.v3.RateLimitService",
            {"ShouldRateLimit": grpc.unary_unary_rpc_method_handler(self.should_rate_limit)},
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=None).wait()

    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list:
        with self._lock:
            return list(self.requests[mark:])


# --- the configuration ------------------------------------------------------------------------------


def hcm(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def routes(config: dict) -> list[dict]:
    return hcm(config)["route_config"]["virtual_hosts"][0]["routes"]


def cluster(config: dict, name: str) -> dict:
    return next(c for c in config["static_resources"]["clusters"] if c["name"] == name)


def ratelimit_filter(config: dict) -> dict:
    return next(f for f in hcm(config)["http_filters"] if f["name"] == "envoy.filters.http.ratelimit")


def test_the_file_is_the_omni_config_plus_the_global_rate_limit():
    config, omni = yaml.safe_load(CONFIG.read_text()), yaml.safe_load(OMNI.read_text())
    names = [f["name"] for f in hcm(config)["http_filters"]]
    assert names.index("envoy.filters.http.ratelimit") < names.index("envoy.filters.http.wasm")
    scim_route, catch_all = routes(config)
    assert scim_route["match"] == {"path_separated_prefix": P}
    target = scim_route["route"]["cluster"]
    plugin = stack.plugin_config(config)
    assert target != plugin["upstream"]["cluster"]
    assert "endpoints" not in cluster(config, target)["load_assignment"], "the SCIM route's cluster has no endpoints"
    assert catch_all["match"] == {"prefix": "/"} and "direct_response" in catch_all
    stripped = copy.deepcopy(config)
    hcm(stripped)["http_filters"].remove(ratelimit_filter(stripped))
    del hcm(stripped)["local_reply_config"]
    # Where omni's table refuses a request the filter did not answer (a SCIM 400), this one routes
    # to a cluster without endpoints (the rate limit filter needs a route): fail closed either way.
    routes(stripped)[0] = routes(omni)[0]
    for name in (target, "ratelimit"):
        stripped["static_resources"]["clusters"].remove(cluster(stripped, name))
    assert stripped == omni


def test_the_service_config_limits_what_the_route_sends_to_omnis_budget():
    config, service = yaml.safe_load(CONFIG.read_text()), yaml.safe_load(SERVICE_CONFIG.read_text())
    assert service["domain"] == ratelimit_filter(config)["typed_config"]["domain"]
    [action] = routes(config)[0]["route"]["rate_limits"][0]["actions"]
    [descriptor] = service["descriptors"]
    assert (descriptor["key"], descriptor["value"]) == ("generic_key", action["generic_key"]["descriptor_value"])
    assert descriptor["rate_limit"] == {"unit": "minute", "requests_per_unit": 60}


def test_the_readme_points_to_the_shipped_file_instead_of_a_recipe():
    readme = (ROOT / "README.md").read_text()
    assert "envoy/envoy.ratelimit.yaml" in readme
    assert 'prefix: "/api/scim/v2"' not in readme
    assert "cluster: omni\n" not in readme


def test_the_compose_profile_runs_the_service_with_pinned_images():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    profiled = {name: s for name, s in compose["services"].items() if "ratelimit" in s.get("profiles", [])}
    assert {"redis", "ratelimit", "envoy-ratelimit"} <= set(profiled)
    for name, service in profiled.items():
        image = service["image"]
        assert "@sha256:" in image or (":" in image and not image.endswith((":latest", "-latest"))), f"{name}: {image} is not pinned"
    mounts = {v.split(":")[0]: v.split(":")[1] for v in profiled["ratelimit"]["volumes"]}
    assert mounts["./deploy/ratelimit/config.yaml"].startswith(profiled["ratelimit"]["environment"]["RUNTIME_ROOT"])
    envoy = profiled["envoy-ratelimit"]
    config_arg = envoy["command"][envoy["command"].index("-c") + 1]
    assert {v.split(":")[1]: v.split(":")[0] for v in envoy["volumes"]}[config_arg] == "./envoy/envoy.ratelimit.yaml"
    address = cluster(yaml.safe_load(CONFIG.read_text()), "ratelimit")["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    assert address["endpoint"]["address"]["socket_address"] == {"address": "ratelimit", "port_value": 8081}


# --- end to end ----------------------------------------------------------------------------------


class RateLimitedEdge:
    def __init__(self, run_dir, recorder: UpstreamRecorder, service: RateLimitService, name: str, without_wasm: bool = False):
        self.listen, self.admin_port = stack.free_port(), stack.free_port()
        config = stack.render_production(CONFIG, listen_port=self.listen, admin_port=self.admin_port, upstream_port=recorder.port)
        limiter = cluster(config, "ratelimit")
        limiter["type"] = "STATIC"
        address = limiter["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        address["socket_address"].update(address="127.0.0.1", port_value=service.port)
        if without_wasm:  # what an ECDS update that loads no module leaves (tests/test_remote_loading.py)
            hcm(config)["http_filters"] = [f for f in hcm(config)["http_filters"] if f["name"] != "envoy.filters.http.wasm"]
        self.envoy = stack.start_envoy(config, self.admin_port, run_dir, name=name)
        gateways.running_envoys.append(self.envoy)
        self.origin = f"http://127.0.0.1:{self.listen}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"

    def stat(self, name: str) -> int:
        return gateways.admin_stat(self.admin, name)

    def stop(self):
        self.envoy.stop()
        gateways.running_envoys.remove(self.envoy)


@pytest.fixture(scope="module")
def recorder(module_recorder):
    return module_recorder


@pytest.fixture(scope="module")
def service():
    service = RateLimitService().start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def edge(run_dir, recorder, service):
    edge = RateLimitedEdge(run_dir, recorder, service, "envoy-ratelimit")
    yield edge
    edge.stop()


def create_user(edge) -> requests.Response:
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"rl-{uuid.uuid4().hex[:8]}@example.com",
        "displayName": "Rate Limited",
        "active": True,
    }
    return requests.post(
        f"{edge.origin}{P}/Users", headers={**AUTH, "Content-Type": "application/scim+json"}, data=json.dumps(user), timeout=10
    )


def test_under_the_limit_scim_is_served_and_the_service_is_asked_for_omnis_key(edge, service, recorder):
    service.code = OK
    asked, mark = service.mark(), recorder.mark()
    response = create_user(edge)
    assert response.status_code == 201, response.text
    assert len(recorder.since(mark)) == 1
    assert service.since(asked) == [("scim_edge", [[("generic_key", "omni_api_key")]])]


def test_over_the_limit_the_client_gets_a_scim_429_with_retry_after_and_nothing_reaches_the_upstream(edge, service, recorder):
    service.code = OVER_LIMIT
    try:
        mark = recorder.mark()
        for response in (create_user(edge), requests.get(f"{edge.origin}{P}/Users", headers=AUTH, timeout=10)):
            assert response.status_code == 429
            assert response.headers["content-type"] == "application/scim+json"
            assert response.headers["retry-after"] == "60"
            assert response.json() == {
                "schemas": [SCIM_ERROR],
                "status": "429",
                "detail": "Too many requests: the shared upstream budget is spent",
            }
        assert recorder.since(mark) == []
        assert edge.stat("cluster.scim_edge_no_upstream.ratelimit.over_limit") >= 2
    finally:
        service.code = OK


def test_the_filters_own_429_on_omnis_throttle_is_not_rewritten(edge, service, recorder):
    """The mapping matches only the ratelimit filter's RL flag: Omni's 429 relayed by the filter
    keeps its own Retry-After and body."""
    service.code, recorder.behaviour, recorder.retry_after = OK, "throttle", "7"
    try:
        response = requests.get(f"{edge.origin}{P}/Users", headers=AUTH, timeout=10)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert "shared upstream budget" not in response.text
    finally:
        recorder.behaviour = "forward"


@pytest.mark.parametrize("path", [f"{P}x/Users", f"{P}x", "/api/scimx/v2/Users", "/api/scim/Users", "/", "/v2/Users"])
def test_paths_outside_the_scim_prefix_reach_nothing_and_are_not_counted(edge, service, recorder, path):
    asked, mark = service.mark(), recorder.mark()
    for method in ("GET", "POST", "DELETE"):
        response = requests.request(method, f"{edge.origin}{path}", headers=AUTH, data="{}", timeout=10)
        assert response.status_code == 404
        assert response.text.startswith("not found: scim-edge serves SCIM")
    assert recorder.since(mark) == []
    assert service.since(asked) == []


def test_even_without_the_wasm_filter_the_scim_route_forwards_nothing(run_dir, recorder, service):
    """The route exists only for the ratelimit filter: with the filter gone (as an ECDS update that
    loads no module leaves it) the router answers 503 from a cluster with no endpoints."""
    bare = RateLimitedEdge(run_dir, recorder, service, "envoy-ratelimit-no-wasm", without_wasm=True)
    try:
        mark = recorder.mark()
        for path in (f"{P}/Users", P, f"{P}/ServiceProviderConfig"):
            response = requests.get(f"{bare.origin}{path}", headers=AUTH, timeout=10)
            assert response.status_code == 503
        assert recorder.since(mark) == []
        assert bare.stat("cluster.scim_edge_no_upstream.upstream_cx_total") == 0
    finally:
        bare.stop()


def test_with_the_service_down_requests_go_on_under_the_replicas_own_budget(run_dir, recorder):
    """failure_mode_deny: false. The stand-in is never started: its port refuses connections."""
    down = RateLimitService()
    edge = RateLimitedEdge(run_dir, recorder, down, "envoy-ratelimit-down")
    try:
        mark = recorder.mark()
        response = create_user(edge)
        assert response.status_code == 201, response.text
        assert len(recorder.since(mark)) == 1
        assert edge.stat("cluster.scim_edge_no_upstream.ratelimit.failure_mode_allowed") == 1
    finally:
        edge.stop()
