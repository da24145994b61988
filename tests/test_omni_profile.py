"""The `omni` mapping profile end to end: the real Envoy with the built filter, in front of an Omni-like
upstream (tests/omni_upstream.py: scim2-server handing out dashed UUIDs, as Omni does) behind an
UpstreamRecorder. Every test checks what the client got and what reached the upstream; every request
that reached the upstream is checked against Omni's OpenAPI document (tests/omni_contract.py).

Under `omni` a User is `userName`, `active`, `displayName` (plus configured
`urn:omni:params:1.0:UserAttribute:<name>` custom attributes) and a Group is `displayName`, `members`:
the edge strips everything else on the way in and on the way out, answers at the edge what can only
touch unmapped attributes, and refuses Omni's system user attributes with 400 `mutability`.
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
from support import omni_upstream
from support.gateways import plugin_with_profile, start_gateway, stop_gateway
from support.scim import AUTH, PATCH_SCHEMA, SCIM_JSON, USER_SCHEMA, GROUP_SCHEMA, assert_scim_error
from support.upstream_recorder import UpstreamRecorder

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "entra"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
OMNI_ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
UPSTREAM_AUTH = {"Authorization": f"Bearer {stack.UPSTREAM_TOKEN}"}
# What a client may see of a resource under `omni`: the mapped attributes plus id, schemas, meta.
USER_KEYS = {"id", "schemas", "meta", "userName", "active", "displayName"}
GROUP_KEYS = {"id", "schemas", "meta", "displayName", "members"}


# ---------------------------------------------------------------------------------------------------
# The stack: an Omni-like upstream, a recorder in front of it, Envoy under the omni profile.


@pytest.fixture(scope="module")
def omni_upstream_port(run_dir):
    port = stack.free_port()
    service = omni_upstream.start(port, run_dir)
    yield port
    service.stop()


@pytest.fixture(scope="module")
def omni(omni_upstream_port, run_dir):
    """The gateway under the omni profile (set explicitly: the test does not rest on the default)."""
    recorder = UpstreamRecorder(omni_upstream_port).start()
    gw = start_gateway(run_dir, "envoy-omni", recorder.port, recorder, plugin=plugin_with_profile("omni"))
    yield gw
    stop_gateway(gw)
    recorder.stop()


@pytest.fixture(autouse=True)
def upstream_requests_fit_omnis_contract(request):
    """After each test of the omni stack: every request it made reach the upstream fits Omni's OpenAPI
    document. A violation fails the test that caused it (as an error at its teardown)."""
    if "omni" not in request.fixturenames:
        yield
        return
    gateway = request.getfixturevalue("omni")
    mark = gateway.recorder.mark()
    yield
    violations = omni_contract.report(gateway.recorder.since(mark))
    if violations:
        pytest.fail("requests outside Omni's contract reached the upstream:\n" + "\n".join(violations), pytrace=False)


# ---------------------------------------------------------------------------------------------------
# Helpers.


def entra(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def email() -> str:
    return f"{uuid.uuid4()}@testuser.com"


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    request = response.request
    assert response.status_code in statuses, (
        f"{request.method} {request.path_url} {request.body!r}\n-> {response.status_code} {response.text}"
    )
    return response


def forwarded_bodies(records) -> list[dict]:
    return [json.loads(r.body) for r in records if r.body]


def only(records, method: str):
    """The one request of this method the upstream got, its path and its JSON body."""
    matching = [r for r in records if r.method == method]
    assert len(matching) == 1, [(r.method, r.path) for r in records]
    return matching[0], (json.loads(matching[0].body) if matching[0].body else None)


def changes(operations: list[dict]) -> list[tuple[str, str | None, object]]:
    """PATCH operations as (op, path, value), a pathless object value read as one change per key."""
    found = []
    for operation in operations:
        op = operation["op"].lower()
        if "path" not in operation and isinstance(operation.get("value"), dict):
            found.extend((op, key, value) for key, value in operation["value"].items())
        else:
            found.append((op, operation.get("path"), operation.get("value")))
    return found


def stored(port: int, resource: str, resource_id: str) -> dict:
    """The resource as the upstream holds it, fetched directly with the gateway's credential."""
    direct = requests.get(f"http://127.0.0.1:{port}/v2/{resource}/{resource_id}", headers=UPSTREAM_AUTH)
    assert direct.status_code == 200, direct.text
    return direct.json()


