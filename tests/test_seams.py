"""Issue 13, the seams: requests that must never slip past the filter, upstream answers that must
not lock or leak through the edge, and the shipped Envoy configuration's own limits. Every test
goes through a real Envoy with the built wasm; a scripted upstream (tests/upstream_recorder.py)
plays the misbehaving Omni. docs/robustness.md lists each attack with what the edge answered and
what reached the upstream."""

from __future__ import annotations

import time

import pytest
import requests

from test_gateway_e2e import AUTH, assert_scim_error, new_user
from upstream_recorder import UpstreamRecorder


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
    plugin = {**shipped_plugin, "upstream": {**shipped_plugin["upstream"], "max_retry_after_s": 2}}
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
    from test_gateway_e2e import SCIM_JSON, new_user

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
