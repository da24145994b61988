"""An Entra ID provisioning cycle through the real Envoy and scim-edge to scim2-server, in both of
Entra's request forms, checking after every step what scim2-server stored.

The request bodies are Entra's documented shapes (tests/fixtures/entra). "default" is what Entra sends
out of the box (capitalised ops, "False" as a string, member removal by a value list, `"$ref": null`,
the Microsoft Group schema URN); "aadOptscim062020" is the form of the tenant URL feature flag of that
name, which follows RFC 7644 except for the Microsoft schema URN on Group creation, sent in both forms.
"""

from __future__ import annotations

import json
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests

import local_stack as stack
from support.gateways import plugin_with_profile, start_gateway, stop_gateway
from support.scim import AUTH, SCIM_JSON, assert_scim_error
from support.upstream_recorder import UpstreamRecorder

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "entra"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MICROSOFT_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
UPSTREAM_AUTH = {"Authorization": f"Bearer {stack.UPSTREAM_TOKEN}"}
DEFAULT, FLAG = "default", "aadOptscim062020"


@pytest.fixture(scope="module")
def gateway(scim_upstream, run_dir):
    """The shipped configuration under the `rfc` mapping profile (nothing stripped), in front of
    scim2-server: this module is about normalisation, and checks that everything Entra sends, the
    enterprise extension and externalId included, is stored upstream in canonical form."""
    recorder = UpstreamRecorder(scim_upstream).start()
    gw = start_gateway(run_dir, "envoy-entra-rfc", recorder.port, recorder, plugin=plugin_with_profile("rfc"))
    yield gw
    stop_gateway(gw)
    recorder.stop()