def stored_by_user_name(port: int, user_name: str) -> list[dict]:
    query = urllib.parse.quote(f'userName eq "{user_name}"', safe="")
    direct = requests.get(f"http://127.0.0.1:{port}/v2/Users?filter={query}", headers=UPSTREAM_AUTH)
    assert direct.status_code == 200, direct.text
    return direct.json().get("Resources", [])


def assert_omni_id(resource_id: str) -> None:
    assert str(uuid.UUID(resource_id)) == resource_id, f"not a dashed UUID: {resource_id}"


def assert_mapped_user(user: dict) -> None:
    assert set(user) <= USER_KEYS, f"unmapped attributes in a response: {sorted(set(user) - USER_KEYS)}"
    assert USER_SCHEMA in user["schemas"]


def create_user(gateway, display_name: str = "Omni User") -> dict:
    """A user created through the gateway, as Omni's contract wants one (userName an email,
    displayName present)."""
    body = {"schemas": [USER_SCHEMA], "userName": email(), "displayName": display_name, "active": True}
    created = expect(requests.post(f"{gateway.base}/Users", headers=SCIM_JSON, json=body), 201).json()
    assert_omni_id(created["id"])
    return created


def filter_query(attribute: str, value: str) -> str:
    return "filter=" + urllib.parse.quote(f'{attribute} eq "{value}"', safe="")


# ---------------------------------------------------------------------------------------------------
# 1. Create: Entra's whole body, only the mapped attributes upstream and back.


def test_entra_create_user_reaches_omni_with_only_mapped_attributes(omni, omni_upstream_port):
    body = entra("create-user.json")
    body["userName"] = email()
    body["externalId"] = str(uuid.uuid4())
    stripped_before = {name: omni.counter(f"stripped.{name}") for name in ("emails", "name")}
    mark = omni.recorder.mark()

    created = expect(requests.post(f"{omni.base}/Users", headers=SCIM_JSON, json=body), 201)

    sent, forwarded = only(omni.recorder.since(mark), "POST")
    assert sent.path == "/v2/Users"
    assert forwarded == {
        "schemas": [USER_SCHEMA],
        "userName": body["userName"],
        "active": True,
        "displayName": body["displayName"],
    }
    user = created.json()
    assert_mapped_user(user)
    assert_omni_id(user["id"])
    assert (user["userName"], user["active"], user["displayName"]) == (body["userName"], True, body["displayName"])
    assert user["schemas"] == [USER_SCHEMA]
    upstream_user = stored(omni_upstream_port, "Users", user["id"])
    for attribute in ("emails", "name", "roles", "externalId", ENTERPRISE):
        assert attribute not in upstream_user, attribute
    for name, before in stripped_before.items():
        assert omni.counter(f"stripped.{name}") > before, f"scim_edge.stripped.{name} not counted"


# ---------------------------------------------------------------------------------------------------
# 2. Entra's multi-replace PATCH: only the displayName change reaches Omni.


def test_entra_multi_replace_reaches_omni_as_the_display_name_change_alone(omni, omni_upstream_port):
    user = create_user(omni)
    update = entra("multi-replace-flag.json")  # emails[type eq "work"].value, then a pathless replace of
    # displayName, name.givenName, name.familyName and the enterprise employeeNumber
    mark = omni.recorder.mark()

    patched = expect(requests.patch(f"{omni.base}/Users/{user['id']}", headers=SCIM_JSON, json=update), 200, 204)

    sent, forwarded = only(omni.recorder.since(mark), "PATCH")
    assert sent.path == f"/v2/Users/{user['id']}"
    assert forwarded["schemas"] == [PATCH_SCHEMA]
    assert changes(forwarded["Operations"]) == [("replace", "displayName", "Bjfe")]
    if patched.status_code == 200:
        assert_mapped_user(patched.json())
        assert patched.json()["displayName"] == "Bjfe"
    upstream_user = stored(omni_upstream_port, "Users", user["id"])
    assert upstream_user["displayName"] == "Bjfe"
    for attribute in ("name", "emails", ENTERPRISE):
        assert attribute not in upstream_user, attribute


