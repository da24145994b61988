#!/usr/bin/env python3
"""`make soak`: Entra-shaped load through Envoy + scim-edge for SOAK_SECONDS (default 600) with wrk.

    .venv/bin/python bench/soak.py            # SOAK_SECONDS, SOAK_CONNECTIONS, SOAK_THREADS

What runs (everything on 127.0.0.1, every process started here is stopped here):
- the upstream: a small SCIM stand-in (`soak.py --upstream PORT`, below): asyncio, Omni-shaped
  answers, a bounded in-memory store, strict about what it accepts (canonical PatchOps only, like
  Omni and scim2-server). Not scim2-server: it is single-threaded, its store (and the time of every
  filtered lookup, a linear scan) grows with every create, so after a few minutes of creates it
  would be the bottleneck and the thing measured. The soak is about Envoy + the filter.
- Envoy 1.40 from the project venv on the shipped envoy/envoy.yaml (local_stack.render: free ports,
  `--concurrency 2`), with one plugin change: `rate_limit` raised to its maximum (1000000/min,
  burst 1000000), so the budget's token bucket (shared data, CAS) still runs on every request but
  never runs dry: a 429 is an unexpected status here.
- a warm-up that creates SOAK_WARMUP_USERS users and SOAK_WARMUP_GROUPS groups through the edge,
- wrk (Debian's) with bench/entra_mix.lua for the duration (`--latency`),
- a sampler: Envoy's /memory (allocated, heap_size) and the Envoy process' RSS every 10 s.

It writes .run/soak/summary.json and .run/soak/summary.md, prints the markdown, and exits 1 when a
status outside EXPECTED_STATUSES was seen, wrk counted socket errors or timeouts, the wasm VM was
reloaded, Envoy died, or memory grew over the thresholds in the second half of the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))

RUN_DIR = ROOT / ".run" / "soak"
LUA = ROOT / "bench" / "entra_mix.lua"
EXPECTED_STATUSES = {200, 201, 204}
SAMPLE_EVERY = 10.0
# Memory growth allowed over the second half of the run (least-squares slope). 10 minutes of a
# leak at this rate is 2.5 MiB; at the thousands of req/s measured here it is under 1 byte a request,
# so a leak of anything per request (a header, a body, a map entry: tens to hundreds of bytes)
# is far above it, while allocator noise from in-flight requests (16 connections, ~1 MiB) fitting
# a 5-minute window stays below it.
ALLOCATED_SLOPE_LIMIT_KIB_MIN = 256.0
RSS_SLOPE_LIMIT_KIB_MIN = 512.0


# --------------------------------------------------------------------------------------------
# The upstream stand-in
# --------------------------------------------------------------------------------------------

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OMNI_ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
STORE_LIMIT = 20000  # users kept (oldest evicted first; the warm-up's are kept for good)
MEMBER_LIMIT = 2000  # members kept per group
FILTER_EQ = re.compile(r'^(\w+) eq "([^"]*)"$')
MEMBER_PATH = re.compile(r'^members\[value eq "([^"]+)"\]$')


class StandIn:
    """Omni-shaped SCIM answers from a bounded in-memory store, strict about what it accepts."""

    def __init__(self, token: str, port: int):
        self.auth = f"Bearer {token}".encode()
        self.base = f"http://127.0.0.1:{port}/v2"  # per request: from Host, as scim2-server and Omni build URLs
        self.users: OrderedDict[str, dict] = OrderedDict()
        self.by_name: dict[str, str] = {}
        self.pinned: set[str] = set()
        self.groups: dict[str, dict] = {}
        self.pin = True  # until the first request without the warm-up header

    def user_doc(self, user: dict) -> dict:
        doc = {
            "schemas": [USER_SCHEMA, OMNI_ATTRIBUTES],
            "id": user["id"],
            "userName": user["userName"],
            "displayName": user.get("displayName"),
            "active": user.get("active", True),
            # Omni's read-only system attributes come back on every user; the omni mapping strips them.
            OMNI_ATTRIBUTES: {"omni_user_id": user["id"], "omni_is_org_admin": False, "omni_user_timezone": None},
            "meta": {"resourceType": "User", "created": user["created"], "lastModified": user["modified"],
                     "location": f"{self.base}/Users/{user['id']}"},
        }
        return {k: v for k, v in doc.items() if v is not None}

    def group_doc(self, group: dict, members: bool = True) -> dict:
        doc = {"schemas": [GROUP_SCHEMA], "id": group["id"], "displayName": group["displayName"],
               "meta": {"resourceType": "Group", "created": group["created"], "lastModified": group["modified"],
                        "location": f"{self.base}/Groups/{group['id']}"}}
        if members:
            doc["members"] = [{"value": m, "$ref": f"{self.base}/Users/{m}"} for m in group["members"]]
        return doc

    @staticmethod
    def error(status: int, detail: str, scim_type: str | None = None):
        body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
        if scim_type:
            body["scimType"] = scim_type
        return status, body

    @staticmethod
    def listing(resources: list[dict]):
        return 200, {"schemas": [LIST_SCHEMA], "totalResults": len(resources), "startIndex": 1,
                     "itemsPerPage": len(resources), "Resources": resources}

    def handle(self, method: str, target: str, headers: dict[str, bytes], body: bytes):
        if headers.get("authorization") != self.auth:
            return self.error(401, "Authentication failed")
        # meta.location, Location and members' $ref name the upstream as the client reached it (the
        # edge's callouts send `:authority: scim-upstream`), so the edge's URL rewriting runs.
        self.base = f"http://{headers.get('host', b'127.0.0.1').decode('latin-1')}/v2"
        url = urllib.parse.urlsplit(target)
        parts = url.path.split("/")[1:]  # ["v2", "Users", id?]
        if len(parts) < 2 or parts[0] != "v2" or parts[1] not in ("Users", "Groups"):
            return self.error(404, "Resource not found")
        resource, rid = parts[1], (parts[2] if len(parts) > 2 else None)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return self.error(400, "Request is unparsable, syntactically incorrect, or violates schema.", "invalidSyntax")
        if method == "GET" and rid is None:
            query = urllib.parse.parse_qs(url.query)
            match = FILTER_EQ.match(query.get("filter", [""])[0])
            if not match:
                return self.error(400, "unsupported filter", "invalidFilter")
            attribute, value = match.groups()
            if resource == "Users":
                found = self.by_name.get(value) if attribute == "userName" else None
                return self.listing([self.user_doc(self.users[found])] if found in self.users else [])
            members = "members" not in query.get("excludedAttributes", [""])[0]
            return self.listing([self.group_doc(g, members) for g in self.groups.values()
                                 if attribute == "displayName" and g["displayName"] == value])
        if method == "POST" and rid is None:
            if not isinstance(data, dict) or (USER_SCHEMA if resource == "Users" else GROUP_SCHEMA) not in data.get("schemas", []):
                return self.error(400, "schemas", "invalidValue")
            new_id = str(uuid.uuid4())
            if resource == "Groups":
                group = {"id": new_id, "displayName": data["displayName"], "members": OrderedDict(),
                         "created": now, "modified": now}
                self.groups[new_id] = group
                return 201, self.group_doc(group)
            name = data.get("userName")
            if not isinstance(name, str) or not isinstance(data.get("active", True), bool):
                return self.error(400, "userName/active", "invalidValue")
            if name in self.by_name:
                return self.error(409, "userName is not unique", "uniqueness")
            user = {"id": new_id, "userName": name, "displayName": data.get("displayName"),
                    "active": data.get("active", True), "created": now, "modified": now}
            self.users[new_id] = user
            self.by_name[name] = new_id
            if self.pin:
                self.pinned.add(new_id)
            while len(self.users) > STORE_LIMIT:
                old_id, old = next(iter(self.users.items()))
                if old_id in self.pinned:
                    self.users.move_to_end(old_id)
                    continue
                del self.users[old_id]
                del self.by_name[old["userName"]]
            return 201, self.user_doc(user)
        if method == "PATCH" and rid is not None:
            store = self.users if resource == "Users" else self.groups
            if rid not in store:
                return self.error(404, f"{resource[:-1]} {rid} not found")
            if not isinstance(data, dict) or data.get("schemas") != [PATCH_SCHEMA]:
                return self.error(400, "schemas", "invalidValue")
            operations = data.get("Operations")
            if not isinstance(operations, list) or not operations:
                return self.error(400, "Operations", "invalidValue")
            item = store[rid]
            for op in operations:
                # Canonical RFC 7644 only, as Omni and scim2-server take them: the edge's job.
                if op.get("op") not in ("add", "remove", "replace"):
                    return self.error(400, f"op {op.get('op')!r}", "invalidValue")
                path = op.get("path")
                if resource == "Users":
                    if op["op"] != "remove" and "value" not in op:
                        return self.error(400, "value required", "invalidValue")
                    if path == "active":
                        if not isinstance(op["value"], bool):
                            return self.error(400, "active must be a boolean", "invalidValue")
                        item["active"] = op["value"]
                    elif path == "displayName":
                        item["displayName"] = op["value"]
                    elif path is None:
                        if not isinstance(op["value"], dict) or any("." in k for k in op["value"]):
                            return self.error(400, "pathless value keys", "invalidPath")
                        item.update({k: v for k, v in op["value"].items() if k in ("displayName", "active")})
                    else:
                        return self.error(400, f"path {path!r} not supported", "invalidPath")
                else:
                    members = item["members"]
                    if op["op"] == "add" and path == "members" and isinstance(op.get("value"), list):
                        for member in op["value"]:
                            if set(member) != {"value"}:
                                return self.error(400, "member keys", "invalidValue")
                            members[member["value"]] = True
                        while len(members) > MEMBER_LIMIT:
                            members.popitem(last=False)
                    elif op["op"] == "remove" and MEMBER_PATH.match(path or ""):
                        members.pop(MEMBER_PATH.match(path).group(1), None)
                    else:
                        return self.error(400, f"group operation {op['op']} {path!r}", "invalidPath")
            item["modified"] = now
            if resource == "Users":
                return 200, self.user_doc(item)
            return 204, None
        return self.error(405, "method not allowed here")


class StandInProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies (what Envoy's callouts send)."""

    def __init__(self, app: StandIn):
        self.app = app
        self.buffer = b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip().encode("latin-1")
            if b"chunked" in headers.get("transfer-encoding", b""):
                self.transport.write(b"HTTP/1.1 411 Length Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()
                return
            length = int(headers.get("content-length", b"0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            try:
                status, doc = self.app.handle(method, target, headers, body)
            except Exception as exc:  # a stand-in bug must show as a 500, not a dead connection
                status, doc = StandIn.error(500, f"stand-in: {type(exc).__name__}: {exc}")
            payload = json.dumps(doc, separators=(",", ":")).encode() if doc is not None else b""
            lines = [f"HTTP/1.1 {status} X", f"content-length: {len(payload)}"]
            if payload:
                lines.append("content-type: application/scim+json")
            if status == 201:
                lines.append(f"location: {doc['meta']['location']}")
            self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)


def serve_upstream(port: int, token: str) -> None:
    app = StandIn(token, port)

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: StandInProtocol(app), "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    # The soak marks the end of its warm-up by touching this file: users created after it are
    # evictable, the warm-up's stay (the load's PATCHes and lookups target them).
    def watch():
        marker = RUN_DIR / "warmup.done"
        while not marker.exists():
            time.sleep(0.2)
        app.pin = False

    threading.Thread(target=watch, daemon=True).start()
    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# The soak
# --------------------------------------------------------------------------------------------


def http_json(url: str, method: str = "GET", body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/scim+json")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return response.status, (json.loads(raw) if raw else None)


def envoy_stats(admin: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{admin}/stats?format=json", timeout=10) as r:
        return {s["name"]: s["value"] for s in json.load(r)["stats"] if "value" in s}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sample_memory(admin: str, pid: int, t0: float) -> dict:
    with urllib.request.urlopen(f"{admin}/memory", timeout=10) as r:
        memory = json.load(r)
    return {"t": round(time.monotonic() - t0, 1), "allocated": int(memory["allocated"]),
            "heap_size": int(memory["heap_size"]), "rss": rss_bytes(pid)}


def slope_kib_per_min(samples: list[dict], key: str) -> float:
    """Least-squares slope of samples[key] over t, in KiB per minute."""
    if len(samples) < 3:
        return 0.0
    xs = [s["t"] for s in samples]
    ys = [s[key] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * 60 / 1024


def warm_up(base: str, token: str, users: int, groups: int, run: str) -> dict:
    pool = {"users": [], "groups": []}
    for i in range(users):
        name = f"warm-{run}-{i}@example.com"
        external = str(uuid.uuid4())
        status, doc = http_json(f"{base}/Users", "POST", {
            "schemas": [USER_SCHEMA], "externalId": external, "userName": name, "active": True,
            "displayName": f"Warm {i}", "meta": {"resourceType": "User"}}, token)
        assert status == 201, (status, doc)
        pool["users"].append({"id": doc["id"], "userName": name, "externalId": external})
    for i in range(groups):
        name = f"soak-group-{run}-{i}"
        status, doc = http_json(f"{base}/Groups", "POST", {
            "schemas": [GROUP_SCHEMA, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": str(uuid.uuid4()), "displayName": name, "meta": {"resourceType": "Group"}}, token)
        assert status == 201, (status, doc)
        pool["groups"].append({"id": doc["id"], "displayName": name})
    return pool


def lua_table(pool: dict) -> str:
    def entry(d):
        return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in d.items()) + "}"

    return ("return {\n  users = {\n" + ",\n".join("    " + entry(u) for u in pool["users"]) + "\n  },\n"
            "  groups = {\n" + ",\n".join("    " + entry(g) for g in pool["groups"]) + "\n  },\n}\n")


def scan_envoy_log(path: Path) -> dict:
    """Counts Envoy's warning/error/critical lines and wasm panics."""
    counts = {"lines": 0, "warning": 0, "error": 0, "critical": 0, "wasm_panics": 0}
    examples: list[str] = []
    with open(path, "rb") as log:
        for raw in log:
            counts["lines"] += 1
            if b"][info][" in raw:
                continue
            line = raw.decode("utf-8", "replace").rstrip()
            for level in ("warning", "error", "critical"):
                if f"][{level}][" in line:
                    counts[level] += 1
                    if len(examples) < 5:
                        examples.append(line[:300])
            if "panicked" in line or "Function: proxy_on_" in line:
                counts["wasm_panics"] += 1
    return {**counts, "examples": examples}


def trim_log(path: Path, keep_bytes: int = 1 << 20) -> None:
    """The filter logs one info line per request (hundreds of MB in 10 minutes): keep the tail."""
    if path.exists() and (size := path.stat().st_size) > keep_bytes:
        with open(path, "rb") as log:
            log.seek(size - keep_bytes)
            tail = log.read()
        path.write_bytes(b"[soak.py: trimmed to the last %d bytes]\n" % keep_bytes + tail[tail.find(b"\n") + 1 :])


def fmt_ms(us: float) -> str:
    return f"{us / 1000:.2f} ms"


def mib(n: float) -> str:
    return f"{n / 1048576:.1f} MiB"


def markdown(s: dict) -> str:
    lat = s["latency_us"]
    mem_b, mem_a = s["memory"]["before"], s["memory"]["after"]
    trend = s["memory"]["trend_second_half_kib_per_min"]
    lines = [
        f"### Soak: {s['duration_s']:.0f} s, {s['connections']} connections, {s['threads']} wrk threads "
        f"({s['wrk_version']}), {s['started_utc']}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| requests | {s['requests']} ({s['requests_per_s']:.0f} req/s) |",
        f"| latency p50 / p75 / p90 / p99 / p99.9 / max | {fmt_ms(lat['p50'])} / {fmt_ms(lat['p75'])} / "
        f"{fmt_ms(lat['p90'])} / {fmt_ms(lat['p99'])} / {fmt_ms(lat['p99.9'])} / {fmt_ms(lat['max'])} |",
        f"| status histogram | {', '.join(f'{k}: {v}' for k, v in sorted(s['statuses'].items()))} |",
        f"| unexpected statuses | {', '.join(map(str, s['unexpected_statuses'])) or 'none'} |",
        f"| wrk socket errors / timeouts | connect {s['wrk_errors']['connect']}, read {s['wrk_errors']['read']}, "
        f"write {s['wrk_errors']['write']}, timeout {s['wrk_errors']['timeout']} |",
        f"| Envoy allocated (before → after) | {mib(mem_b['allocated'])} → {mib(mem_a['allocated'])} "
        f"(peak {mib(s['memory']['peak']['allocated'])}) |",
        f"| Envoy heap_size (before → after) | {mib(mem_b['heap_size'])} → {mib(mem_a['heap_size'])} |",
        f"| Envoy RSS (before → after) | {mib(mem_b['rss'])} → {mib(mem_a['rss'])} (peak {mib(s['memory']['peak']['rss'])}) |",
        f"| Envoy memory samples | {len(s['memory']['samples'])}, every {SAMPLE_EVERY:.0f} s (in summary.json) |",
        f"| trend, 2nd half (least squares) | allocated {trend['allocated']:+.1f} KiB/min (limit {ALLOCATED_SLOPE_LIMIT_KIB_MIN:.0f}), "
        f"RSS {trend['rss']:+.1f} KiB/min (limit {RSS_SLOPE_LIMIT_KIB_MIN:.0f}) over {trend['samples']} samples |",
        f"| wasm VM reloads | {', '.join(f'{k.split(chr(46))[-1]}={v}' for k, v in sorted(s['vm_reload'].items()))} |",
        f"| filter responses by class | {', '.join(f'{k}: {v}' for k, v in sorted(s['filter_responses'].items()))} |",
        f"| requests by kind (wrk) | {', '.join(f'{k}: {v}' for k, v in sorted(s['kinds'].items()))} |",
        f"| filtered lookups (ListResponses) | {s['lookups'].get('hit', 0)} found a resource, {s['lookups'].get('miss', 0)} found none; answers naming the upstream or carrying Omni system attributes: {s['lookups'].get('leak', 0)} |",
        f"| Envoy log | {s['envoy_log']['lines']} lines: {s['envoy_log']['warning']} warning, {s['envoy_log']['error']} error, "
        f"{s['envoy_log']['critical']} critical, {s['envoy_log']['wasm_panics']} wasm panics |",
        f"| filter normalisations | {', '.join(f'{k}: {v}' for k, v in sorted(s['normalised'].items()))} |",
        f"| verdict | {'held' if s['ok'] else 'FAILED: ' + '; '.join(s['failures'])} |",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    import local_stack as stack

    seconds = int(os.environ.get("SOAK_SECONDS", "600"))
    connections = int(os.environ.get("SOAK_CONNECTIONS", "16"))
    threads = int(os.environ.get("SOAK_THREADS", "2"))
    warm_users = int(os.environ.get("SOAK_WARMUP_USERS", "200"))
    warm_groups = int(os.environ.get("SOAK_WARMUP_GROUPS", "20"))
    wrk = shutil.which("wrk")
    if not wrk:
        print("wrk not found: `make soak` installs it (apt-get install -y wrk)", file=sys.stderr)
        return 2
    if not stack.WASM.exists():
        print(f"{stack.WASM} is missing: run 'make build'", file=sys.stderr)
        return 2
    wrk_version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("[")[0].strip() \
        or "wrk"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "warmup.done").unlink(missing_ok=True)
    run = uuid.uuid4().hex[:8]

    services: list = []
    wrk_process = None
    try:
        upstream_port = stack.free_port()
        upstream = stack.Service(
            "soak-upstream",
            [sys.executable, str(Path(__file__).resolve()), "--upstream", str(upstream_port)],
            RUN_DIR / "upstream.log",
        ).start()
        services.append(upstream)
        stack.wait_for(f"stand-in on 127.0.0.1:{upstream_port}", lambda: stack.port_open(upstream_port), upstream)

        import yaml

        plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
        plugin["rate_limit"] = {"requests_per_minute": 1000000, "burst": 1000000}
        listen, admin_port = stack.free_port(), stack.free_port()
        config = stack.render(listen_port=listen, admin_port=admin_port, upstream_port=upstream_port, plugin=plugin)
        envoy = stack.start_envoy(config, admin_port, RUN_DIR, name="envoy")
        services.append(envoy)
        admin = f"http://127.0.0.1:{admin_port}"
        base = f"http://127.0.0.1:{listen}{stack.SCIM_PREFIX}"
        pid = envoy.process.pid  # the envoy console script execs the binary: same pid

        print(f"soak: Envoy {base} (admin {admin}), stand-in upstream 127.0.0.1:{upstream_port}", flush=True)
        print(f"soak: warm-up: {warm_users} users, {warm_groups} groups", flush=True)
        pool = warm_up(base, stack.CLIENT_TOKEN, warm_users, warm_groups, run)
        (RUN_DIR / "pool.lua").write_text(lua_table(pool))
        (RUN_DIR / "warmup.done").touch()
        time.sleep(0.5)
        stats_before = envoy_stats(admin)

        t0 = time.monotonic()
        samples = [sample_memory(admin, pid, t0)]
        print(f"soak: wrk -t{threads} -c{connections} -d{seconds}s for {seconds} s "
              f"(Envoy allocated {mib(samples[0]['allocated'])}, RSS {mib(samples[0]['rss'])})", flush=True)
        wrk_log = open(RUN_DIR / "wrk.txt", "w")
        wrk_process = subprocess.Popen(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
             "-s", str(LUA), base],
            stdin=subprocess.DEVNULL, stdout=wrk_log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "SOAK_POOL": str(RUN_DIR / "pool.lua"), "SOAK_RUN": run, "SOAK_TOKEN": stack.CLIENT_TOKEN},
        )
        deadline = t0 + seconds + 60  # wrk stops itself after `seconds`; this is the backstop
        next_sample = t0 + SAMPLE_EVERY
        envoy_died = False
        while wrk_process.poll() is None:
            if time.monotonic() > deadline:
                wrk_process.kill()
                break
            if not envoy.running():
                envoy_died = True
                wrk_process.kill()
                break
            if time.monotonic() >= next_sample:
                samples.append(sample_memory(admin, pid, t0))
                next_sample += SAMPLE_EVERY
                if len(samples) % 6 == 1:
                    last = samples[-1]
                    print(f"soak: {last['t']:.0f} s: allocated {mib(last['allocated'])}, RSS {mib(last['rss'])}", flush=True)
            time.sleep(0.2)
        wrk_process.wait()
        wrk_log.close()
        wrk_text = (RUN_DIR / "wrk.txt").read_text(errors="replace")
        if envoy_died or not envoy.running():
            print(wrk_text[-3000:], file=sys.stderr)
            print(f"soak: Envoy died: see {envoy.log_path}", file=sys.stderr)
            return 1
        time.sleep(1.0)  # let in-flight callouts finish
        after = sample_memory(admin, pid, t0)
        stats_after = envoy_stats(admin)

        envoy_log = scan_envoy_log(envoy.log_path)
        match = re.search(r"^SOAK_RESULT (\{.*\})$", wrk_text, re.M)
        if not match:
            print(wrk_text[-3000:], file=sys.stderr)
            print("soak: wrk printed no SOAK_RESULT line", file=sys.stderr)
            return 1
        result = json.loads(match.group(1))

        def delta(prefix: str) -> dict[str, int]:
            return {k.removeprefix(prefix): v - stats_before.get(k, 0) for k, v in stats_after.items()
                    if k.startswith(prefix) and v - stats_before.get(k, 0)}

        half = [s for s in samples if s["t"] >= seconds / 2]
        trend = {"allocated": slope_kib_per_min(half, "allocated"), "heap_size": slope_kib_per_min(half, "heap_size"),
                 "rss": slope_kib_per_min(half, "rss"), "samples": len(half)}
        statuses = {int(k): v for k, v in result["statuses"].items()}
        unexpected = sorted(set(statuses) - EXPECTED_STATUSES)
        vm_reload = {k: v for k, v in stats_after.items() if k.startswith("wasm.scim_edge.vm_reload")}
        errors = result["errors"]
        failures = []
        if unexpected:
            failures.append(f"unexpected statuses {unexpected}")
        if any(errors[k] for k in ("connect", "read", "write", "timeout")):
            failures.append(f"wrk socket errors {errors}")
        if any(vm_reload.values()):
            failures.append(f"wasm VM reloads {vm_reload}")
        if trend["allocated"] > ALLOCATED_SLOPE_LIMIT_KIB_MIN:
            failures.append(f"allocated grows {trend['allocated']:.0f} KiB/min")
        if trend["rss"] > RSS_SLOPE_LIMIT_KIB_MIN:
            failures.append(f"RSS grows {trend['rss']:.0f} KiB/min")
        if envoy_log["critical"] or envoy_log["wasm_panics"]:
            failures.append(f"Envoy log: {envoy_log}")
        if result.get("lookups", {}).get("leak"):
            failures.append(f"{result['lookups']['leak']} answers named the upstream or carried Omni system attributes")
        if result["requests"] == 0:
            failures.append("no requests completed")
        duration = result["duration_us"] / 1e6
        summary = {
            "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() - (time.monotonic() - t0))),
            "duration_s": duration, "connections": connections, "threads": threads, "wrk_version": wrk_version,
            "machine": {"cores": os.cpu_count(), "loadavg_after": os.getloadavg()},
            "requests": result["requests"], "requests_per_s": result["requests"] / duration if duration else 0,
            "latency_us": result["latency_us"], "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "unexpected_statuses": unexpected, "wrk_errors": errors, "kinds": result["kinds"], "lookups": result.get("lookups", {}),
            "memory": {"before": samples[0], "after": after,
                       "peak": {k: max(s[k] for s in samples + [after]) for k in ("allocated", "heap_size", "rss")},
                       "trend_second_half_kib_per_min": trend,
                       "limits_kib_per_min": {"allocated": ALLOCATED_SLOPE_LIMIT_KIB_MIN, "rss": RSS_SLOPE_LIMIT_KIB_MIN},
                       "samples": samples},
            "vm_reload": vm_reload,
            "filter_responses": delta("wasmcustom.scim_edge.responses."),
            "filter_requests": delta("wasmcustom.scim_edge.requests."),
            "normalised": delta("wasmcustom.scim_edge.normalised."),
            "stripped": delta("wasmcustom.scim_edge.stripped."),
            "upstream_failures": delta("wasmcustom.scim_edge.upstream.failures."),
            "rate_limited": delta("wasmcustom.scim_edge.rate_limited").get("", 0),
            "envoy_downstream": {k: v for k, v in delta("http.scim_edge.").items() if k.startswith("downstream_rq_")},
            "envoy_log": envoy_log,
            "failures": failures, "ok": not failures,
        }
        (RUN_DIR / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        md = markdown(summary)
        (RUN_DIR / "summary.md").write_text(md)
        print()
        print(md)
        print(f"soak: wrote {RUN_DIR / 'summary.json'} and {RUN_DIR / 'summary.md'}")
        return 0 if summary["ok"] else 1
    finally:
        if wrk_process is not None and wrk_process.poll() is None:
            wrk_process.kill()
            wrk_process.wait()
        for service in reversed(services):
            service.stop()
            trim_log(service.log_path)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--upstream":
        sys.path.insert(0, str(ROOT / "envoy"))
        import local_stack as _stack

        serve_upstream(int(sys.argv[2]), _stack.UPSTREAM_TOKEN)
    else:
        sys.exit(main())
