"""Through the real Envoy with the built filter to the real scim2-server: what the client gets and
what reached the upstream."""

from __future__ import annotations

import json
import uuid

import requests

import local_stack as stack
from support.scim import AUTH, ERROR_SCHEMA, GROUP_SCHEMA, PATCH_SCHEMA, SCIM_JSON, USER_SCHEMA, assert_scim_error, eq_filter, new_user, raw_request, unique

def test_user_lifecycle_through_the_gateway(gateway):
    mark = gateway.recorder.mark()
    name = unique("ada") + "@example.com"
    created = requests.post(
        f"{gateway.base}/Users",
        headers=SCIM_JSON,
        json={"schemas": [USER_SCHEMA], "userName": name, "displayName": "Ada", "active": True},
    )
    assert created.status_code == 201, created.text
    assert created.headers["content-type"] == "application/scim+json"
    user = created.json()
    user_id = user["id"]
    assert user["userName"] == name
    # The upstream's Location and meta.location (its own address) are rewritten to the edge's.
    assert created.headers["location"] == f"{gateway.base}/Users/{user_id}"
    assert user["meta"]["location"] == f"{gateway.base}/Users/{user_id}"

    fetched = requests.get(f"{gateway.base}/Users/{user_id}", headers=AUTH)
    assert fetched.status_code == 200
    assert fetched.json()["displayName"] == "Ada"

    listed = requests.get(f"{gateway.base}/Users?{eq_filter('userName', name)}", headers=AUTH)
    assert listed.status_code == 200
    assert listed.json()["totalResults"] == 1
    assert listed.json()["Resources"][0]["id"] == user_id

    replaced = requests.put(
        f"{gateway.base}/Users/{user_id}",
        headers=SCIM_JSON,
        json={"schemas": [USER_SCHEMA], "userName": name, "displayName": "Ada Lovelace", "active": True},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["displayName"] == "Ada Lovelace"

    patched = requests.patch(
        f"{gateway.base}/Users/{user_id}",
        headers=SCIM_JSON,
        json={"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert patched.status_code in (200, 204), patched.text
    assert requests.get(f"{gateway.base}/Users/{user_id}", headers=AUTH).json()["active"] is False

    deleted = requests.delete(f"{gateway.base}/Users/{user_id}", headers=AUTH)
    assert deleted.status_code == 204
    assert deleted.content == b""
    # The upstream's own SCIM 404 is relayed as it is.
    assert_scim_error(requests.get(f"{gateway.base}/Users/{user_id}", headers=AUTH), 404)

    seen = [(r.method, r.path.split("?")[0]) for r in gateway.recorder.since(mark)]
    assert seen == [
        ("POST", "/v2/Users"),
        ("GET", f"/v2/Users/{user_id}"),
        ("GET", "/v2/Users"),
        ("PUT", f"/v2/Users/{user_id}"),
        ("PATCH", f"/v2/Users/{user_id}"),
        ("GET", f"/v2/Users/{user_id}"),
        ("DELETE", f"/v2/Users/{user_id}"),
        ("GET", f"/v2/Users/{user_id}"),
    ]


def test_group_lifecycle_through_the_gateway(gateway):
    member = requests.post(
        f"{gateway.base}/Users", headers=SCIM_JSON, json=new_user()
    ).json()["id"]
    other = requests.post(
        f"{gateway.base}/Users", headers=SCIM_JSON, json=new_user()
    ).json()["id"]
    name = unique("Analysts")
    created = requests.post(
        f"{gateway.base}/Groups",
        headers=SCIM_JSON,
        json={"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": member}]},
    )
    assert created.status_code == 201, created.text
    group_id = created.json()["id"]

    found = requests.get(
        f"{gateway.base}/Groups?{eq_filter('displayName', name)}&excludedAttributes=members",
        headers=AUTH,
    )
    assert found.status_code == 200
    assert [g["id"] for g in found.json()["Resources"]] == [group_id]

    added = requests.patch(
        f"{gateway.base}/Groups/{group_id}",
        headers=SCIM_JSON,
        json={"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": [{"value": other}]}]},
    )
    assert added.status_code in (200, 204), added.text
    members = {m["value"] for m in requests.get(f"{gateway.base}/Groups/{group_id}", headers=AUTH).json()["members"]}
    assert members == {member, other}

    renamed = requests.put(
        f"{gateway.base}/Groups/{group_id}",
        headers=SCIM_JSON,
        json={"schemas": [GROUP_SCHEMA], "displayName": name + "-renamed", "members": [{"value": other, "display": "o"}]},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["displayName"] == name + "-renamed"

    assert requests.delete(f"{gateway.base}/Groups/{group_id}", headers=AUTH).status_code == 204
    assert_scim_error(requests.get(f"{gateway.base}/Groups/{group_id}", headers=AUTH), 404)


def test_a_user_created_at_the_edge_is_stored_upstream(gateway, scim_upstream):
    name = unique("stored") + "@example.com"
    created = requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=new_user(name))
    assert created.status_code == 201
    direct = requests.get(
        f"http://127.0.0.1:{scim_upstream}/v2/Users/{created.json()['id']}",
        headers={"Authorization": f"Bearer {stack.UPSTREAM_TOKEN}"},
    )
    assert direct.status_code == 200
    assert direct.json()["userName"] == name


