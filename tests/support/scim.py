"""What the end-to-end tests say to the edge: the SCIM schemas, the local client's headers, test
users, and the checks every SCIM error answer must pass."""

from __future__ import annotations

import http.client
import urllib.parse
import uuid

import requests

import local_stack as stack

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
AUTH = {"Authorization": f"Bearer {stack.CLIENT_TOKEN}"}
SCIM_JSON = {**AUTH, "Content-Type": "application/scim+json"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_user(name: str | None = None) -> dict:
    """A user the shipped (omni) mapping forwards whole: Omni user names are email addresses and
    Omni creates users with a displayName."""
    return {"schemas": [USER_SCHEMA], "userName": name or unique("user") + "@example.com", "displayName": "A User"}


def assert_scim_error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body["detail"]
    return body


def eq_filter(attribute: str, value: str) -> str:
    """`filter=<attribute> eq "<value>"`, percent-encoded."""
    return "filter=" + urllib.parse.quote(f'{attribute} eq "{value}"', safe="")


def raw_request(gateway, method: str, path: str, headers: dict | None = None) -> tuple[int, str]:
    """A request with the path exactly as written (no client-side normalisation)."""
    host, port = gateway.origin.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest(method, path, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body
