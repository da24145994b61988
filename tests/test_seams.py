"""Issue 13, the seams: requests that must never slip past the filter, upstream answers that must
not lock or leak through the edge, and the shipped Envoy configuration's own limits. Every test
goes through a real Envoy with the built wasm; a scripted upstream (tests/upstream_recorder.py)
plays the misbehaving Omni. docs/robustness.md lists each attack with what the edge answered and
what reached the upstream."""

from __future__ import annotations

import time

import pytest
import requests

import local_stack as stack
from support.scim import AUTH, assert_scim_error, new_user
from support.upstream_recorder import UpstreamRecorder


@pytest.fixture
def scripted():
    recorder = UpstreamRecorder(target_port=None).start()
    yield recorder
    recorder.stop()


# ---------------------------------------------------------------------------------------------------
# Item 4: one upstream answer must not lock provisioning


@pytest.mark.parametrize(
    "sent",
    ["99999999999", "9" * 40, "Fri, 31 Dec 9999 23:59:59 GMT", "Friday, 31-Dec-99 23:59:59 GMT", "soon", "-1"],
)
def test_an_upstream_retry_after_is_bounded_by_default(gateway_factory, scripted, sent):
    scripted.behaviour, scripted.retry_after = "throttle", sent
    gw = gateway_factory("envoy-retry-after", scripted.port, scripted)
    response = requests.get(f"{gw.base}/Users", headers=AUTH)
    assert_scim_error(response, 429)
    wait = int(response.headers["retry-after"])
    assert 0 <= wait <= 3600, sent
    # The budget backs off for that long, no longer: the edge's own 429 says so.
    again = requests.get(f"{gw.base}/Users", headers=AUTH)
    assert_scim_error(again, 429)
    assert int(again.headers["retry-after"]) <= 3600


def test_a_huge_retry_after_blocks_only_as_long_as_configured(gateway_factory, scripted, shipped_plugin):
    scripted.behaviour, scripted.retry_after = "throttle_text", "99999999999"
    # max_wait_ms 0: a request over budget is answered 429 at once rather than paced, so the
    # back-off shows in each answer.
    plugin = {
        **shipped_plugin,
        "upstream": {**shipped_plugin["upstream"], "max_retry_after_s": 2},
        "rate_limit": {**shipped_plugin["rate_limit"], "max_wait_ms": 0},
    }
    gw = gateway_factory("envoy-retry-after-2s", scripted.port, scripted, plugin)
    for sent in ["99999999999", "Fri, 31 Dec 9999 23:59:59 GMT", "garbage"]:
        scripted.behaviour, scripted.retry_after = "throttle", sent
        response = requests.get(f"{gw.base}/Users", headers=AUTH)
        assert_scim_error(response, 429)
        assert response.headers["retry-after"] == "2", sent
        mark = scripted.mark()
        assert_scim_error(requests.get(f"{gw.base}/Users", headers=AUTH), 429)
        assert scripted.since(mark) == [], "backing off: nothing goes upstream"
        time.sleep(2.2)
        scripted.behaviour = "error_json"
        scripted.error_status = 404
        assert requests.get(f"{gw.base}/Users", headers=AUTH).status_code == 404, sent
        assert len(scripted.since(mark)) == 1, f"{sent}: the upstream is called again after the bound"


# ---------------------------------------------------------------------------------------------------
# Item 6: the client's Host never ends up in a URL the edge hands out


@pytest.mark.parametrize(
    "forged",
    [
        {"Host": "evil.example"},
        {"Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example;proto=http"},
    ],
)
def test_urls_are_built_on_the_configured_public_base(gateway, forged):
    from support.scim import SCIM_JSON

    created = requests.post(f"{gateway.base}/Users", headers={**SCIM_JSON, **forged}, json=new_user())
    assert created.status_code == 201, created.text
    user = created.json()
    assert created.headers["location"] == f"{gateway.base}/Users/{user['id']}"
    assert user["meta"]["location"] == f"{gateway.base}/Users/{user['id']}"
    read = requests.get(f"{gateway.base}/Users/{user['id']}", headers={**AUTH, **forged})
    assert read.json()["meta"]["location"] == f"{gateway.base}/Users/{user['id']}"
    for endpoint in ["ServiceProviderConfig", "ResourceTypes", "Schemas"]:
        answer = requests.get(f"{gateway.base}/{endpoint}", headers={**AUTH, **forged})
        assert answer.status_code == 200
        assert "evil" not in answer.text, endpoint
        assert gateway.base in answer.text, endpoint


# ---------------------------------------------------------------------------------------------------
# Item 7: the upstream's own URLs never reach the client

UPSTREAM_USER_ID = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"


def scripted_user(location: str) -> bytes:
    import json

    return json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": UPSTREAM_USER_ID,
            "userName": "ada@example.com",
            "meta": {"resourceType": "User", "location": location},
        }
    ).encode()


def scripted_group(location: str, member_refs) -> bytes:
    import json

    return json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": UPSTREAM_USER_ID,
            "displayName": "Admins",
            "meta": {"resourceType": "Group", "location": location},
            "members": [{"value": f"u{i}", "$ref": ref} for i, ref in enumerate(member_refs)],
        }
    ).encode()