def test_the_upstream_gets_the_gateway_credential_never_the_client_token(gateway):
    mark = gateway.recorder.mark()
    response = requests.get(
        f"{gateway.base}/Users?count=1",
        headers={**AUTH, "Cookie": "session=abc", "X-Request-Id": "trace-123", "If-None-Match": 'W/"1"'},
    )
    assert response.status_code in (200, 304)
    [seen] = gateway.recorder.since(mark)
    assert seen.headers["authorization"] == f"Bearer {stack.UPSTREAM_TOKEN}"
    # At the edge Envoy replaces a client's X-Request-Id with its own; that one travels upstream.
    assert uuid.UUID(seen.headers["x-request-id"]) and seen.headers["x-request-id"] != "trace-123"
    assert seen.headers["if-none-match"] == 'W/"1"'
    assert "cookie" not in seen.headers
    assert not any(stack.CLIENT_TOKEN in value for value in seen.headers.values())
    assert seen.path == "/v2/Users?count=1"


def test_unauthenticated_requests_get_401_and_nothing_reaches_the_upstream(gateway, scim_upstream):
    name = unique("intruder")
    body = {"schemas": [USER_SCHEMA], "userName": name}
    cases = {
        "missing": ({}, 'Bearer realm="scim-edge"'),
        "wrong": ({"Authorization": "Bearer not-the-token"}, 'Bearer realm="scim-edge", error="invalid_token"'),
        "prefix": ({"Authorization": f"Bearer {stack.CLIENT_TOKEN}x"}, 'Bearer realm="scim-edge", error="invalid_token"'),
        "basic": ({"Authorization": "Basic bG9jYWw6ZGV2"}, 'Bearer realm="scim-edge", error="invalid_token"'),
        "empty": ({"Authorization": "Bearer "}, 'Bearer realm="scim-edge", error="invalid_token"'),
        "upstream token": ({"Authorization": f"Bearer {stack.UPSTREAM_TOKEN}"}, 'Bearer realm="scim-edge", error="invalid_token"'),
    }
    rejected_before = sum(gateway.counter(f"auth.rejected.{r}") for r in ("missing", "malformed", "invalid"))
    mark = gateway.recorder.mark()
    for case, (headers, challenge) in cases.items():
        response = requests.post(
            f"{gateway.base}/Users", headers={**headers, "Content-Type": "application/scim+json"}, json=body
        )
        assert_scim_error(response, 401)
        assert response.headers["www-authenticate"] == challenge, case
    assert gateway.recorder.since(mark) == []
    direct = requests.get(
        f"http://127.0.0.1:{scim_upstream}/v2/Users?{eq_filter('userName', name)}",
        headers={"Authorization": f"Bearer {stack.UPSTREAM_TOKEN}"},
    )
    assert direct.json()["totalResults"] == 0
    rejected_after = sum(gateway.counter(f"auth.rejected.{r}") for r in ("missing", "malformed", "invalid"))
    assert rejected_after - rejected_before == len(cases)


