"""Entra's enterprise `manager` end to end, in every shape Entra sends it, through the real Envoy
under both mapping profiles (issue 14).

Entra sends the manager as a bare id (`"manager": "<id>"` in the extension, the flat
`"urn:...:User:manager": "<id>"` key, and as PATCH values in both of its forms), or as the one-item
list `[{"$ref": null, "value": "<id>"}]`; RFC 7643 §4.3 defines `{"value": "<id>"}`. Under `rfc` the
upstream (scim2-server, strict) must store `{"value": "<id>"}`; under `omni` nothing of the
manager may reach the upstream, and no shape may fail the request.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests

import local_stack as stack
from support import omni_contract
from support.gateways import plugin_with_profile, start_gateway, stop_gateway
from support.scim import AUTH, SCIM_JSON
from support.upstream_recorder import UpstreamRecorder

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "entra"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MANAGER = f"{ENTERPRISE}:manager"
MANAGER_COUNTER = MANAGER.replace(":", "_").replace(".", "_")
FIXTURE_MANAGER_ID = "2819c223-7f76-453a-919d-413861904646"
UPSTREAM_AUTH = {"Authorization": f"Bearer {stack.UPSTREAM_TOKEN}"}
PROFILES = ["rfc", "omni"]


@pytest.fixture(scope="module", params=PROFILES)
def gateway(request, scim_upstream, run_dir):
    profile = request.param
    recorder = UpstreamRecorder(scim_upstream).start()
    gw = start_gateway(run_dir, f"envoy-manager-{profile}", recorder.port, recorder, plugin=plugin_with_profile(profile))
    gw.profile = profile
    yield gw
    stop_gateway(gw)
    recorder.stop()


def entra(name: str, manager_id: str | None = None) -> dict:
    """An Entra fixture, with the fixture's manager id replaced by `manager_id`."""
    text = (FIXTURES / name).read_text()
    return json.loads(text.replace(FIXTURE_MANAGER_ID, manager_id) if manager_id else text)


def entra_user(**extra) -> dict:
    body = entra("create-user.json")
    body["userName"] = f"{uuid.uuid4()}@testuser.com"
    body["externalId"] = str(uuid.uuid4())
    body.update(extra)
    return body


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    request = response.request
    assert response.status_code in statuses, (
        f"{request.method} {request.path_url} {request.body!r}\n-> {response.status_code} {response.text}"
    )
    return response


def stored(upstream_port: int, user_id: str) -> dict:
    direct = requests.get(f"http://127.0.0.1:{upstream_port}/v2/Users/{user_id}", headers=UPSTREAM_AUTH)
    assert direct.status_code == 200, direct.text
    return direct.json()


def stored_manager(upstream_port: int, user_id: str):
    return stored(upstream_port, user_id).get(ENTERPRISE, {}).get("manager")


def create(gateway, body: dict) -> str:
    return expect(requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=body), 201).json()["id"]


def forwarded_bodies(gateway, mark: int) -> list[bytes]:
    """The bodies of the requests that reached the upstream since `mark`; under omni each is also
    held to Omni's OpenAPI document."""
    records = gateway.recorder.since(mark)
    if gateway.profile == "omni":
        violations = omni_contract.report(records)
        assert not violations, "\n".join(violations)
    return [r.body for r in records]


def assert_no_manager_forwarded(gateway, mark: int) -> None:
    for body in forwarded_bodies(gateway, mark):
        assert b"manager" not in body and ENTERPRISE.encode() not in body, body


# The shapes of a resource body: (key, value) added to Entra's create-user.json.
RESOURCE_SHAPES = {
    "nested bare id": lambda m: (ENTERPRISE, {"manager": m, "department": "R&D"}),
    "flat bare id": lambda m: (MANAGER, m),
    "flat list with $ref": lambda m: (MANAGER, [{"$ref": None, "value": m}]),
}

PATCH_SHAPES = ["manager-add-noflag.json", "manager-add-ref.json", "manager-replace-flag.json"]
REMOVALS = ["manager-remove.json", "manager-remove-value.json"]


