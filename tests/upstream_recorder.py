"""An HTTP hop between Envoy and the upstream that records every request it relays, so tests can
assert what reached the upstream (and that nothing did). It can also misbehave on purpose."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class UpstreamRecorder:
    """Listens on 127.0.0.1:<port>; `behaviour` decides what happens to each request:
    "forward" (to the real upstream), "close" (drop the connection unanswered), "hang" (answer
    nothing for `hang_seconds`), "html" (a 200 text/html page)."""

    def __init__(self, target_port: int | None):
        self.target_port = target_port
        self.behaviour = "forward"
        self.hang_seconds = 3.0
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
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
                if behaviour == "html":
                    page = b"<html><body>maintenance</body></html>"
                    self.send_response(200)
                    self.send_header("content-type", "text/html")
                    self.send_header("content-length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
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

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="recorder", daemon=True)

    def start(self) -> "UpstreamRecorder":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def mark(self) -> int:
        """A position in the record; `since(mark)` returns what came after it."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int) -> list[Recorded]:
        with self._lock:
            return list(self.requests[mark:])