def test_unknown_endpoints_get_404_and_wrong_methods_405(gateway):
    mark = gateway.recorder.mark()
    assert_scim_error(requests.get(f"{gateway.base}/Accounts", headers=AUTH), 404)
    assert_scim_error(requests.get(f"{gateway.base}/Users/1/password", headers=AUTH), 404)
    not_allowed = requests.delete(f"{gateway.base}/Users", headers=AUTH)
    assert_scim_error(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET, POST"
    not_allowed = requests.post(f"{gateway.base}/Groups/1", headers=SCIM_JSON, json={})
    assert_scim_error(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET, PUT, PATCH, DELETE"
    assert_scim_error(requests.get(f"{gateway.base}/Bulk", headers=AUTH), 501)
    assert_scim_error(requests.post(f"{gateway.base}/Users/.search", headers=SCIM_JSON, json={}), 400)
    assert gateway.recorder.since(mark) == []


def test_paths_outside_the_prefix_are_not_scim_and_go_nowhere(gateway):
    mark = gateway.recorder.mark()
    for path in ["/", "/api/scim/v3/Users", "/api/scim/v2x/Users", "/API/SCIM/V2/Users", "/v2/Users"]:
        status, body = raw_request(gateway, "GET", path, AUTH)
        assert status == 404, path
        assert "scim-edge serves SCIM under /api/scim/v2" in body
    assert gateway.recorder.since(mark) == []


def test_path_tricks_are_normalised_before_the_filter_sees_them(gateway):
    mark = gateway.recorder.mark()
    # Dot segments resolve into the SCIM prefix, so the token is still required.
    status, _ = raw_request(gateway, "GET", "/api/scim/v2/Groups/../Users")
    assert status == 401
    status, _ = raw_request(gateway, "GET", "/api/other/../scim/v2/Users")
    assert status == 401
    # Escaped slashes are refused by Envoy itself.
    status, _ = raw_request(gateway, "GET", "/api/scim/v2/Users%2F..%2F..%2Fadmin", AUTH)
    assert status == 400
    assert gateway.recorder.since(mark) == []
    # Doubled slashes are merged: this is the Users collection.
    status, body = raw_request(gateway, "GET", "//api//scim/v2//Users?count=1", AUTH)
    assert status == 200
    assert json.loads(body)["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert [r.path for r in gateway.recorder.since(mark)] == ["/v2/Users?count=1"]


def test_oversized_bodies_get_413_and_nothing_reaches_the_upstream(gateway, shipped_plugin):
    limit = shipped_plugin["max_body_bytes"]
    payload = json.dumps({**new_user(), "displayName": "x" * limit}).encode()
    mark = gateway.recorder.mark()
    by_length = requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, data=payload)
    assert_scim_error(by_length, 413)

    def chunks():
        for start in range(0, len(payload), 64 * 1024):
            yield payload[start : start + 64 * 1024]

    chunked = requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, data=chunks())
    assert_scim_error(chunked, 413)
    assert gateway.recorder.since(mark) == []

    # Just under the limit goes through.
    fits = json.dumps({**new_user(), "displayName": "x" * (limit - 200)})
    assert requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, data=fits).status_code == 201


def test_bodies_must_be_scim_json_objects(gateway):
    mark = gateway.recorder.mark()
    plain = requests.post(f"{gateway.base}/Users", headers={**AUTH, "Content-Type": "text/plain"}, data="{}")
    assert_scim_error(plain, 415)
    for body in ["not json", "[]", '{"userName":', ""]:
        response = requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, data=body)
        assert assert_scim_error(response, 400)["scimType"] == "invalidSyntax", body
    assert gateway.recorder.since(mark) == []


def test_counters_show_in_envoy_stats(gateway):
    requests.get(f"{gateway.base}/Users?count=1", headers=AUTH)
    requests.get(f"{gateway.base}/Users?count=1")
    stats = gateway.stats()
    assert stats["wasmcustom.scim_edge.auth.accepted.local-dev"] >= 1
    assert stats["wasmcustom.scim_edge.auth.rejected.missing"] >= 1
    assert stats["wasmcustom.scim_edge.requests"] >= 2
    assert stats["wasmcustom.scim_edge.responses.2xx"] >= 1
    prometheus = requests.get(f"{gateway.admin}/stats/prometheus").text
    assert "scim_edge_auth_accepted_local-dev" in prometheus or "scim_edge_auth_accepted" in prometheus