@pytest.fixture(scope="module")
def manager_id(gateway):
    return create(gateway, entra_user())


@pytest.mark.parametrize("shape", sorted(RESOURCE_SHAPES))
def test_manager_in_a_create_and_a_replace_body(gateway, scim_upstream, manager_id, shape):
    key, value = RESOURCE_SHAPES[shape](manager_id)
    mark = gateway.recorder.mark()
    user = entra_user(**{key: value})
    user_id = create(gateway, user)
    if gateway.profile == "rfc":
        assert stored_manager(scim_upstream, user_id) == {"value": manager_id}
    else:
        assert_no_manager_forwarded(gateway, mark)
        assert stored_manager(scim_upstream, user_id) is None

    # Replace (PUT) with the same shape, now naming another manager under rfc.
    other_manager = create(gateway, entra_user())
    key, value = RESOURCE_SHAPES[shape](other_manager)
    replaced = {k: v for k, v in user.items() if k not in (ENTERPRISE, MANAGER)}
    replaced[key] = value
    mark = gateway.recorder.mark()
    expect(requests.put(f"{gateway.base}/Users/{user_id}", headers=SCIM_JSON, json=replaced), 200)
    if gateway.profile == "rfc":
        assert stored_manager(scim_upstream, user_id) == {"value": other_manager}
    else:
        assert_no_manager_forwarded(gateway, mark)
        assert stored_manager(scim_upstream, user_id) is None


@pytest.mark.parametrize("shape", PATCH_SHAPES)
@pytest.mark.parametrize("removal", REMOVALS)
def test_manager_set_and_removed_by_patch(gateway, scim_upstream, manager_id, shape, removal):
    user_id = create(gateway, entra_user())
    # Under rfc the shape is normalised; under omni the manager is stripped before its value is read.
    counter = "normalised.manager_shape" if gateway.profile == "rfc" else f"stripped.{MANAGER_COUNTER}"
    before = gateway.counter(counter)
    mark = gateway.recorder.mark()
    patch = entra(shape, manager_id)
    expect(requests.patch(f"{gateway.base}/Users/{user_id}", headers=SCIM_JSON, json=patch), 200, 204)
    assert gateway.counter(counter) == before + 1
    if gateway.profile == "rfc":
        assert stored_manager(scim_upstream, user_id) == {"value": manager_id}
        [forwarded] = forwarded_bodies(gateway, mark)
        assert [op["value"] for op in json.loads(forwarded)["Operations"]] == [{"value": manager_id}]
    else:
        assert forwarded_bodies(gateway, mark) == [], "a PATCH of the manager alone is answered at the edge"

    # Entra's reference check: the user by id and manager.
    query = urllib.parse.quote(f'id eq "{user_id}" and manager eq "{manager_id}"', safe="")
    found = expect(requests.get(f"{gateway.base}/Users?filter={query}", headers=AUTH), 200).json()
    assert [r["id"] for r in found.get("Resources", [])] == ([user_id] if gateway.profile == "rfc" else [])

    mark = gateway.recorder.mark()
    remove = entra(removal, manager_id)
    expect(requests.patch(f"{gateway.base}/Users/{user_id}", headers=SCIM_JSON, json=remove), 200, 204)
    assert stored_manager(scim_upstream, user_id) is None
    if gateway.profile == "omni":
        assert forwarded_bodies(gateway, mark) == []


def test_entra_create_with_a_bare_manager_fixture(gateway, scim_upstream, manager_id):
    """create-user-manager.json: Entra's create body with `"manager": "<id>"` in the extension."""
    body = entra("create-user-manager.json", manager_id)
    body["userName"] = f"{uuid.uuid4()}@testuser.com"
    body["externalId"] = str(uuid.uuid4())
    mark = gateway.recorder.mark()
    user_id = create(gateway, body)
    if gateway.profile == "rfc":
        assert stored(scim_upstream, user_id)[ENTERPRISE] == {"manager": {"value": manager_id}, "department": "R&D"}
    else:
        assert_no_manager_forwarded(gateway, mark)