# ---------------------------------------------------------------------------------------------------
# 3. Omni's system user attributes, in every shape: 400 mutability, nothing upstream.

SYSTEM_ATTRIBUTE_CASES = {
    "flat key on create": ("POST", "omni_is_org_admin", lambda a, u: {
        "schemas": [USER_SCHEMA], "userName": u["userName"], "displayName": "X", f"{OMNI_ATTRIBUTES}:{a}": True}),
    "nested object on create": ("POST", "omni_user_timezone", lambda a, u: {
        "schemas": [USER_SCHEMA, OMNI_ATTRIBUTES], "userName": u["userName"], "displayName": "X",
        OMNI_ATTRIBUTES: {a: "UTC"}}),
    "nested object on replace": ("PUT", "omni_user_embed_entity", lambda a, u: {
        "schemas": [USER_SCHEMA, OMNI_ATTRIBUTES], "id": u["id"], "userName": u["userName"], "displayName": "X",
        OMNI_ATTRIBUTES: {a: "acme"}}),
    "PATCH path": ("PATCH", "omni_user_email", lambda a, u: {
        "schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": f"{OMNI_ATTRIBUTES}:{a}", "value": "x@y.com"}]}),
    "PATCH path, Entra's capitalised op": ("PATCH", "omni_user_name", lambda a, u: {
        "schemas": [PATCH_SCHEMA], "Operations": [{"op": "Add", "path": f"{OMNI_ATTRIBUTES}:{a}", "value": "Mallory"}]}),
    "pathless PATCH value, flat key": ("PATCH", "omni_user_groups", lambda a, u: {
        "schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "replace", "value": {"displayName": "Y", f"{OMNI_ATTRIBUTES}:{a}": ["admins"]}}]}),
    "pathless PATCH value, nested": ("PATCH", "omni_user_id", lambda a, u: {
        "schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "value": {OMNI_ATTRIBUTES: {a: "1"}}}]}),
}


@pytest.mark.parametrize("case", list(SYSTEM_ATTRIBUTE_CASES))
def test_omni_system_attributes_are_refused_in_every_shape(omni, omni_upstream_port, case):
    method, attribute, make = SYSTEM_ATTRIBUTE_CASES[case]
    target = {"userName": email()} if method == "POST" else create_user(omni, display_name="Before")
    body = make(attribute, target)
    url = f"{omni.base}/Users" if method == "POST" else f"{omni.base}/Users/{target['id']}"
    refused_before = omni.counter("invalid.mutability")
    mark = omni.recorder.mark()

    error = assert_scim_error(requests.request(method, url, headers=SCIM_JSON, json=body), 400)

    assert error["scimType"] == "mutability"
    assert attribute in error["detail"], error["detail"]
    assert omni.recorder.since(mark) == []
    assert omni.counter("invalid.mutability") == refused_before + 1
    if method == "POST":
        assert stored_by_user_name(omni_upstream_port, target["userName"]) == []
    else:
        upstream_user = stored(omni_upstream_port, "Users", target["id"])
        assert upstream_user["displayName"] == "Before"
        assert OMNI_ATTRIBUTES not in upstream_user


# ---------------------------------------------------------------------------------------------------
# 4. Privilege-bearing attributes never reach Omni.


def test_roles_and_entitlements_never_reach_omni(omni, omni_upstream_port):
    privileged = {"roles": [{"value": "org-admin", "primary": True}], "entitlements": [{"value": "billing"}]}
    mark = omni.recorder.mark()
    created = expect(requests.post(
        f"{omni.base}/Users",
        headers=SCIM_JSON,
        json={"schemas": [USER_SCHEMA], "userName": email(), "displayName": "Priv", "active": True, **privileged},
    ), 201).json()
    user_id = created["id"]
    assert_mapped_user(created)

    add_by_path = {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "roles", "value": [{"value": "org-admin"}]},
        {"op": "replace", "path": "displayName", "value": "Priv 2"},
    ]}
    expect(requests.patch(f"{omni.base}/Users/{user_id}", headers=SCIM_JSON, json=add_by_path), 200, 204)
    add_pathless = {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "add", "value": {"roles": [{"value": "org-admin"}], "entitlements": [{"value": "billing"}],
                                "displayName": "Priv 3"}},
    ]}
    expect(requests.patch(f"{omni.base}/Users/{user_id}", headers=SCIM_JSON, json=add_pathless), 200, 204)

    seen = omni.recorder.since(mark)
    assert [r.method for r in seen] == ["POST", "PATCH", "PATCH"]
    for body in forwarded_bodies(seen):
        text = json.dumps(body)
        assert "roles" not in text and "entitlements" not in text and "org-admin" not in text, text
    patches = [changes(b["Operations"]) for b in forwarded_bodies(seen)[1:]]
    assert patches == [[("replace", "displayName", "Priv 2")], [("add", "displayName", "Priv 3")]]
    upstream_user = stored(omni_upstream_port, "Users", user_id)
    assert "roles" not in upstream_user and "entitlements" not in upstream_user
    assert upstream_user["displayName"] == "Priv 3"