def test_the_filter_logs_one_line_per_request_without_secrets(gateway):
    marker = unique("logcheck")
    requests.get(f"{gateway.base}/Users?{eq_filter('userName', marker)}", headers=AUTH)
    log = gateway.envoy.log_text()
    lines = [line for line in log.splitlines() if "scim-edge ctx=" in line]
    assert any("GET Users token=local-dev status=200" in line for line in lines)
    for secret in (stack.CLIENT_TOKEN, stack.UPSTREAM_TOKEN, marker):
        assert secret not in log


def test_under_the_rfc_profile_discovery_is_answered_at_the_edge_and_search_reaches_the_upstream(
    gateway_factory, scim_upstream
):
    from support.gateways import plugin_with_profile
    from support.upstream_recorder import UpstreamRecorder

    recorder = UpstreamRecorder(scim_upstream).start()
    gateway = gateway_factory("envoy-rfc", recorder.port, recorder, plugin_with_profile("rfc"))
    mark = gateway.recorder.mark()
    config = requests.get(f"{gateway.base}/ServiceProviderConfig", headers=AUTH)
    assert config.status_code == 200
    assert config.json()["patch"]["supported"] is True
    schema = requests.get(f"{gateway.base}/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", headers=AUTH)
    assert schema.status_code == 200 and schema.json()["id"] == "urn:ietf:params:scim:schemas:core:2.0:User"
    assert requests.get(f"{gateway.base}/ResourceTypes", headers=AUTH).json()["totalResults"] == 2
    assert_scim_error(requests.get(f"{gateway.base}/Schemas?filter=x", headers=AUTH), 400)
    assert gateway.recorder.since(mark) == [], "discovery is answered at the edge (tests/test_discovery.py)"

    name = unique("searched") + "@example.com"
    requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=new_user(name))
    mark = gateway.recorder.mark()
    found = requests.post(
        f"{gateway.base}/Users/.search",
        headers=SCIM_JSON,
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'USERNAME eq "{name}"',
            "attributes": ["username"],
        },
    )
    assert found.status_code == 200, found.text
    assert [u["userName"] for u in found.json()["Resources"]] == [name]
    [seen] = gateway.recorder.since(mark)
    assert (seen.method, seen.path) == ("POST", "/v2/Users/.search")
    assert json.loads(seen.body) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'userName eq "{name}"',
        "attributes": ["userName"],
    }
    recorder.stop()


def test_under_the_omni_profile_discovery_is_answered_at_the_edge_and_search_becomes_a_get(gateway):
    mark = gateway.recorder.mark()
    config = requests.get(f"{gateway.base}/ServiceProviderConfig", headers=AUTH)
    assert config.status_code == 200 and config.json()["sort"] == {"supported": False}
    root_search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'userName eq "x@y.z"'}
    assert_scim_error(requests.post(f"{gateway.base}/.search", headers=SCIM_JSON, json=root_search), 501)
    assert gateway.recorder.since(mark) == []

    name = unique("selected") + "@example.com"
    requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=new_user(name))
    mark = gateway.recorder.mark()
    found = requests.post(
        f"{gateway.base}/Users/.search",
        headers=SCIM_JSON,
        json={**root_search, "filter": f'userName eq "{name}"', "attributes": ["userName"], "sortBy": "userName"},
    )
    assert found.status_code == 200, found.text
    [user] = found.json()["Resources"]
    assert set(user) == {"id", "schemas", "meta", "userName"}, "attribute selection applied at the edge"
    [seen] = gateway.recorder.since(mark)
    assert (seen.method, seen.path, seen.body) == ("GET", f"/v2/Users?{eq_filter('userName', name)}", b"")

    mark = gateway.recorder.mark()
    listed = requests.get(f"{gateway.base}/Users?{eq_filter('userName', name)}&attributes=displayName", headers=AUTH)
    assert set(listed.json()["Resources"][0]) == {"id", "schemas", "meta", "displayName"}
    assert [r.path for r in gateway.recorder.since(mark)] == [f"/v2/Users?{eq_filter('userName', name)}"]


def test_every_request_the_shipped_gateway_forwarded_fits_omnis_contract(gateway):
    """Runs last in this module: everything the tests above made the shipped (omni) gateway send
    upstream is held to Omni's OpenAPI document."""
    from support import omni_contract

    forwarded = gateway.recorder.since(0)
    assert len(forwarded) > 20
    violations = omni_contract.report(forwarded)
    assert violations == [], "\n".join(violations)
