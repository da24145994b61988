"""Hostile requests through the real Envoy (shipped configuration, built wasm): authentication
bypass attempts, body attacks and query attacks, sent byte for byte over a raw socket. Each case
asserts the status, who answered (a SCIM error body from the filter, with its `scimType`, or
Envoy's own answer), that nothing reached the upstream, and that the gateway then answers a
normal authenticated request as usual. At the end, Envoy's wasm stats show the VM never failed.

Which layer answers what ("HCM" is Envoy's HTTP connection manager: its codec, header limits and
path normalisation, `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action: REJECT_REQUEST`,
`max_request_headers_kb: 32`, `max_headers_count: 100`, `headers_with_underscores_action: REJECT_REQUEST`;
"route table" is the shipped catch-all `direct_response` for paths outside `/api/scim/v2`):

| attack | without a token | with the token |
|---|---|---|
| dot segments resolving inside the prefix (`Groups/../Users`, `%2e%2e`, `./`) | filter 401 | served as the path they resolve to |
| dot segments resolving outside the prefix (`../../admin`, `%2E%2E/%2E%2E`) | route table 404 | route table 404 |
| doubled slashes (`//api//scim/v2//Users`) | filter 401 (merged) | served (merged) |
| case variants inside the prefix (`/users`, `/USERS`) | filter 401 | filter 404 |
| case variants of the prefix (`/API/SCIM/V2`) | route table 404 | route table 404 |
| trailing slash, `;params`, raw backslash, `%2500` | filter 401 | filter 404 |
| escaped slash or backslash (`%2F`, `%2f`, `%5C`) | HCM 400 | HCM 400 |
| `%00`, a raw NUL, `#fragment`, `*` or relative request target | HCM 400 | HCM 400 |
| a header name with `_` | HCM 400 | HCM 400 |
| one 40 KiB header, 120 headers, a 64 KiB filter | HCM 431 | HCM 431 |
| `X-HTTP-Method-Override` & co. | filter 401 | ignored: the method is the request's, the header is not forwarded |
| two `Authorization` headers, `Bearer<TAB>`, trailing junk, `Basic`, empty, 10 KiB token, `?access_token=` | filter 401 | — |
| `bearer`/`BEARER` (the scheme is case-insensitive, RFC 9110 §11.1) | — | served |
| body: over `max_body_bytes` (Content-Length, chunked, a 10 GiB Content-Length) | filter 413 | filter 413 |
| body: deep nesting, invalid UTF-8, lone surrogates, duplicate keys, non-object JSON, BOM, trailing data | — | filter 400 invalidSyntax |
| body: wrong, missing or look-alike content type | — | filter 415 |
| body: a 100-digit number where a string belongs, 1001 PATCH operations, 10001 values | — | filter 400 invalidValue |
| body: a number a double cannot carry exactly (1e999, 400 or 100 digits, 1.5e-400, 1e308) | — | filter 400 invalidValue |
| body: an 18-digit integer or a 15-digit decimal up to 10^±22 in a mapped custom attribute | — | forwarded as sent |
| query: 8 KiB filter, 200 parentheses, 17 `not(`, NUL, invalid UTF-8 | — | filter 400 invalidFilter / invalidValue |
| query: repeated or unknown parameters, 100-digit `count`/`startIndex` | — | filter 400 invalidValue |
| query: 100-digit or 1e999 number literals in a filter | — | forwarded unchanged; the upstream's own 400 is relayed |
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import uuid
from dataclasses import dataclass, field

import pytest
import requests

import local_stack as stack
from support.scim import AUTH, ERROR_SCHEMA, PATCH_SCHEMA, SCIM_JSON, USER_SCHEMA, new_user
from support.gateways import assert_vm_never_failed, edge, with_plugin
from support.upstream_recorder import UpstreamRecorder

TOKEN = stack.CLIENT_TOKEN
BEARER = ("Authorization", f"Bearer {TOKEN}")
SCIM_CT = ("Content-Type", "application/scim+json")
CHALLENGE = 'Bearer realm="scim-edge"'
CHALLENGE_INVALID = 'Bearer realm="scim-edge", error="invalid_token"'
ROUTE_TABLE_404 = "scim-edge serves SCIM under /api/scim/v2"
OMNI_ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
P = stack.SCIM_PREFIX


# ---------------------------------------------------------------------------------------------------
# Byte-exact requests


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


def send(origin: str, method: str, target: bytes | str, headers=(), body: bytes | None = None, chunked=False) -> Answer:
    """One request, written exactly as given (request target, header bytes, body), on its own
    connection. A body is sent in 64 KiB pieces and the sending stops as soon as the gateway
    answers (it may refuse a request before reading all of it)."""
    host, port = origin.removeprefix("http://").split(":")
    target = target.encode("latin-1") if isinstance(target, str) else target
    head = [method.encode() + b" " + target + b" HTTP/1.1", f"Host: {host}:{port}".encode(), b"Connection: close"]
    for name, value in headers:
        head.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")))
    if body is not None and chunked:
        head.append(b"Transfer-Encoding: chunked")
    elif body is not None and not any(name.lower() == "content-length" for name, _ in headers):
        head.append(b"Content-Length: " + str(len(body)).encode())
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n")
        pieces = [body[i : i + 65536] for i in range(0, len(body or b""), 65536)]
        if chunked:
            pieces = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
        for piece in pieces:
            if select.select([sock], [], [], 0)[0]:
                break  # answered already
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        payload = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    finally:
        sock.close()


# ---------------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    id: str
    target: str | bytes
    method: str = "GET"
    headers: tuple = ()
    body: bytes | None = None
    status: int = 400
    layer: str = "filter"  # "filter" (a SCIM error), "hcm" (Envoy's codec / limits), "routes" (route table 404), "served"
    scim_type: str | None = None
    detail: str | None = None  # a word the SCIM error's detail must contain
    chunked: bool = False
    marks: list = field(default_factory=list)


def unauthenticated(id, target, status=401, layer="filter", **kw) -> Case:
    return Case(id, target, status=status, layer=layer, **kw)


def authenticated(id, target, status=404, layer="filter", headers=(), **kw) -> Case:
    return Case(id, target, status=status, layer=layer, headers=(BEARER, *headers), **kw)


PATH_TRICKS = [
    # Without a token nothing under the prefix reaches the filter's routing: 401, whatever the path.
    unauthenticated("dot-segments-into-users", f"{P}/Groups/../Users"),
    unauthenticated("encoded-dots-into-users", f"{P}/%2e%2e/v2/Users"),
    unauthenticated("upper-encoded-dots-into-users", f"{P}/Groups/%2E%2E/Users"),
    unauthenticated("dot-segment-from-outside", "/api/other/../scim/v2/Users"),
    unauthenticated("single-dot", f"{P}/./Users"),
    unauthenticated("doubled-slashes", "//api//scim/v2//Users?count=1"),
    unauthenticated("case-variant", f"{P}/users"),
    unauthenticated("upper-case-variant", f"{P}/USERS"),
    unauthenticated("trailing-slash", f"{P}/Users/"),
    unauthenticated("semicolon-params", f"{P}/Users;x=1"),
    unauthenticated("semicolon-dot-dot", f"{P}/Users/..;/Groups"),
    unauthenticated("raw-backslash", f"{P}/Users\\..\\Groups"),
    unauthenticated("encoded-percent-nul", f"{P}/Users%2500"),
    unauthenticated("prefix-itself", P),
    unauthenticated("absolute-form", f"http://evil.example{P}/Users"),
    unauthenticated("overlong-utf8-dot", f"{P}/%c0%ae%c0%ae/Users"),
    # Outside the prefix once resolved: the route table's 404, nothing else.
    unauthenticated("dot-segments-out-of-prefix", f"{P}/../../admin", 404, "routes"),
    unauthenticated("encoded-dots-out-of-prefix", f"{P}/Users/%2E%2E/%2E%2E/%2E%2E/admin", 404, "routes"),
    unauthenticated("prefix-case-variant", "/API/SCIM/V2/Users", 404, "routes"),
    # Envoy refuses these before any filter runs.
    unauthenticated("escaped-slash", f"{P}/Users%2F..%2F..%2Fadmin", 400, "hcm"),
    unauthenticated("escaped-slash-lower", f"{P}/Users/..%2fadmin", 400, "hcm"),
    unauthenticated("escaped-backslash", f"{P}/Users%5c..%5cadmin", 400, "hcm"),
    unauthenticated("encoded-nul", f"{P}/Users%00", 400, "hcm"),
    unauthenticated("raw-nul", f"{P}/Users\x00", 400, "hcm"),
    unauthenticated("fragment", f"{P}/Users#x", 400, "hcm"),
    unauthenticated("asterisk-target", "*", 400, "hcm"),
    unauthenticated("relative-target", "api/scim/v2/Users", 400, "hcm"),
    # With the token, tricks that resolve to no SCIM endpoint are the filter's 404.
    authenticated("auth-case-variant", f"{P}/users", detail="No such SCIM endpoint"),
    authenticated("auth-upper-case-variant", f"{P}/USERS", detail="No such SCIM endpoint"),
    authenticated("auth-trailing-slash", f"{P}/Users/", detail="No such SCIM endpoint"),
    authenticated("auth-semicolon-params", f"{P}/Users;x=1", detail="No such SCIM endpoint"),
    authenticated("auth-encoded-percent-nul", f"{P}/Users%2500", detail="No such SCIM endpoint"),
    authenticated("auth-raw-backslash-outside", f"{P}/Users\\..\\Accounts", detail="No such SCIM endpoint"),
    authenticated("auth-filter-unknown-attribute", f"{P}/Users?filter=" + "nosuch%20pr", 400, scim_type="invalidFilter"),
    authenticated("auth-attributes-unknown", f"{P}/Users?attributes=nosuch", 400, scim_type="invalidValue"),
    authenticated("auth-prefix-itself", P, detail="No such SCIM endpoint"),
    authenticated("auth-id-with-dots", f"{P}/Users/a/../../Groups/b/password", detail="No such SCIM endpoint"),
    authenticated("auth-overlong-utf8-dot", f"{P}/%c0%ae%c0%ae/Users", detail="No such SCIM endpoint"),
    authenticated("auth-dot-segments-out-of-prefix", f"{P}/../../admin", layer="routes"),
    authenticated("auth-encoded-dots-out-of-prefix", f"{P}/Users/%2E%2E/%2E%2E/%2E%2E/admin", layer="routes"),
    authenticated("auth-escaped-slash", f"{P}/Users%2F..%2F..%2Fadmin", 400, "hcm"),
    authenticated("auth-encoded-nul", f"{P}/Users%00", 400, "hcm"),
    authenticated("auth-raw-nul", f"{P}/Users\x00", 400, "hcm"),
    # Method overrides are headers like any other: no effect on the method, never forwarded.
    unauthenticated(
        "method-override-unauthenticated",
        f"{P}/Users",
        headers=(("X-HTTP-Method-Override", "DELETE"), ("X-HTTP-Method", "DELETE"), ("X-Method-Override", "DELETE")),
    ),
    authenticated(
        "method-override-get-on-post",
        f"{P}/Users",
        400,
        method="POST",
        headers=(SCIM_CT, ("X-HTTP-Method-Override", "GET")),
        body=b"{}",
        scim_type="invalidValue",
    ),
    authenticated(
        "method-override-on-collection-delete",
        f"{P}/Users",
        405,
        method="DELETE",
        headers=(("X-HTTP-Method-Override", "GET"),),
    ),
]

USERS = f"{P}/Users?count=1"
AUTHORIZATION_FORMS = [
    unauthenticated("two-authorization-headers", USERS, headers=(BEARER, BEARER)),
    unauthenticated("two-authorization-headers-one-wrong", USERS, headers=(("Authorization", "Bearer nope"), BEARER)),
    unauthenticated("bearer-tab", USERS, headers=(("Authorization", f"Bearer\t{TOKEN}"),)),
    unauthenticated("bearer-no-space", USERS, headers=(("Authorization", f"Bearer{TOKEN}"),)),
    unauthenticated("token-trailing-junk", USERS, headers=(("Authorization", f"Bearer {TOKEN} junk"),)),
    unauthenticated("token-trailing-comma", USERS, headers=(("Authorization", f"Bearer {TOKEN},"),)),
    unauthenticated("token-prefix-only", USERS, headers=(("Authorization", f"Bearer {TOKEN[:-1]}"),)),
    unauthenticated("basic", USERS, headers=(("Authorization", "Basic bG9jYWwtZGV2LXRva2VuOg=="),)),
    unauthenticated("basic-with-the-token", USERS, headers=(("Authorization", f"Basic {TOKEN}"),)),
    unauthenticated("empty", USERS, headers=(("Authorization", ""),)),
    unauthenticated("scheme-only", USERS, headers=(("Authorization", "Bearer"),)),
    unauthenticated("token-10-kib", USERS, headers=(("Authorization", "Bearer " + "a" * 10240),)),
    unauthenticated("token-non-ascii", USERS, headers=(("Authorization", b"Bearer local-dev-t\xc3\xb6ken"),)),
    unauthenticated("token-in-query", f"{P}/Users?access_token={TOKEN}"),
    unauthenticated("token-in-other-header", USERS, headers=(("X-Authorization", f"Bearer {TOKEN}"),)),
    unauthenticated("header-40-kib", USERS, 431, "hcm", headers=(BEARER, ("X-Big", "a" * 40960))),
    unauthenticated("token-40-kib", USERS, 431, "hcm", headers=(("Authorization", "Bearer " + "a" * 40960),)),
    unauthenticated("120-headers", USERS, 431, "hcm", headers=(BEARER, *((f"X-H{i}", "v") for i in range(120)))),
    unauthenticated("underscore-header", USERS, 400, "hcm", headers=(BEARER, ("X_Authorization", "x"))),
    unauthenticated("nul-in-authorization", USERS, 400, "hcm", headers=(("Authorization", f"Bearer {TOKEN}\x00"),)),
]

U = '"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"hostile@example.com"'


def user_body(extra: str) -> bytes:
    return ("{" + U + "," + extra + "}").encode()


def body_case(id, body, status=400, scim_type="invalidSyntax", method="POST", target=f"{P}/Users", ct=SCIM_CT, **kw):
    headers = (BEARER, ct) if ct else (BEARER,)
    return Case(id, target, method=method, headers=headers, body=body, status=status, scim_type=scim_type, **kw)


PATCH_TARGET = f"{P}/Users/2819c223-7f76-453a-919d-413861904646"
MAX_BODY = 1048576
BODY_ATTACKS = [
    body_case("oversize-by-length", user_body('"displayName":"' + "x" * MAX_BODY + '"'), 413, None),
    body_case("oversize-chunked", user_body('"displayName":"' + "x" * MAX_BODY + '"'), 413, None, chunked=True),
    Case(
        "content-length-10-gib",
        f"{P}/Users",
        method="POST",
        headers=(BEARER, SCIM_CT, ("Content-Length", str(10 * 1024**3))),
        body=b"",
        status=413,
    ),
    body_case("nesting-40-arrays", user_body('"displayName":' + "[" * 40 + "]" * 40), detail="nested deeper"),
    body_case("nesting-40-objects", user_body('"displayName":' + '{"a":' * 40 + "1" + "}" * 40), detail="nested deeper"),
    body_case("nesting-50000-arrays", user_body('"displayName":' + "[" * 50000 + "]" * 50000)),
    body_case("nesting-unclosed", user_body('"displayName":' + "[" * 100000)),
    body_case("number-1e999", user_body('"displayName":"A","active":1e999'), scim_type="invalidValue", detail="forwards exactly"),
    body_case("number-1e400-digits", user_body('"displayName":1' + "0" * 400), scim_type="invalidValue", detail="forwards exactly"),
    body_case("number-100-digits-for-a-string", user_body('"displayName":' + "9" * 100), scim_type="invalidValue"),
    body_case("number-100-digits-for-a-boolean", user_body('"active":' + "9" * 100), scim_type="invalidValue"),
    body_case("invalid-utf8", b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a\xff\xfe@x"}'),
    body_case("utf8-surrogate-bytes", b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a\xed\xa0\x80"}'),
    body_case("overlong-utf8", b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a\xc0\xaf"}'),
    body_case("escaped-lone-surrogate", user_body('"displayName":"\\ud800"')),
    body_case("raw-control-character", user_body('"displayName":"a\x01b"')),
    body_case("duplicate-key", user_body('"displayName":"A","displayName":"B"'), detail="duplicate"),
    body_case("duplicate-username", user_body('"userName":"other@example.com"'), detail="duplicate"),
    body_case("duplicate-key-case-distinct", user_body('"displayName":"A","name":{"givenName":"a","givenName":"b"}'), detail="duplicate"),
    body_case(
        "duplicate-key-in-patch",
        json.dumps({"schemas": [PATCH_SCHEMA]})[:-1].encode()
        + b',"Operations":[{"op":"add","op":"remove","path":"displayName","value":"A"}]}',
        method="PATCH",
        target=PATCH_TARGET,
        detail="duplicate",
    ),
    body_case("duplicate-schemas", b'{"schemas":["x"],"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}', detail="duplicate"),
    body_case("json-array", b"[]", detail="not a JSON object"),
    body_case("json-string", b'"{}"', detail="not a JSON object"),
    body_case("json-null", b"null", detail="not a JSON object"),
    body_case("json-number", b"42", detail="not a JSON object"),
    body_case("json-true", b"true", detail="not a JSON object"),
    body_case("two-documents", b"{} {}"),
    body_case("byte-order-mark", b"\xef\xbb\xbf{}"),
    body_case("truncated", user_body('"displayName":"A"')[:-1]),
    body_case("empty-body", b""),
    body_case("whitespace-body", b" \r\n\t "),
    body_case("patch-array", b"[]", method="PATCH", target=PATCH_TARGET),
    body_case("text-plain", b"{}", 415, None, ct=("Content-Type", "text/plain")),
    body_case("form-urlencoded", b"userName=a", 415, None, ct=("Content-Type", "application/x-www-form-urlencoded")),
    body_case("multipart", b"--x--", 415, None, ct=("Content-Type", "multipart/form-data; boundary=x")),
    body_case("no-content-type", b"{}", 415, None, ct=None),
    body_case("look-alike-content-type", b"{}", 415, None, ct=("Content-Type", "application/scim+jsonx")),
    body_case("xml", b"<User/>", 415, None, ct=("Content-Type", "application/xml")),
    body_case("json-patch-content-type", b"[]", 415, None, method="PATCH", target=PATCH_TARGET, ct=("Content-Type", "application/json-patch+json")),
    body_case(
        "patch-1001-operations",
        json.dumps(
            {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "displayName", "value": "A"}] * 1001}
        ).encode(),
        method="PATCH",
        target=PATCH_TARGET,
        scim_type="invalidValue",
    ),
    body_case(
        "10001-emails",
        user_body('"emails":' + json.dumps([{"value": f"a{i}@x"} for i in range(10001)])),
        scim_type="invalidValue",
    ),
]


def q(text: str) -> str:
    return requests.utils.quote(text, safe="")


EQ_A = q('userName eq "a"')
QUERY_ATTACKS = [
    authenticated("filter-64-kib", f"{P}/Users?filter=" + q('userName eq "' + "a" * 65536 + '"'), 431, "hcm"),
    authenticated("filter-or-chain-64-kib", f"{P}/Users?filter=" + "%20or%20".join([EQ_A] * 2000), 431, "hcm"),
    authenticated(
        "filter-8-kib", f"{P}/Users?filter=" + q('userName eq "' + "a" * 8192 + '"'), 400, scim_type="invalidFilter"
    ),
    authenticated("filter-200-parentheses", f"{P}/Users?filter=" + "%28" * 200 + EQ_A + "%29" * 200, 400, scim_type="invalidFilter", detail="nested deeper"),
    authenticated("filter-17-parentheses", f"{P}/Users?filter=" + "%28" * 17 + EQ_A + "%29" * 17, 400, scim_type="invalidFilter", detail="nested deeper"),
    authenticated("filter-unbalanced-parentheses", f"{P}/Users?filter=" + "%28" * 10 + EQ_A, 400, scim_type="invalidFilter"),
    authenticated("filter-17-nots", f"{P}/Users?filter=" + "not%28" * 17 + EQ_A + "%29" * 17, 400, scim_type="invalidFilter", detail="nested deeper"),
    authenticated("filter-nested-brackets", f"{P}/Users?filter=" + "emails%5B" * 20 + q('value eq "a"') + "%5D" * 20, 400, scim_type="invalidFilter"),
    authenticated("filter-nul", f"{P}/Users?filter=" + q('userName eq "a') + "%00%22", 400, scim_type="invalidFilter"),
    authenticated("filter-invalid-utf8", f"{P}/Users?filter=" + q('userName eq "a') + "%FF%22", 400, scim_type="invalidValue"),
    authenticated("filter-repeated", f"{P}/Users?filter={EQ_A}&filter={EQ_A}", 400, scim_type="invalidValue"),
    authenticated("filter-injection-quote", f"{P}/Users?filter=" + q('userName eq "a" or "1" eq "1"'), 400, scim_type="invalidFilter"),
    authenticated("3000-unknown-parameters", f"{P}/Users?" + "&".join(f"p{i}=1" for i in range(3000)), 400, scim_type="invalidValue"),
    authenticated("count-100-digits", f"{P}/Users?count=" + "9" * 100, 400, scim_type="invalidValue"),
    authenticated("start-index-100-digits", f"{P}/Users?startIndex=" + "9" * 100, 400, scim_type="invalidValue"),
]

ALL_CASES = PATH_TRICKS + AUTHORIZATION_FORMS + BODY_ATTACKS + QUERY_ATTACKS


# ---------------------------------------------------------------------------------------------------
# The gateway


@pytest.fixture(scope="module")
def hostile_edge(run_dir, scim_upstream):
    """The shipped configuration (ports changed) in front of a recorder that forwards to
    scim2-server; its own Envoy, so its wasm stats count only what this module sent."""
    recorder = UpstreamRecorder(scim_upstream).start()
    try:
        with edge(run_dir, "envoy-hostile", recorder) as gw:
            yield gw
    finally:
        recorder.stop()


def assert_normal_request_works(gateway) -> None:
    mark = gateway.recorder.mark()
    answer = send(gateway.origin, "GET", f"{P}/Users?count=1", (BEARER,))
    assert answer.status == 200, answer.body
    assert answer.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert [(r.method, r.path) for r in gateway.recorder.since(mark)] == [("GET", "/v2/Users?count=1")]


def assert_scim_error(answer: Answer, case: Case) -> dict:
    assert answer.headers.get("content-type") == "application/scim+json", (answer.headers, answer.body[:300])
    body = answer.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(case.status)
    assert body["detail"]
    assert body.get("scimType") == case.scim_type, body
    if case.detail:
        assert case.detail in body["detail"], body
    return body


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_a_hostile_request_gets_its_answer_and_reaches_nothing(hostile_edge, case: Case):
    mark = hostile_edge.recorder.mark()
    answer = send(hostile_edge.origin, case.method, case.target, case.headers, case.body, case.chunked)

    assert answer.status == case.status, answer.body[:300]
    if case.layer == "filter":
        assert_scim_error(answer, case)
        if case.status == 401:
            sent_credential = any(name.lower() == "authorization" for name, _ in case.headers)
            assert answer.headers["www-authenticate"] == (CHALLENGE_INVALID if sent_credential else CHALLENGE)
    elif case.layer == "routes":
        assert ROUTE_TABLE_404 in answer.body.decode()
    else:  # Envoy's own answer: never a SCIM body, and the filter never saw the request
        assert answer.headers.get("content-type") != "application/scim+json"
    assert hostile_edge.recorder.since(mark) == [], "a hostile request reached the upstream"
    assert_normal_request_works(hostile_edge)


# ---------------------------------------------------------------------------------------------------
# What must be served (and how)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(hostile_edge, scheme):
    mark = hostile_edge.recorder.mark()
    answer = send(hostile_edge.origin, "GET", f"{P}/Users?count=1", (("Authorization", f"{scheme} {TOKEN}"),))
    assert answer.status == 200
    [seen] = hostile_edge.recorder.since(mark)
    assert seen.headers["authorization"] == f"Bearer {stack.UPSTREAM_TOKEN}"


@pytest.mark.parametrize(
    "target, upstream",
    [
        (f"{P}/Groups/../Users?count=1", "/v2/Users?count=1"),
        (f"{P}/%2e%2e/v2/Users?count=1", "/v2/Users?count=1"),
        ("//api//scim/v2//./Users?count=1", "/v2/Users?count=1"),
        # Envoy's normaliser takes `..;` as `..`, and `\` as `/`.
        (f"{P}/Users/..;/Groups", "/v2/Groups"),
        (f"{P}/Users;x/../Groups", "/v2/Groups"),
        (f"{P}/Users\\..\\Groups", "/v2/Groups"),
        # RFC 7644 §3.4.2.4: a negative count is 0.
        (f"{P}/Users?count=-" + "9" * 100, "/v2/Users?count=0"),
    ],
)
def test_authenticated_tricks_inside_the_prefix_are_served_as_what_they_resolve_to(hostile_edge, target, upstream):
    mark = hostile_edge.recorder.mark()
    answer = send(hostile_edge.origin, "GET", target, (BEARER,))
    assert answer.status == 200, answer.body
    assert [(r.method, r.path) for r in hostile_edge.recorder.since(mark)] == [("GET", upstream)]


def test_a_filter_on_an_unmapped_attribute_is_an_empty_list_at_the_edge(hostile_edge):
    """Under the omni profile `password` (like any attribute the mapping keeps from Omni) cannot
    match: the edge answers an empty ListResponse itself."""
    mark = hostile_edge.recorder.mark()
    answer = send(hostile_edge.origin, "GET", f"{P}/Users?filter=" + q("password pr"), (BEARER,))
    assert answer.status == 200
    assert answer.json()["totalResults"] == 0
    assert hostile_edge.recorder.since(mark) == []


def test_a_method_override_header_does_not_delete(hostile_edge):
    created = requests.post(f"{hostile_edge.base}/Users", headers=SCIM_JSON, json=new_user())
    assert created.status_code == 201, created.text
    user = f"{P}/Users/{created.json()['id']}"
    overrides = (("X-HTTP-Method-Override", "DELETE"), ("X-HTTP-Method", "DELETE"), ("X-Method-Override", "DELETE"))
    mark = hostile_edge.recorder.mark()

    answer = send(hostile_edge.origin, "GET", user, (BEARER, *overrides))

    assert answer.status == 200, answer.body
    assert answer.json()["id"] == created.json()["id"]
    [seen] = hostile_edge.recorder.since(mark)
    assert seen.method == "GET"
    assert not {"x-http-method-override", "x-http-method", "x-method-override"} & set(seen.headers)
    still_there = send(hostile_edge.origin, "GET", user, (BEARER,))
    assert still_there.status == 200, "the user was deleted"
    assert requests.delete(f"{hostile_edge.base}/Users/{created.json()['id']}", headers=AUTH).status_code == 204


def test_a_huge_number_in_a_filter_is_forwarded_as_written_and_the_answer_is_scim(hostile_edge):
    """A number literal is grammatical whatever its size (RFC 7644 §3.4.2.2 takes JSON's number);
    the edge passes it on as written, and the upstream's own answer comes back."""
    for literal in ["9" * 100, "1e999"]:
        mark = hostile_edge.recorder.mark()
        answer = send(hostile_edge.origin, "GET", f"{P}/Users?filter=" + q(f"meta.version eq {literal}"), (BEARER,))
        assert answer.headers["content-type"] == "application/scim+json"
        body = answer.json()
        if answer.status == 200:
            assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
        else:
            assert answer.status == 400 and body["schemas"] == [ERROR_SCHEMA] and body["status"] == "400", body
        [seen] = hostile_edge.recorder.since(mark)
        assert q(literal) in seen.path or literal in seen.path, seen.path
    assert_normal_request_works(hostile_edge)


def custom_attribute_user(number: str) -> bytes:
    name = f"hn-{uuid.uuid4().hex[:8]}@example.com"
    return (
        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","' + OMNI_ATTRIBUTES + '"],'
        f'"userName":"{name}","displayName":"A","{OMNI_ATTRIBUTES}":{{"n":{number}}}}}'
    ).encode()


@pytest.fixture(scope="module")
def custom_attribute_edge(run_dir, scim_upstream):
    """The shipped plugin with one Omni custom attribute mapped (where any JSON value passes)."""
    import yaml

    plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    plugin["mapping"]["users"]["add"] = [f"{OMNI_ATTRIBUTES}:n"]
    recorder = UpstreamRecorder(scim_upstream).start()
    try:
        with edge(run_dir, "envoy-hostile-custom", recorder, plugin) as gw:
            yield gw
    finally:
        recorder.stop()


@pytest.mark.parametrize("number", ["1e999", "1" + "0" * 400, "-1e999", "12345678901234567890", "1e308"])
def test_an_out_of_range_number_in_a_custom_attribute_is_refused(custom_attribute_edge, number):
    mark = custom_attribute_edge.recorder.mark()
    answer = send(custom_attribute_edge.origin, "POST", f"{P}/Users", (BEARER, SCIM_CT), custom_attribute_user(number))
    assert answer.status == 400
    assert answer.json()["scimType"] == "invalidValue"
    assert custom_attribute_edge.recorder.since(mark) == []
    assert_normal_request_works(custom_attribute_edge)


@pytest.mark.parametrize("number", ["123456789012345678", "-922337203685477580", "0.5", "1e22", "3.14159"])
def test_a_large_number_in_a_custom_attribute_is_forwarded_as_a_plain_value(custom_attribute_edge, number):
    mark = custom_attribute_edge.recorder.mark()
    answer = send(custom_attribute_edge.origin, "POST", f"{P}/Users", (BEARER, SCIM_CT), custom_attribute_user(number))
    # scim2-server knows no Omni extension and refuses it (its 400, relayed): a well-formed answer.
    assert answer.headers["content-type"] == "application/scim+json"
    assert answer.json()["status"] == str(answer.status) or answer.status == 201
    [seen] = custom_attribute_edge.recorder.since(mark)
    forwarded = json.loads(seen.body)[OMNI_ATTRIBUTES]["n"]
    assert forwarded == json.loads(number)
    assert_normal_request_works(custom_attribute_edge)


@pytest.mark.parametrize("number", ["9" * 100, "-" + "9" * 100, "1.5e-400"], ids=["100-digits", "minus-100-digits", "1.5e-400"])
def test_a_number_beyond_64_bits_in_a_custom_attribute_is_refused_or_forwarded_unchanged(custom_attribute_edge, number):
    mark = custom_attribute_edge.recorder.mark()
    answer = send(custom_attribute_edge.origin, "POST", f"{P}/Users", (BEARER, SCIM_CT), custom_attribute_user(number))
    assert answer.headers["content-type"] == "application/scim+json"
    seen = custom_attribute_edge.recorder.since(mark)
    if answer.status == 400 and not seen:
        return  # refused at the edge: fine
    [seen] = seen
    raw = seen.body.decode()
    assert f'"n":{number}' in raw.replace(" ", ""), f"the upstream got {raw}"


def test_no_hostile_request_failed_the_vm(hostile_edge, custom_attribute_edge):
    for gw in (hostile_edge, custom_attribute_edge):
        assert_normal_request_works(gw)
        assert_vm_never_failed(gw)