def entra(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def entra_user() -> dict:
    body = entra("create-user.json")
    body["userName"] = f"{uuid.uuid4()}@testuser.com"
    body["externalId"] = str(uuid.uuid4())
    return body


def filter_query(attribute: str, value: str, plus: bool = False) -> str:
    """`filter=<attribute> eq "<value>"` encoded as Entra does: %20 for spaces, or `+` (form encoding)."""
    expression = f'{attribute} eq "{value}"'
    encoded = urllib.parse.quote_plus(expression) if plus else urllib.parse.quote(expression, safe="")
    return f"filter={encoded}"


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    request = response.request
    assert response.status_code in statuses, (
        f"{request.method} {request.path_url} {request.body!r}\n-> {response.status_code} {response.text}"
    )
    return response


def lookup(gateway, resource: str, attribute: str, value: str, plus: bool = False) -> list[str]:
    """Ids of the resources the gateway finds by `attribute eq value`, as Entra looks them up."""
    found = expect(requests.get(f"{gateway.base}/{resource}?{filter_query(attribute, value, plus)}", headers=AUTH), 200).json()
    assert found["totalResults"] == len(found.get("Resources", [])), found
    return [r["id"] for r in found.get("Resources", [])]


def stored(upstream_port: int, resource: str, resource_id: str) -> dict:
    """The resource as scim2-server holds it, fetched directly with the gateway's own credential."""
    direct = requests.get(f"http://127.0.0.1:{upstream_port}/v2/{resource}/{resource_id}", headers=UPSTREAM_AUTH)
    assert direct.status_code == 200, direct.text
    return direct.json()


def members(upstream_port: int, group_id: str) -> set[str]:
    return {m["value"] for m in stored(upstream_port, "Groups", group_id).get("members", [])}


def update_operations(form: str) -> dict:
    """multi-replace-flag.json; in the default form the same intent with Entra's "Replace"."""
    body = entra("multi-replace-flag.json")
    if form == DEFAULT:
        for operation in body["Operations"]:
            operation["op"] = "Replace"
    return body


def add_member_operations(form: str, user_ids: list[str]) -> list[dict]:
    """group-add.json ("Add", `"$ref": null`): both members in one operation in the flag form, one
    request per member in the default form."""
    template = entra("group-add.json")
    operation = template["Operations"][0]
    values = [{**operation["value"][0], "value": user_id} for user_id in user_ids]

    def body(members: list[dict]) -> dict:
        return {**template, "Operations": [{**operation, "value": members}]}

    return [body(values)] if form == FLAG else [body([value]) for value in values]


def remove_member_operation(form: str, user_id: str) -> dict:
    if form == FLAG:
        body = entra("group-remove-flag.json")
        body["Operations"][0]["path"] = f'members[value eq "{user_id}"]'
    else:
        body = entra("group-remove-noflag.json")
        body["Operations"][0]["value"] = [{"value": user_id}]
    return body


@pytest.mark.parametrize("form", [DEFAULT, FLAG])
def test_entra_provisioning_cycle(gateway, scim_upstream, form):
    # 1. Test connection: a filter on a userName that cannot exist.
    probe = str(uuid.uuid4())
    assert lookup(gateway, "Users", "userName", probe) == []
    if form == DEFAULT:
        assert lookup(gateway, "Users", "userName", probe, plus=True) == []

    # 2. Entra looks the user up by its matching attribute, then by externalId, before creating.
    user = entra_user()
    assert lookup(gateway, "Users", "userName", user["userName"]) == []
    assert lookup(gateway, "Users", "externalId", user["externalId"]) == []

    # 3. Create.
    created = expect(requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=user), 201).json()
    user_id = created["id"]
    upstream_user = stored(scim_upstream, "Users", user_id)
    for attribute in ("userName", "externalId", "displayName", "name", "emails"):
        assert upstream_user[attribute] == user[attribute], attribute
    assert upstream_user["active"] is True

    # 4. A second create of the same user: scim2-server's uniqueness error, relayed.
    duplicate = requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=user)
    assert assert_scim_error(duplicate, 409)["scimType"] == "uniqueness"

    # 5. Found by userName (with `+` for spaces too) and by externalId.
    assert lookup(gateway, "Users", "userName", user["userName"]) == [user_id]
    assert lookup(gateway, "Users", "userName", user["userName"], plus=True) == [user_id]
    assert lookup(gateway, "Users", "externalId", user["externalId"]) == [user_id]

    # 6. Update: the work email by a value-filter path, the rest as one pathless replace whose value
    # has dotted (name.givenName) and URN-qualified (enterprise employeeNumber) keys.
    update = update_operations(form)
    expect(requests.patch(f"{gateway.base}/Users/{user_id}", headers=SCIM_JSON, json=update), 200, 204)
    upstream_user = stored(scim_upstream, "Users", user_id)
    assert upstream_user["displayName"] == "Bjfe"
    assert upstream_user["name"]["givenName"] == "Kkom"
    assert upstream_user["name"]["familyName"] == "Unua"
    assert upstream_user[ENTERPRISE] == {"employeeNumber": "Aklq"}
    assert upstream_user["emails"] == [{"value": "TestMhvaes@test.microsoft.com", "type": "work", "primary": True}]
    assert upstream_user["userName"] == user["userName"]
    assert upstream_user["active"] is True

    # 7. Disable. scim2-server itself reads the string "False" as false, so only the forwarded body
    # shows whether the gateway turned Entra's string into the JSON boolean RFC 7643 §2.3.2 requires.
    mark = gateway.recorder.mark()
    disable = entra("disable-flag.json" if form == FLAG else "disable-noflag.json")
    expect(requests.patch(f"{gateway.base}/Users/{user_id}", headers=SCIM_JSON, json=disable), 200, 204)
    [forwarded] = [r for r in gateway.recorder.since(mark) if r.method == "PATCH"]
    assert [op["value"] for op in json.loads(forwarded.body)["Operations"]] == [False]
    assert stored(scim_upstream, "Users", user_id)["active"] is False

    # 8. Group create, with the Microsoft schema URN Entra adds; scim2-server must not get it.
    group = entra("create-group.json")
    group["displayName"] = f"Entra-{uuid.uuid4().hex[:10]}"
    group["externalId"] = str(uuid.uuid4())
    group_id = expect(requests.post(f"{gateway.base}/Groups", headers=SCIM_JSON, json=group), 201).json()["id"]
    upstream_group = stored(scim_upstream, "Groups", group_id)
    assert upstream_group["schemas"] == [GROUP_SCHEMA]
    assert (upstream_group["displayName"], upstream_group["externalId"]) == (group["displayName"], group["externalId"])
    assert upstream_group.get("members", []) == []
    assert lookup(gateway, "Groups", "displayName", group["displayName"]) == [group_id]

    # 9. Two members, in group-add.json's shape (`"$ref": null`).
    other = entra_user()
    other_id = expect(requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=other), 201).json()["id"]
    for body in add_member_operations(form, [user_id, other_id]):
        expect(requests.patch(f"{gateway.base}/Groups/{group_id}", headers=SCIM_JSON, json=body), 200, 204)
    assert members(scim_upstream, group_id) == {user_id, other_id}

    # 10. Remove one member: by a value list (default form) or a value-filter path (flag form).
    remove = remove_member_operation(form, user_id)
    expect(requests.patch(f"{gateway.base}/Groups/{group_id}", headers=SCIM_JSON, json=remove), 200, 204)
    assert members(scim_upstream, group_id) == {other_id}

    # 11. Delete everything; gone at the edge and upstream.
    for resource, resource_id in [("Users", user_id), ("Users", other_id), ("Groups", group_id)]:
        deleted = expect(requests.delete(f"{gateway.base}/{resource}/{resource_id}", headers=AUTH), 204)
        assert deleted.content == b""
        assert_scim_error(requests.get(f"{gateway.base}/{resource}/{resource_id}", headers=AUTH), 404)
        direct = requests.get(f"http://127.0.0.1:{scim_upstream}/v2/{resource}/{resource_id}", headers=UPSTREAM_AUTH)
        assert direct.status_code == 404


