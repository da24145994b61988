"""An HTTP hop between Envoy and the upstream that records every request it relays, so tests can
assert what reached the upstream (and that nothing did). It can also misbehave on purpose."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    received: float = field(default_factory=time.monotonic)  # when it reached the upstream


SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def scim_error_body(status: int, detail: str) -> bytes:
    return json.dumps({"schemas": [SCIM_ERROR_SCHEMA], "status": str(status), "detail": detail}).encode()


def list_response_of_size(size: int) -> bytes:
    """A SCIM ListResponse of one user, padded (in `displayName`) to at least `size` bytes."""

    def body(padding: int) -> bytes:
        user = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "big@example.com",
            "displayName": "x" * padding,
        }
        listed = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 1,
            "startIndex": 1,
            "itemsPerPage": 1,
            "Resources": [user],
        }
        return json.dumps(listed).encode()

    return body(max(0, size - len(body(0))))


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a cut connection is the point of some tests
        pass


class UpstreamRecorder:
    """Listens on 127.0.0.1:<port>; `behaviour` decides what happens to each request:
    "forward" (to the real upstream), "close" (drop the connection unanswered), "hang" (answer
    nothing for `hang_seconds`), "html" (a 200 text/html page),
    "throttle" (429 with a SCIM error body and `Retry-After: <retry_after>`, no header when
    `retry_after` is None), "throttle_text" (429 text/plain, same header rule),
    "error_json" (`error_status`, default 500, with a SCIM error body),
    "error_text" (`error_status` with a text/plain page),
    "reset_mid_body" (200 with headers and a Content-Length, half the body, then the connection
    closed), "big" (200 with a SCIM ListResponse of `big_bytes` bytes or more),
    "slow" (forward after `slow_seconds`), "no_content_with_body" (204 followed by a JSON body, the
    connection then closed, as some proxies and API gateways send it), "no_content_with_length" (the
    same with a Content-Length), "flap" (every other request dropped unanswered, as
    "close", the others forwarded), "scripted" (`script`: status, content type, body bytes and
    extra headers, answered as they are). `down()` makes it an upstream that is not there (the port
    refuses connections, open connections are cut) until `up()`."""

    def __init__(self, target_port: int | None):
        self.target_port = target_port
        self.behaviour = "forward"
        self.hang_seconds = 3.0
        self.retry_after: str | None = "7"
        self.error_status = 500
        self.big_bytes = 8192
        self.slow_seconds = 0.3
        self.script: tuple[int, str, bytes, dict[str, str]] = (200, "application/scim+json", b"{}", {})
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._flaps = 0
        self._connections: set[socket.socket] = set()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def setup(self):
                super().setup()
                with recorder._lock:
                    recorder._connections.add(self.connection)

            def finish(self):
                with recorder._lock:
                    recorder._connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:  # cut by down()
                    pass

            def handle_one(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with recorder._lock:
                    recorder.requests.append(Recorded(self.command, self.path, headers, body))
                behaviour = recorder.behaviour
                if behaviour == "close":
                    self.close_connection = True
                    return
                if behaviour == "hang":
                    time.sleep(recorder.hang_seconds)
                    self.close_connection = True
                    return
                if behaviour == "scripted":
                    status, content_type, body, extra = recorder.script
                    return self.answer(status, content_type, body, extra)
                if behaviour == "html":
                    return self.answer(200, "text/html", b"<html><body>maintenance</body></html>")
                if behaviour in ("throttle", "throttle_text"):
                    extra = {"retry-after": recorder.retry_after} if recorder.retry_after is not None else {}
                    if behaviour == "throttle":
                        body = scim_error_body(429, "Too many requests")
                        return self.answer(429, "application/scim+json", body, extra)
                    return self.answer(429, "text/plain", b"Too Many Requests", extra)
                if behaviour == "error_json":
                    body = scim_error_body(recorder.error_status, "The user store failed")
                    return self.answer(recorder.error_status, "application/scim+json", body)
                if behaviour == "error_text":
                    return self.answer(recorder.error_status, "text/plain", b"Internal Server Error")
                if behaviour == "reset_mid_body":
                    body = scim_error_body(200, "x" * 200)  # any JSON; only half of it is sent
                    self.send_response(200)
                    self.send_header("content-type", "application/scim+json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if behaviour == "no_content_with_length":
                    return self.answer(204, "application/json", b'{"status":"deleted"}')
                if behaviour == "no_content_with_body":
                    self.send_response(204)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"status":"deleted"}')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if behaviour == "big":
                    return self.answer(200, "application/scim+json", list_response_of_size(recorder.big_bytes))
                if behaviour == "slow":
                    time.sleep(recorder.slow_seconds)
                if behaviour == "flap":
                    with recorder._lock:
                        recorder._flaps += 1
                        drop = recorder._flaps % 2 == 1
                    if drop:
                        self.close_connection = True
                        return
                upstream = http.client.HTTPConnection("127.0.0.1", recorder.target_port, timeout=10)
                forwarded = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body=body or None, headers=forwarded)
                answer = upstream.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            def answer(self, status: int, content_type: str, body: bytes, extra: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("content-type", content_type)
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self._handler = Handler
        self._serve(0)

    def _serve(self, port: int) -> None:
        self.server = _QuietServer(("127.0.0.1", port), self._handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="recorder", daemon=True)
        self._running = False

    def start(self) -> "UpstreamRecorder":
        self._thread.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self.server.shutdown()
            self._running = False
        self.server.server_close()

    def down(self) -> None:
        """Gone: the port refuses connections and every open connection is cut."""
        self.stop()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def up(self) -> None:
        """Back on the same port after `down()`."""
        self._serve(self.port)
        self.start()

    def mark(self) -> int:
        """A position in the record; `since(mark)` returns what came after it."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[Recorded]:
        with self._lock:
            return list(self.requests[mark:])