# ---------------------------------------------------------------------------------------------------
# 5. Entra's lookups: externalId is answered at the edge, userName goes to Omni.


def test_external_id_lookup_is_answered_empty_at_the_edge(omni):
    user = create_user(omni)
    mark = omni.recorder.mark()

    found = expect(requests.get(f"{omni.base}/Users?{filter_query('externalId', str(uuid.uuid4()))}", headers=AUTH), 200)

    assert found.headers["content-type"] == "application/scim+json"
    listed = found.json()
    assert listed["schemas"] == [LIST_RESPONSE]
    assert listed["totalResults"] == 0
    assert listed.get("Resources", []) == []
    assert omni.recorder.since(mark) == []

    by_name = expect(requests.get(f"{omni.base}/Users?{filter_query('userName', user['userName'])}", headers=AUTH), 200)
    assert [u["id"] for u in by_name.json()["Resources"]] == [user["id"]]
    for resource in by_name.json()["Resources"]:
        assert_mapped_user(resource)
    sent, _ = only(omni.recorder.since(mark), "GET")
    assert sent.path == f"/v2/Users?{filter_query('userName', user['userName'])}"


# ---------------------------------------------------------------------------------------------------
# 6. A PATCH with nothing mapped left: 204 at the edge.


def test_a_patch_touching_only_unmapped_attributes_is_answered_at_the_edge(omni, omni_upstream_port):
    user = create_user(omni, display_name="Unchanged")
    update = {"schemas": [PATCH_SCHEMA], "Operations": [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Ada"},
        {"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": "7"},
        {"op": "replace", "value": {"title": "Engineer", "name.familyName": "Lovelace"}},
        {"op": "remove", "path": "externalId"},
    ]}
    mark = omni.recorder.mark()

    answered = requests.patch(f"{omni.base}/Users/{user['id']}", headers=SCIM_JSON, json=update)

    assert answered.status_code == 204, answered.text
    assert answered.content == b""
    assert omni.recorder.since(mark) == []
    upstream_user = stored(omni_upstream_port, "Users", user["id"])
    assert upstream_user["displayName"] == "Unchanged"
    for attribute in ("emails", "name", "title", ENTERPRISE):
        assert attribute not in upstream_user, attribute


# ---------------------------------------------------------------------------------------------------
# 7. Entra's group cycle under omni.