@pytest.mark.parametrize(
    "header",
    [
        "/v2/../../admin",
        "http://10.0.0.5:8081/v2/../../admin",
        "/v2/Users/%2e%2e",
        "/v2/Users/.%2E/x",
        "http://internal.example:8081/admin/Users/1",
        "//evil.example/v2/Users/1",
        "javascript:alert(1)",
    ],
)
def test_an_upstream_location_that_cannot_be_mapped_is_dropped(gateway_factory, scripted, header):
    scripted.behaviour = "scripted"
    body = scripted_user("http://10.0.0.5:8081/v2/Users/x")
    scripted.script = (200, "application/scim+json", body, {"location": header, "content-location": header})
    gw = gateway_factory("envoy-locations", scripted.port, scripted)
    response = requests.get(f"{gw.base}/Users/{UPSTREAM_USER_ID}", headers=AUTH)
    assert response.status_code == 200
    assert "location" not in response.headers and "content-location" not in response.headers
    assert response.json()["meta"]["location"] == f"{gw.base}/Users/{UPSTREAM_USER_ID}"


def test_upstream_urls_in_bodies_are_rebuilt_or_dropped(gateway_factory, scripted):
    scripted.behaviour = "scripted"
    refs = [
        "http://scim-upstream/v2/Users/u0",
        "http://10.0.0.5:8081/internal/Users/u1",
        "http://scim-upstream/v2/Users/%2e%2e",
        "http://scim-upstream/v2/../../admin",
    ]
    body = scripted_group("http://10.0.0.5:8081/internal/Groups/x", refs)
    location = f"http://10.0.0.5:8081/v2/Groups/{UPSTREAM_USER_ID}"
    scripted.script = (200, "application/scim+json", body, {"location": location})
    gw = gateway_factory("envoy-body-urls", scripted.port, scripted)
    response = requests.get(f"{gw.base}/Groups/{UPSTREAM_USER_ID}", headers=AUTH)
    assert response.status_code == 200, response.text
    group = response.json()
    assert response.headers["location"] == f"{gw.base}/Groups/{UPSTREAM_USER_ID}"
    assert group["meta"]["location"] == f"{gw.base}/Groups/{UPSTREAM_USER_ID}"
    assert [m.get("$ref") for m in group["members"]] == [f"{gw.base}/Users/u0", None, None, None]
    assert "10.0.0.5" not in response.text and "scim-upstream" not in response.text and ".." not in response.text


@pytest.mark.parametrize("id_", ["%2e%2e", ".%2E", "%2E", "x%2f%2e%2e"])
def test_percent_encoded_dot_segments_in_ids_never_reach_the_upstream(gateway, id_):
    mark = gateway.recorder.mark()
    response = requests.get(f"{gateway.base}/Users/{id_}", headers=AUTH)
    # The filter's SCIM 404, or the HCM's 400 for an escaped slash.
    assert response.status_code in (400, 404), response.text
    assert gateway.recorder.since(mark) == []


# ---------------------------------------------------------------------------------------------------
# Item 8: upstream error bodies are relayed mapped


def test_an_upstream_error_is_relayed_as_schemas_status_scim_type_and_a_bounded_detail(gateway_factory, scripted):
    import json

    embedded = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "userName is taken " + "x" * 5000,
        "existingUser": {"id": UPSTREAM_USER_ID, "userName": "ada@example.com", "omni_user_groups": ["admins"]},
        "meta": {"location": "http://10.0.0.5:8081/v2/Users/x"},
    }
    scripted.behaviour = "scripted"
    scripted.script = (409, "application/scim+json", json.dumps(embedded).encode(), {})
    gw = gateway_factory("envoy-error-body", scripted.port, scripted)
    response = requests.post(
        f"{gw.base}/Users",
        headers={**AUTH, "Content-Type": "application/scim+json"},
        json=new_user(),
    )
    body = assert_scim_error(response, 409)
    assert set(body) == {"schemas", "status", "scimType", "detail"}
    assert body["scimType"] == "uniqueness"
    assert len(body["detail"]) <= 257
    assert "omni_user_groups" not in response.text and "10.0.0.5" not in response.text


# ---------------------------------------------------------------------------------------------------
# Item 10: Envoy's own headers do not go upstream on the callout


def test_the_callout_carries_no_envoy_internal_headers(gateway):
    mark = gateway.recorder.mark()
    forged = {"x-envoy-internal": "true", "x-envoy-expected-rq-timeout-ms": "1", "x-forwarded-for": "10.0.0.1"}
    assert requests.get(f"{gateway.base}/Users?count=1", headers={**AUTH, **forged}).status_code == 200
    (call,) = gateway.recorder.since(mark)
    leaked = sorted(name for name in call.headers if name.startswith("x-envoy-") or name.startswith("x-forwarded-"))
    assert leaked == [], leaked


# ---------------------------------------------------------------------------------------------------
# Item 1 (routes): nothing under the SCIM prefix is forwarded by the router

