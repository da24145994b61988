"""`make run` (envoy/local_stack.py) as a user meets it: it prints a base URL and curl commands that
work, the README's examples work as written against it, and Ctrl-C or SIGTERM stops everything."""

from __future__ import annotations

import json
import os
import queue
import random
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
    assert set(examples) == {"create-user", "find-user", "no-token", "stats"}

    def run(name: str) -> str:
        command = examples[name].replace("127.0.0.1:10000", f"127.0.0.1:{running.port}")
        return shell(command.replace("127.0.0.1:9901", f"127.0.0.1:{running.admin}"))

    created = json.loads(run("create-user"))
    assert created["userName"] == "ada@example.com"
    found = json.loads(run("find-user"))
    assert [u["id"] for u in found["Resources"]] == [created["id"]]
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


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                # pid (comm) state ppid ...: comm may hold spaces and parentheses.
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` still exists in any state (a zombie nobody reaped counts as left behind)."""
    return os.path.exists(f"/proc/{pid}")


# The runner once deadlocked on SIGTERM only when the signal landed while its main thread held a
# lock inside threading.Event.wait(): intermittent, so the stop is repeated, each time at a random
# moment of the runner's waiting loop.
SIGTERM_ROUNDS = 15
SIGTERM_BURST_SECONDS = 0.05


def wait_until_gone(process: subprocess.Popen, pids: list[int], ports: tuple[int, ...], seconds: float) -> None:
    """Waits up to `seconds` for every pid to be gone and every port closed; asserts they are,
    and kills (by pid) whatever is left so that a failure leaves nothing running."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            process.poll()  # reaps the runner once it exits
            if not any(map(alive, pids)) and not any(map(stack.port_open, ports)):
                break
            time.sleep(0.05)
        left = [pid for pid in pids if alive(pid)]
        assert not left, f"processes still there {seconds:.0f} s after SIGTERM: {left}"
        assert not any(map(stack.port_open, ports)), f"a port still open {seconds:.0f} s after SIGTERM"
        # 0, or killed by a SIGTERM that came after Python restored the default handler on its
        # way out (the services were already stopped: checked above).
        assert process.returncode in (0, -signal.SIGTERM)
    finally:
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        process.wait(timeout=10)


def test_sigterm_stops_the_whole_stack_within_seconds_every_time(tmp_path):
    for round_ in range(SIGTERM_ROUNDS):
        running = RunningStack(tmp_path / f"round-{round_}")
        runner = running.process.pid
        services = children(runner)
        assert len(services) == 2, f"expected Envoy and scim2-server under the runner, found {services}"
        time.sleep(random.uniform(0, 0.6))
        # SIGTERM, repeated for a moment: as when a process manager signals the process and then
        # its group, or a user presses Ctrl-C twice. It lands signals on the runner while it
        # reacts to the first one, where the old deadlock was.
        burst_end = time.monotonic() + SIGTERM_BURST_SECONDS
        running.process.send_signal(signal.SIGTERM)
        while time.monotonic() < burst_end and running.process.poll() is None:
            running.process.send_signal(signal.SIGTERM)
        try:
            wait_until_gone(running.process, [runner, *services], (running.port, running.admin, running.upstream), 10)
        except AssertionError as failure:
            raise AssertionError(f"round {round_} of {SIGTERM_ROUNDS}: {failure}") from None


def test_sigterm_while_the_stack_starts_stops_what_was_started(tmp_path):
    port, admin, upstream = stack.free_port(), stack.free_port(), stack.free_port()
    env = {
        **os.environ,
        "SCIM_EDGE_PORT": str(port),
        "SCIM_EDGE_ADMIN_PORT": str(admin),
        "SCIM_UPSTREAM_PORT": str(upstream),
        "SCIM_EDGE_RUN_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "envoy" / "local_stack.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    started: list[int] = []
    while not started and time.monotonic() < deadline and process.poll() is None:
        started = children(process.pid)  # scim2-server, started but not yet listening
        time.sleep(0.005)
    assert started, "the runner never started scim2-server"
    process.send_signal(signal.SIGTERM)
    wait_until_gone(process, [process.pid, *started, *children(process.pid)], (port, admin, upstream), 10)


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
