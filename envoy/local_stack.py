#!/usr/bin/env python3
"""The local scim-edge stack: scim2-server as the upstream user store, Envoy with the scim-edge
filter in front of it. `make run` runs `main()`; the end-to-end tests use the same pieces.

Everything here starts from envoy/envoy.yaml, the shipped configuration, and changes only ports,
the upstream address, the wasm path and (for tests) chosen plugin settings.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = ROOT / "envoy" / "envoy.yaml"
# The filter as `make build` leaves it: Cargo's module after wasm-opt.
WASM = ROOT / "target" / "filter" / "scim_edge.wasm"
# The Rust target the filter is built for (the Makefile's FILTER_TARGET).
FILTER_TARGET = "wasm32-unknown-unknown"
SCIM_PREFIX = "/api/scim/v2"
# Development-only secrets of the local stack (README, "The two commands").
CLIENT_TOKEN = "local-dev-token"
UPSTREAM_TOKEN = "local-upstream-token"
# The environment variable the shipped configs read the upstream credential from.
UPSTREAM_TOKEN_ENV = "SCIM_EDGE_UPSTREAM_TOKEN"
# OAuth client credentials at the edge (docs/authentication.md), development-only: the client of
# envoy.yaml's oauth section and the key its access tokens are signed with.
TOKEN_PATH = "/oauth2/token"
DEV_CLIENT_ID = "local-dev-client"
DEV_CLIENT_SECRET = "local-dev-client-secret"
TOKEN_KEY_ENV = "SCIM_EDGE_TOKEN_KEY"
TOKEN_KEY = "local-dev-signing-key-not-for-production"


def envoy_env(upstream_token: str = UPSTREAM_TOKEN) -> dict[str, str]:
    return {TOKEN_KEY_ENV: TOKEN_KEY, **os.environ, UPSTREAM_TOKEN_ENV: upstream_token}


def bin_path(name: str) -> str:
    """A console script of the project venv (the one running this file), else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run 'make setup' (it installs the project venv)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wasm_filter(config: dict) -> dict:
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                for http_filter in network_filter["typed_config"].get("http_filters", []):
                    if http_filter["name"] == "envoy.filters.http.wasm":
                        return http_filter["typed_config"]["config"]
    raise ValueError("no envoy.filters.http.wasm filter in the Envoy configuration")


def plugin_config(config: dict) -> dict:
    """The scim-edge plugin configuration (the JSON inside the StringValue)."""
    return json.loads(wasm_filter(config)["configuration"]["value"])