def test_entra_group_cycle_reaches_omni_in_its_own_shapes(omni, omni_upstream_port):
    first, second = create_user(omni)["id"], create_user(omni)["id"]

    group = entra("create-group.json")  # with Microsoft's schema URN, externalId and meta
    group["displayName"] = f"Omni-{uuid.uuid4().hex[:10]}"
    group["externalId"] = str(uuid.uuid4())
    group["members"] = [{"value": first}]
    mark = omni.recorder.mark()
    created = expect(requests.post(f"{omni.base}/Groups", headers=SCIM_JSON, json=group), 201).json()
    group_id = created["id"]
    _, forwarded = only(omni.recorder.since(mark), "POST")
    assert forwarded == {"schemas": [GROUP_SCHEMA], "displayName": group["displayName"], "members": [{"value": first}]}
    assert set(created) <= GROUP_KEYS, sorted(set(created) - GROUP_KEYS)
    assert "externalId" not in stored(omni_upstream_port, "Groups", group_id)

    # Entra's group lookup, members excluded: forwarded as it is.
    mark = omni.recorder.mark()
    query = f"{filter_query('displayName', group['displayName'])}&excludedAttributes=members"
    found = expect(requests.get(f"{omni.base}/Groups?{query}", headers=AUTH), 200).json()
    assert [g["id"] for g in found["Resources"]] == [group_id]
    sent, _ = only(omni.recorder.since(mark), "GET")
    assert sent.path == f"/v2/Groups?{query}"

    # Add a member: group-add.json ("Add", "$ref": null).
    add = entra("group-add.json")
    add["Operations"][0]["value"] = [{**add["Operations"][0]["value"][0], "value": second}]
    mark = omni.recorder.mark()
    expect(requests.patch(f"{omni.base}/Groups/{group_id}", headers=SCIM_JSON, json=add), 200, 204)
    _, forwarded = only(omni.recorder.since(mark), "PATCH")
    assert forwarded["Operations"] == [{"op": "add", "path": "members", "value": [{"value": second}]}]
    assert {m["value"] for m in stored(omni_upstream_port, "Groups", group_id)["members"]} == {first, second}

    # Remove one in Entra's default form (a value list): Omni takes only members[value eq "<uuid>"].
    remove = entra("group-remove-noflag.json")
    remove["Operations"][0]["value"] = [{"value": first}]
    mark = omni.recorder.mark()
    expect(requests.patch(f"{omni.base}/Groups/{group_id}", headers=SCIM_JSON, json=remove), 200, 204)
    _, forwarded = only(omni.recorder.since(mark), "PATCH")
    assert forwarded["Operations"] == [{"op": "remove", "path": f'members[value eq "{first}"]'}]
    assert {m["value"] for m in stored(omni_upstream_port, "Groups", group_id)["members"]} == {second}

    mark = omni.recorder.mark()
    expect(requests.delete(f"{omni.base}/Groups/{group_id}", headers=AUTH), 204)
    assert [(r.method, r.path) for r in omni.recorder.since(mark)] == [("DELETE", f"/v2/Groups/{group_id}")]


# ---------------------------------------------------------------------------------------------------
# 8. Responses: what the upstream stores beyond the mapping never reaches the client.


def test_responses_carry_only_mapped_attributes(omni, omni_upstream_port):
    user_name = email()
    direct = requests.post(
        f"http://127.0.0.1:{omni_upstream_port}/v2/Users",
        headers={**UPSTREAM_AUTH, "Content-Type": "application/scim+json"},
        json={
            "schemas": [USER_SCHEMA, ENTERPRISE],
            "userName": user_name,
            "displayName": "Stored Elsewhere",
            "active": True,
            "externalId": str(uuid.uuid4()),
            "title": "Engineer",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
            ENTERPRISE: {"department": "R&D"},
        },
    )
    assert direct.status_code == 201, direct.text
    user_id = direct.json()["id"]
    assert {"emails", "name", "title", "externalId", ENTERPRISE} <= set(direct.json())  # the upstream has them

    fetched = expect(requests.get(f"{omni.base}/Users/{user_id}", headers=AUTH), 200).json()
    assert_mapped_user(fetched)
    assert (fetched["id"], fetched["userName"], fetched["displayName"], fetched["active"]) == (
        user_id, user_name, "Stored Elsewhere", True)
    assert fetched["meta"]["location"] == f"{omni.base}/Users/{user_id}"

    listed = expect(requests.get(f"{omni.base}/Users?{filter_query('userName', user_name)}", headers=AUTH), 200).json()
    assert listed["totalResults"] == 1
    [resource] = listed["Resources"]
    assert_mapped_user(resource)
    assert resource["id"] == user_id

    page = expect(requests.get(f"{omni.base}/Users?count=50", headers=AUTH), 200).json()
    assert page["Resources"], page
    for resource in page["Resources"]:
        assert_mapped_user(resource)


# ---------------------------------------------------------------------------------------------------
# 9. Omni's contract: the whole module's upstream traffic, and the checker itself.