def test_entra_default_form_fails_directly_against_scim2_server(scim_upstream):
    """What the gateway has to fix: the default-form shapes scim2-server (strict RFC 7644) refuses.

    Measured with scim2-server 0.8.3, it refuses exactly two of them: the Microsoft schema URN on
    Group creation and member removal by a value list. It accepts capitalised ops ("Replace", "Add",
    "Remove" are matched case-insensitively), the string "False" for a boolean (coerced to false),
    `"$ref": null` in member values and a pathless replace with dotted and URN-qualified keys; this
    test asserts that too, so a change in scim2-server's leniency shows up here."""
    base = f"http://127.0.0.1:{scim_upstream}/v2"
    headers = {**UPSTREAM_AUTH, "Content-Type": "application/scim+json"}

    group = entra("create-group.json")
    group["displayName"] = f"Direct-{uuid.uuid4().hex[:10]}"
    refused = requests.post(f"{base}/Groups", headers=headers, json=group)
    assert refused.status_code == 400, refused.text
    assert refused.json()["scimType"] == "invalidSyntax"
    assert MICROSOFT_GROUP in refused.json()["detail"]

    user_id = expect(requests.post(f"{base}/Users", headers=headers, json=entra_user()), 201).json()["id"]
    group["schemas"] = [GROUP_SCHEMA]
    group_id = expect(requests.post(f"{base}/Groups", headers=headers, json=group), 201).json()["id"]

    add = add_member_operations(DEFAULT, [user_id])[0]
    expect(requests.patch(f"{base}/Groups/{group_id}", headers=headers, json=add), 204)
    assert members(scim_upstream, group_id) == {user_id}

    remove = requests.patch(f"{base}/Groups/{group_id}", headers=headers, json=remove_member_operation(DEFAULT, user_id))
    assert remove.status_code == 400, remove.text
    assert remove.json()["scimType"] == "invalidValue"
    assert members(scim_upstream, group_id) == {user_id}

    # Accepted as they are (the gateway is not needed for these with scim2-server):
    by_filter = remove_member_operation(FLAG, user_id)
    by_filter["Operations"][0]["op"] = "Remove"
    expect(requests.patch(f"{base}/Groups/{group_id}", headers=headers, json=by_filter), 204)
    assert members(scim_upstream, group_id) == set()
    expect(requests.patch(f"{base}/Users/{user_id}", headers=headers, json=update_operations(DEFAULT)), 204)
    expect(requests.patch(f"{base}/Users/{user_id}", headers=headers, json=entra("disable-noflag.json")), 204)
    assert stored(scim_upstream, "Users", user_id)["active"] is False
