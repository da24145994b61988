"""HTTP/2 requests that end in trailers, through the real Envoy with a real HTTP/2 client (h2).

With trailers, no body callback carries `end_of_stream`: the filter must take the trailers as the
end of the request and check the body then. Before it did, Envoy's default for a callback the
filter does not handle (Continue) sent the request, body and client token included, on to the
router. Each case asserts what the client got and what reached the upstream.
"""

from __future__ import annotations

import json
import socket
import uuid

import h2.config
import h2.connection
import h2.events

import local_stack as stack
from support.scim import USER_SCHEMA


def h2_request(origin: str, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None,
               trailers: list[tuple[str, str]] | None) -> tuple[int, dict[str, str], bytes]:
    """One request over HTTP/2 cleartext (prior knowledge): HEADERS, then DATA when `body` is not
    None, then trailers (a HEADERS frame ending the stream) when given. Returns status, headers
    and body."""
    host, port = origin.removeprefix("http://").split(":")
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        request_headers = [(":method", method), (":path", path), (":scheme", "http"), (":authority", origin[7:]),
                           *headers]
        conn.send_headers(stream, request_headers, end_stream=body is None and not trailers)
        if body is not None:
            conn.send_data(stream, body, end_stream=not trailers)
        if trailers:
            conn.send_headers(stream, trailers, end_stream=True)
        sock.sendall(conn.data_to_send())
        status, response_headers, response_body = 0, {}, b""
        while True:
            data = sock.recv(65536)
            if not data:
                raise AssertionError("the connection closed before the response ended")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    response_headers = dict(event.headers)
                    status = int(response_headers[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    response_body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    return status, response_headers, response_body
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError(f"stream reset by the edge: {event.error_code}")
            sock.sendall(conn.data_to_send())


def scim_headers() -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {stack.CLIENT_TOKEN}"), ("content-type", "application/scim+json")]


def test_a_create_that_ends_in_trailers_is_checked_normalised_and_forwarded(gateway):
    name = f"h2-{uuid.uuid4().hex[:8]}@example.com"
    user = {"schemas": [USER_SCHEMA], "userName": name, "displayName": "H2 User", "active": "True",
            "groups": [{"value": "admins"}]}
    mark = gateway.recorder.mark()
    status, headers, body = h2_request(gateway.origin, "POST", f"{stack.SCIM_PREFIX}/Users", scim_headers(),
                                       json.dumps(user).encode(), [("x-trailer", "1")])
    assert status == 201, body
    assert headers["content-type"] == "application/scim+json"
    reached = gateway.recorder.since(mark)
    assert len(reached) == 1
    forwarded = json.loads(reached[0].body)
    assert forwarded["userName"] == name
    assert forwarded["active"] is True, "Entra's string boolean was normalised"
    assert "groups" not in forwarded, "a read-only attribute was stripped"
    assert reached[0].headers["authorization"] != f"Bearer {stack.CLIENT_TOKEN}", "the client token went upstream"


def test_an_invalid_body_that_ends_in_trailers_gets_a_scim_400_and_nothing_goes_upstream(gateway):
    mark = gateway.recorder.mark()
    status, headers, body = h2_request(gateway.origin, "POST", f"{stack.SCIM_PREFIX}/Users", scim_headers(),
                                       b'{"userName": ', [("x-trailer", "1")])
    assert status == 400
    assert headers["content-type"] == "application/scim+json"
    assert json.loads(body)["status"] == "400"
    assert gateway.recorder.since(mark) == []


def test_headers_then_trailers_with_no_data_is_an_empty_body(gateway):
    mark = gateway.recorder.mark()
    status, headers, body = h2_request(gateway.origin, "POST", f"{stack.SCIM_PREFIX}/Users", scim_headers(),
                                       None, [("x-trailer", "1")])
    assert status == 400
    assert json.loads(body)["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert gateway.recorder.since(mark) == []


def test_an_unauthenticated_request_that_ends_in_trailers_gets_401(gateway):
    mark = gateway.recorder.mark()
    status, _, body = h2_request(gateway.origin, "POST", f"{stack.SCIM_PREFIX}/Users",
                                 [("authorization", "Bearer wrong"), ("content-type", "application/scim+json")],
                                 b"{}", [("x-trailer", "1")])
    assert status == 401
    assert json.loads(body)["status"] == "401"
    assert gateway.recorder.since(mark) == []
