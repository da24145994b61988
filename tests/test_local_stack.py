"""`make run` (envoy/local_stack.py) as a user meets it: it prints a base URL and curl commands that
work, the README's examples work as written against it, and Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import local_stack as stack

ROOT = stack.ROOT
READY_LINE = "Ctrl-C stops the stack."


class RunningStack:
    def __init__(self, tmp_path, **extra_env):
        self.port, self.admin, self.upstream = stack.free_port(), stack.free_port(), stack.free_port()
        env = {
            **os.environ,
            "SCIM_EDGE_PORT": str(self.port),
            "SCIM_EDGE_ADMIN_PORT": str(self.admin),
            "SCIM_UPSTREAM_PORT": str(self.upstream),
            "SCIM_EDGE_RUN_DIR": str(tmp_path),
            **extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "envoy" / "local_stack.py")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.banner = self.read_until(READY_LINE, timeout=60)

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def read_until(self, marker: str, timeout: float) -> str:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if marker in line:
                return "".join(seen)
        raise AssertionError(f"no {marker!r} in the output:\n{''.join(seen)}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


@pytest.fixture
def running(tmp_path):
    running = RunningStack(tmp_path)
    yield running
    running.stop()


def shell(command: str) -> str:
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout


def printed_commands(banner: str) -> list[str]:
    """The curl commands the banner prints, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", banner)
    return [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]


def test_make_run_prints_the_scim_base_url_and_curls_that_work(running):
    assert f"http://127.0.0.1:{running.port}/api/scim/v2" in running.banner
    assert "local-dev-token" in running.banner and "development only" in running.banner
    create, find = printed_commands(running.banner)
    created = json.loads(shell(create))
    assert created["userName"] == "ada@example.com" and created["id"]
    found = json.loads(shell(find))
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == created["id"]
    # ...and the filter's line for each request shows on the console.
    running.read_until("scim-edge ctx=", timeout=10)


def readme_examples() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"<!-- example: ([\w-]+) -->\n```sh\n(.*?)```", text, flags=re.S))


def test_readme_examples_work_as_written(running):
    examples = readme_examples()
    assert set(examples) == {"create-user", "find-user", "oauth-token", "no-token", "stats"}

    def run(name: str) -> str:
        command = examples[name].replace("127.0.0.1:10000", f"127.0.0.1:{running.port}")
        return shell(command.replace("127.0.0.1:9901", f"127.0.0.1:{running.admin}"))

    created = json.loads(run("create-user"))
    assert created["userName"] == "ada@example.com"
    found = json.loads(run("find-user"))
    assert [u["id"] for u in found["Resources"]] == [created["id"]]
    with_oauth = json.loads(run("oauth-token"))
    assert with_oauth["totalResults"] >= 1
    refused = run("no-token")
    assert refused.startswith("HTTP/1.1 401 Unauthorized")
    assert 'www-authenticate: Bearer realm="scim-edge"' in refused
    assert '"status":"401"' in refused
    stats = run("stats")
    assert "wasmcustom.scim_edge.auth.accepted.local-dev: 2" in stats
    assert "wasmcustom.scim_edge.auth.rejected.missing: 1" in stats


def test_ctrl_c_stops_envoy_and_scim2_server(tmp_path):
    running = RunningStack(tmp_path)
    assert stack.port_open(running.port) and stack.port_open(running.upstream)
    assert running.stop() == 0
    assert "stopped Envoy and scim2-server" in running.read_until("stopped", timeout=10)
    assert not stack.port_open(running.port)
    assert not stack.port_open(running.admin)
    assert not stack.port_open(running.upstream)


def test_make_run_refuses_a_port_in_use(tmp_path):
    with __import__("socket").socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(ROOT / "envoy" / "local_stack.py")],
            env={**os.environ, "SCIM_EDGE_PORT": str(port), "SCIM_EDGE_RUN_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode != 0
    assert f"port {port} (SCIM_EDGE_PORT) is already in use" in result.stderr


def test_make_run_uses_the_omni_profile_and_scim_edge_profile_rfc_strips_nothing(tmp_path):
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "grace@example.com",
        "displayName": "Grace",
        "title": "Rear Admiral",
    }
    for profile, keeps_title in [("", False), ("rfc", True)]:
        running = RunningStack(tmp_path / (profile or "default"), SCIM_EDGE_PROFILE=profile)
        try:
            assert f"mapping         {profile or 'omni'} profile" in running.banner
            command = (
                f"curl -s -X POST http://127.0.0.1:{running.port}/api/scim/v2/Users "
                "-H 'Authorization: Bearer local-dev-token' -H 'Content-Type: application/scim+json' "
                f"-d '{json.dumps(user)}'"
            )
            created = json.loads(shell(command))
            assert ("title" in created) is keeps_title, created
        finally:
            running.stop()