EDITED_CONFIGS = ["envoy.yaml", "envoy.compose.yaml", "envoy.omni.yaml"]


def http_filters(config: dict) -> list:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def routes(config: dict) -> list:
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return [r for vh in hcm["route_config"]["virtual_hosts"] for r in vh["routes"]]


def start_envoy_with(run_dir, name: str, upstream_port: int, change):
    """The shipped configuration (ports changed) after `change(config)`; its origin and process."""
    listen, admin = stack.free_port(), stack.free_port()
    config = stack.render(listen_port=listen, admin_port=admin, upstream_port=upstream_port)
    change(config)
    return f"http://127.0.0.1:{listen}", stack.start_envoy(config, admin, run_dir, name=name)


@pytest.mark.parametrize("name", EDITED_CONFIGS)
def test_no_shipped_route_forwards_under_the_scim_prefix(name):
    import yaml

    config = yaml.safe_load((stack.ROOT / "envoy" / name).read_text())
    table = routes(config)
    assert all("direct_response" in r and "route" not in r for r in table), "a shipped route forwards"
    first = table[0]
    assert first["match"] == {"path_separated_prefix": stack.SCIM_PREFIX}
    assert first["direct_response"]["status"] == 400


def test_a_scim_request_the_filter_does_not_answer_gets_a_scim_error_and_goes_nowhere(run_dir, scripted):
    """The route table on its own, as a request the filter did not answer meets it: the shipped
    configuration without the wasm filter."""
    import json

    def without_filter(config):
        filters = http_filters(config)
        filters[:] = [f for f in filters if f["name"] != "envoy.filters.http.wasm"]

    origin, envoy = start_envoy_with(run_dir, "envoy-no-filter", scripted.port, without_filter)
    try:
        p = stack.SCIM_PREFIX
        for method, path in [("GET", f"{p}/Users"), ("POST", f"{p}/Users"), ("GET", p), ("GET", f"{p}?x=1"),
                             ("DELETE", f"{p}/Groups/1"), ("POST", f"{p}/.search")]:
            response = requests.request(method, origin + path, headers=AUTH, data=b"{}" if method == "POST" else None)
            assert response.status_code == 400, (method, path)
            assert response.headers["content-type"] == "application/scim+json"
            body = json.loads(response.content)
            assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "400"
        for path in [f"{p}x/Users", "/api/scim", "/", "/API/SCIM/V2/Users"]:
            response = requests.get(origin + path, headers=AUTH)
            assert response.status_code == 404, path
        assert scripted.requests == [], "the router forwarded a request"
    finally:
        envoy.stop()


# ---------------------------------------------------------------------------------------------------
# Item 3: no unauthenticated memory, Envoy's own limits


def test_a_promised_body_outside_the_scim_prefix_is_not_waited_for(gateway):
    import socket

    host, port = gateway.origin.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        head = f"POST /foo HTTP/1.1\r\nHost: x\r\nContent-Length: {1 << 20}\r\nContent-Type: text/plain\r\n\r\n"
        sock.sendall(head.encode() + b"x" * 1024)
        sock.settimeout(2.0)
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 404"), answer[:80]
    assert time.monotonic() - started < 1.5, "answered on the headers, not after a body that never comes"


def test_the_heap_limit_sheds_requests_before_envoy_runs_out(run_dir, scripted):
    def tiny_heap(config):
        overload = config["overload_manager"]
        monitor = overload["resource_monitors"][0]
        assert monitor["name"] == "envoy.resource_monitors.fixed_heap"
        monitor["typed_config"]["max_heap_size_bytes"] = 1 << 20  # far below what Envoy holds idle
        # Every action fires at once here; without this one the request is accepted and shed
        # with a 503 rather than left in the listen queue.
        actions = [a["name"] for a in overload["actions"]]
        assert "envoy.overload_actions.stop_accepting_connections" in actions
        overload["actions"] = [a for a in overload["actions"] if a["name"] != "envoy.overload_actions.stop_accepting_connections"]

    origin, envoy = start_envoy_with(run_dir, "envoy-tiny-heap", scripted.port, tiny_heap)
    try:
        time.sleep(0.6)  # two refresh intervals
        response = requests.get(f"{origin}{stack.SCIM_PREFIX}/Users", headers=AUTH, timeout=5)
        assert response.status_code == 503
        assert response.text == "envoy overloaded"
        assert response.headers["connection"] == "close", "keep-alive is off under pressure"
        assert scripted.requests == []
    finally:
        envoy.stop()


def test_downstream_connections_are_capped(run_dir, scripted):
    import socket

    def three_connections(config):
        monitor = config["overload_manager"]["resource_monitors"][1]
        assert monitor["name"] == "envoy.resource_monitors.global_downstream_max_connections"
        monitor["typed_config"]["max_active_downstream_connections"] = 3

    origin, envoy = start_envoy_with(run_dir, "envoy-three-connections", scripted.port, three_connections)
    host, port = origin.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.3)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{origin}/", timeout=5)
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert requests.get(f"{origin}/", timeout=5).status_code == 404
    finally:
        for sock in held:
            sock.close()
        envoy.stop()