def test_every_request_that_reached_omni_in_this_module_fits_its_contract(omni):
    """Runs last in the module: the per-test check above, over everything the recorder saw."""
    seen = omni.recorder.since(0)
    assert seen, "nothing reached the upstream: the contract check would be vacuous"
    violations = omni_contract.report(seen)
    assert not violations, "requests outside Omni's contract reached the upstream:\n" + "\n".join(violations)


CONTRACT_UUID = "550e8400-e29b-41d4-a716-446655440000"
JSON_BODY = {"content-type": "application/scim+json"}


def patch(*operations) -> bytes:
    return json.dumps({"schemas": [PATCH_SCHEMA], "Operations": list(operations)}).encode()


@pytest.mark.parametrize(
    "method, path, body, expected",
    [
        ("PATCH", "/v2/Groups/abc123",
         patch({"op": "remove", "path": "members", "value": [{"value": CONTRACT_UUID}]}),
         "is not valid under any of the given schemas"),
        ("PATCH", f"/v2/Users/{CONTRACT_UUID}", patch({"op": "remove", "path": "displayName"}),
         "'value' is a required property"),
        ("GET", "/v2/Users/0a21f0f28d2a4f8ebf987363c4aed4ef", b"", "is not a 'uuid'"),
        ("POST", "/v2/Users", json.dumps({"schemas": [USER_SCHEMA], "userName": "not-an-email", "displayName": "X"}).encode(),
         "is not a 'email'"),
        ("POST", "/v2/Users", json.dumps({"schemas": [USER_SCHEMA], "userName": "a@example.com"}).encode(),
         "'displayName' is a required property"),
        ("GET", "/v2/Groups/abc123?excludedAttributes=displayName", b"", "is not one of ['members']"),
        ("GET", "/v2/Users?filter=x&attributes=userName", b"", "query parameter 'attributes' is not one the operation declares"),
        ("POST", "/v2/Users/.search", b"{}", "not in Omni's contract"),
        ("GET", "/v2/ServiceProviderConfig", b"", "not in Omni's contract"),
        ("DELETE", "/v2/Users", b"", "not in Omni's contract"),
        ("GET", "/api/scim/v2/Users", b"", "outside the upstream base path"),
    ],
    ids=["group-remove-by-value-list", "user-patch-without-value", "user-id-not-uuid", "userName-not-email",
         "create-without-displayName", "excludedAttributes-not-members", "undeclared-query-parameter", "search",
         "discovery", "method-not-served", "outside-base-path"],
)
def test_the_contract_checker_reports_what_omni_does_not_take(method, path, body, expected):
    found = omni_contract.violations(method, path, JSON_BODY if body else {}, body)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("PATCH", "/v2/Groups/abc123", patch({"op": "remove", "path": f'members[value eq "{CONTRACT_UUID}"]'})),
        ("PATCH", "/v2/Groups/abc123", patch({"op": "add", "path": "members", "value": [{"value": CONTRACT_UUID}]})),
        ("PATCH", f"/v2/Users/{CONTRACT_UUID}", patch({"op": "replace", "path": "active", "value": False})),
        ("POST", "/v2/Users", json.dumps({"schemas": [USER_SCHEMA], "userName": "a@example.com", "displayName": "A", "active": True}).encode()),
        ("GET", "/v2/Users?filter=userName%20eq%20%22a%40example.com%22", b""),
        ("GET", "/v2/Users", b""),
        ("GET", "/v2/Groups?filter=displayName%20eq%20%22x%22&excludedAttributes=members", b""),
        ("DELETE", f"/v2/Users/{CONTRACT_UUID}", b""),
    ],
)
def test_the_contract_checker_passes_what_omni_takes(method, path, body):
    assert omni_contract.violations(method, path, JSON_BODY if body else {}, body) == []


def test_the_contract_document_is_omnis_with_only_its_known_defects_corrected():
    from openapi_spec_validator import validate

    raw = json.loads(omni_contract.DOCUMENT.read_text())
    assert len(omni_contract.DOCUMENT_DEFECTS) == 6, omni_contract.DOCUMENT_DEFECTS
    with pytest.raises(Exception, match="is not of type 'string'"):
        validate(raw)
    validate(omni_contract.corrected_document())  # raises if anything else is wrong with it