def render(
    *,
    listen_port: int,
    admin_port: int,
    upstream_port: int,
    upstream_host: str = "127.0.0.1",
    wasm: Path = WASM,
    plugin: dict | None = None,
    profile: str | None = None,
    base: Path = SHIPPED_CONFIG,
) -> dict:
    """The shipped Envoy configuration with other ports, the wasm at an absolute path and, when
    given, the plugin configuration replaced and/or the mapping profile (`omni`, `rfc`) set."""
    config = copy.deepcopy(yaml.safe_load(base.read_text()))
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = config["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = listen_port
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == "scim_upstream":
            address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            address["socket_address"].update(address=upstream_host, port_value=upstream_port)
    wasm_config = wasm_filter(config)
    wasm_config["vm_config"]["code"]["local"]["filename"] = str(wasm)
    plugin = copy.deepcopy(plugin) if plugin is not None else plugin_config(config)
    if profile is not None:
        plugin.setdefault("mapping", {})["profile"] = profile
    if "public_base_url" in plugin:
        # The URLs the edge hands out name the listener this stack really has.
        plugin["public_base_url"] = f"http://127.0.0.1:{listen_port}{SCIM_PREFIX}"
    wasm_config["configuration"]["value"] = json.dumps(plugin, indent=2)
    return config


def render_production(
    base: Path, *, listen_port: int, admin_port: int, upstream_port: int, wasm: Path = WASM
) -> dict:
    """A production-shaped configuration (envoy.omni.yaml and the files derived from it) made
    runnable on loopback: other ports, the `omni` cluster pointed at a plain-HTTP upstream on
    127.0.0.1:`upstream_port`, the wasm at an absolute path, and the local stack's plugin
    configuration (its token and upstream settings) naming the `omni` cluster."""
    config = copy.deepcopy(yaml.safe_load(base.read_text()))
    config["admin"]["address"]["socket_address"]["port_value"] = admin_port
    config["static_resources"]["listeners"][0]["address"]["socket_address"].update(
        address="127.0.0.1", port_value=listen_port
    )
    local = yaml.safe_load(SHIPPED_CONFIG.read_text())
    omni = next(c for c in config["static_resources"]["clusters"] if c["name"] == "omni")
    omni.clear()
    omni.update(next(c for c in local["static_resources"]["clusters"] if c["name"] == "scim_upstream"))
    omni["name"] = omni["load_assignment"]["cluster_name"] = "omni"
    address = omni["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    address["socket_address"].update(address="127.0.0.1", port_value=upstream_port)
    plugin = plugin_config(local)
    plugin["upstream"]["cluster"] = "omni"
    wasm_config = wasm_filter(config)
    wasm_config["vm_config"]["code"]["local"]["filename"] = str(wasm)
    wasm_config["configuration"]["value"] = json.dumps(plugin, indent=2)
    # The local plugin's development signing key (oauth) reaches the VM like the upstream credential.
    keys = wasm_config["vm_config"]["environment_variables"]["host_env_keys"]
    if "oauth" in plugin and TOKEN_KEY_ENV not in keys:
        keys.append(TOKEN_KEY_ENV)
    return config


@dataclass
class Service:
    """A process of the stack, its log file, and a clean stop."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = None
    on_line: object = None
    _pump: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> "Service":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the children in order
            env=self.env,
        )

        def pump():
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                if self.on_line:
                    self.on_line(line.decode("utf-8", "replace").rstrip("\n"))
            log.close()

        self._pump = threading.Thread(target=pump, name=f"{self.name}-log", daemon=True)
        self._pump.start()
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._pump:
            self._pump.join(timeout=2)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class StopRequested(Exception):
    """SIGTERM or SIGINT reached `main()` while the stack was starting."""


# Set by `main()`'s signal handler; read by the loops that wait. A plain attribute, not a
# threading.Event: a Python signal handler runs on the main thread between two bytecodes, possibly
# while that thread is inside Event.wait() holding the Event's lock, and Event.set() from the
# handler then blocks on that lock forever (the deadlock of issue 14).
_stop_requested = False


def _request_stop(signum, frame) -> None:
    global _stop_requested
    _stop_requested = True


def wait_for(what: str, check, service: Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _stop_requested:
            raise StopRequested(what)
        if not service.running():
            raise RuntimeError(f"{service.name} exited while starting:\n{service.log_text()[-4000:]}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s:\n{service.log_text()[-4000:]}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_upstream(port: int, run_dir: Path) -> Service:
    """scim2-server, in memory, accepting only the gateway's own credential."""
    service = Service(
        "scim2-server",
        [bin_path("scim2-server"), "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", UPSTREAM_TOKEN],
        run_dir / "scim2-server.log",
    ).start()
    try:
        wait_for(f"scim2-server on 127.0.0.1:{port}", lambda: port_open(port), service)
    except BaseException:
        service.stop()
        raise
    return service


def envoy_ready(admin_port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1) as response:
        return response.status == 200


def start_envoy(
    config: dict,
    admin_port: int,
    run_dir: Path,
    name: str = "envoy",
    on_line=None,
    extra_args: tuple[str, ...] = (),
    concurrency: int = 2,
) -> Service:
    """Envoy on `config` with `concurrency` workers; `extra_args` are appended to its command line
    (for example `("--component-log-level", "wasm:debug")`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    service = Service(
        name,
        [
            bin_path("envoy"),
            "-c", str(config_path),
            "--concurrency", str(concurrency),
            "--disable-hot-restart",  # several Envoys may run side by side (tests, a make run)
            "--log-level", "info",
            *extra_args,
        ],
        run_dir / f"{name}.log",
        env=envoy_env(),
        on_line=on_line,
    ).start()
    try:
        wait_for(f"Envoy (admin 127.0.0.1:{admin_port})", lambda: envoy_ready(admin_port), service)
    except BaseException:
        service.stop()
        raise
    return service


def filter_line(line: str) -> None:
    """Echo the filter's own log lines (one per SCIM request) on the console."""
    marker = "scim-edge"
    if "[wasm]" in line and marker in line:
        print("  " + line[line.index(marker):], flush=True)
    elif "[critical]" in line or "[error]" in line:
        print("  envoy: " + line, flush=True)


def main() -> int:
    listen_port = int(os.environ.get("SCIM_EDGE_PORT", "10000"))
    admin_port = int(os.environ.get("SCIM_EDGE_ADMIN_PORT", "9901"))
    upstream_port = int(os.environ.get("SCIM_UPSTREAM_PORT", "8081"))
    run_dir = Path(os.environ.get("SCIM_EDGE_RUN_DIR", ROOT / ".run"))
    profile = os.environ.get("SCIM_EDGE_PROFILE") or None
    if profile not in (None, "omni", "rfc"):
        raise SystemExit(f"SCIM_EDGE_PROFILE={profile}: expected omni or rfc")
    if not WASM.exists():
        raise SystemExit(f"{WASM} is missing: run 'make build'")
    for port, what in [(listen_port, "SCIM_EDGE_PORT"), (admin_port, "SCIM_EDGE_ADMIN_PORT"), (upstream_port, "SCIM_UPSTREAM_PORT")]:
        if port_open(port):
            raise SystemExit(f"port {port} ({what}) is already in use; set {what} to another port")

    services: list[Service] = []
    # SIGTERM (a process manager, `timeout`, CI, `docker stop`) and Ctrl-C only set a flag: the
    # loops below notice it within a fraction of a second, and the `finally` stops the services
    # without a signal interrupting it halfway.
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    try:
        services.append(start_upstream(upstream_port, run_dir))
        config = render(listen_port=listen_port, admin_port=admin_port, upstream_port=upstream_port, profile=profile)
        services.append(start_envoy(config, admin_port, run_dir, on_line=filter_line))
        base = f"http://127.0.0.1:{listen_port}{SCIM_PREFIX}"
        print(
            f"""
scim-edge is running.
  SCIM base URL   {base}
  client token    {CLIENT_TOKEN}   (development only)
  OAuth client    {DEV_CLIENT_ID} / {DEV_CLIENT_SECRET} at http://127.0.0.1:{listen_port}{TOKEN_PATH}   (development only)
  mapping         {profile or "omni"} profile{"" if profile == "rfc" else " (SCIM_EDGE_PROFILE=rfc make run strips nothing)"}
  upstream        scim2-server on 127.0.0.1:{upstream_port}, token known only to the gateway
  Envoy admin     http://127.0.0.1:{admin_port}   (counters: /stats?filter=scim_edge)
  logs            {run_dir}/envoy.log, {run_dir}/scim2-server.log

Try:
  curl -s -X POST {base}/Users \\
    -H 'Authorization: Bearer {CLIENT_TOKEN}' -H 'Content-Type: application/scim+json' \\
    -d '{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","displayName":"Ada Lovelace","active":true}}'
  curl -s -H 'Authorization: Bearer {CLIENT_TOKEN}' '{base}/Users?filter=userName%20eq%20%22ada@example.com%22'

Requests appear below, one line each. Ctrl-C stops the stack.
""",
            flush=True,
        )
        while not _stop_requested:
            for service in services:
                if not service.running():
                    print(f"{service.name} exited; see {service.log_path}", file=sys.stderr)
                    return 1
            time.sleep(0.1)
        return 0
    except StopRequested:
        return 0
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        for service in reversed(services):
            service.stop()
        print("stopped Envoy and scim2-server", flush=True)


if __name__ == "__main__":
    sys.exit(main())
