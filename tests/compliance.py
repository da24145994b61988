#!/usr/bin/env python3
"""SCIM compliance of the gateway, measured against the upstream it fronts: `make compliance`.

Two public checkers run twice each, once directly against scim2-server and once through Envoy with the
built scim-edge filter (base URL http://127.0.0.1:<port>/api/scim/v2, token local-dev-token):

- scim2-tester, through scim2-cli: `scim2 --url URL -h "Authorization: Bearer T" test`
- scim-sanity: `scim-sanity probe URL --token T --i-accept-side-effects --json-output`

The script prints, per tool, passed/failed/skipped directly and through the gateway, then every check
whose outcome differs, with the gateway's reason. It exits 1 when a check passes directly but fails
through the gateway (marked LOST), 0 otherwise: the gateway may not break what the upstream does
right, and what the upstream gets wrong (scim-sanity wants 200 where RFC 7644 §3.5.2 also allows
scim2-server's 204) is not the gateway's to answer for. A check the gateway makes a tool skip (a 501
for an optional feature, RFC 7644 §3.12) or not run (it follows one that failed) is listed as a
difference, not as LOST.

To keep the comparison fair:
- Direct and gateway runs each get a fresh scim2-server, so the first run's resources cannot change
  the second run's results.
- Both scim2-servers announce tests/fixtures/compliance/service-provider-config.json instead of
  scim2-server's default (bulk, sort, changePassword): PATCH, filter and ETags (which the gateway
  relays); no /Bulk, which the gateway answers 501 (docs/scim.md, "What the edge answers itself"). Through
  the gateway the discovery endpoints are the edge's own documents (docs/scim.md, "Discovery").
- scim2-cli stops at once when discovery fails. Both scim2-cli runs get the same schemas and resource
  types (what the direct scim2-server publishes) and that service provider configuration as files
  (`-s`, `-r`, `-c`), so a gateway with broken discovery still gets every other check; the discovery
  endpoints themselves are still checked.

Logs (scim2-server, Envoy with the filter's one line per request) and each tool's raw output are in
the run directory: .run/compliance, or $SCIM_EDGE_COMPLIANCE_DIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))

import local_stack as stack  # noqa: E402
import yaml  # noqa: E402  (local_stack's dependency)

SERVICE_PROVIDER_CONFIG = ROOT / "tests" / "fixtures" / "compliance" / "service-provider-config.json"
OUTCOMES = ("passed", "failed", "skipped")
# scim2-tester's statuses (scim2_tester.Status): RFC MUST/SHOULD/MAY satisfied, or not run.
TESTER_OUTCOMES = {"SUCCESS": "passed", "COMPLIANT": "passed", "ACCEPTABLE": "passed", "SKIPPED": "skipped"}
SANITY_OUTCOMES = {"pass": "passed", "warn": "passed", "skip": "skipped"}


@dataclass
class Run:
    """One tool's results against one base URL: per check name, its outcomes (a check may run several
    times, e.g. once per resource type or attribute) and the reasons given for them."""

    outcomes: dict[str, Counter] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def add(self, check: str, outcome: str, reason: str = "") -> None:
        self.outcomes.setdefault(check, Counter())[outcome] += 1
        if reason and outcome != "passed":
            self.reasons.setdefault(check, []).append(reason)

    def totals(self) -> Counter:
        return sum(self.outcomes.values(), Counter())


@dataclass
class Difference:
    tool: str
    check: str
    direct: Counter
    gateway: Counter
    reasons: list[str]

    @property
    def lost(self) -> bool:
        """Passes directly, fails through the gateway."""
        return self.gateway["failed"] > self.direct["failed"]


def run_tool(argv: list[str], output: Path) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    output.write_text(done.stdout + done.stderr)
    return done.stdout


def scim2_tester(url: str, token: str, discovery: dict[str, Path], output: Path) -> Run:
    stdout = run_tool(
        [
            stack.bin_path("scim2"), "--url", url, "-h", f"Authorization: Bearer {token}",
            "-s", str(discovery["schemas"]), "-r", str(discovery["resource_types"]), "-c", str(SERVICE_PROVIDER_CONFIG),
            "test",
        ],
        output,
    )
    # Lines "<STATUS> <check name>", each followed by an indented reason line (scim2_cli/test.py).
    run, last = Run(), None
    for line in stdout.splitlines():
        status, _, check = line.partition(" ")
        if status.isalpha() and status.isupper() and check:
            last = (check, TESTER_OUTCOMES.get(status, "failed"))
            run.add(*last)
        elif line.startswith("  ") and last and last[1] != "passed":
            run.reasons.setdefault(last[0], []).append(line.strip())
    if not run.outcomes:
        raise RuntimeError(f"scim2-tester reported no checks for {url}; see {output}")
    return run


def scim_sanity(url: str, token: str, output: Path) -> Run:
    stdout = run_tool(
        [stack.bin_path("scim-sanity"), "probe", url, "--token", token, "--i-accept-side-effects", "--json-output"],
        output,
    )
    try:
        results = json.loads(stdout)["results"]
    except (ValueError, KeyError) as error:
        raise RuntimeError(f"scim-sanity gave no JSON results for {url} ({error}); see {output}") from None
    run = Run()
    for result in results:
        run.add(result["name"], SANITY_OUTCOMES.get(result["status"], "failed"), result.get("message", ""))
    return run


def start_upstream(run_dir: Path, name: str) -> tuple[stack.Service, int]:
    """A fresh scim2-server as local_stack starts it, announcing the gateway's service provider config."""
    port = stack.free_port()
    service = stack.Service(
        name,
        [
            stack.bin_path("scim2-server"), "--hostname", "127.0.0.1", "--port", str(port),
            "--bearer-token", stack.UPSTREAM_TOKEN, "--service-provider-config", str(SERVICE_PROVIDER_CONFIG),
        ],
        run_dir / f"{name}.log",
    ).start()
    stack.wait_for(f"{name} on 127.0.0.1:{port}", lambda: stack.port_open(port), service)
    return service, port


def rfc_plugin() -> dict:
    """The shipped plugin configuration under the `rfc` mapping profile: the checkers measure RFC 7643/7644
    behaviour, which the `omni` profile deliberately narrows to Omni's attributes."""
    plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    plugin["mapping"] = {"profile": "rfc"}
    return plugin


def save_discovery(base: str, run_dir: Path) -> dict[str, Path]:
    """The upstream's /Schemas and /ResourceTypes as the JSON lists scim2-cli's -s and -r read."""
    files = {}
    for key, endpoint in [("schemas", "Schemas"), ("resource_types", "ResourceTypes")]:
        request = urllib.request.Request(f"{base}/{endpoint}", headers={"Authorization": f"Bearer {stack.UPSTREAM_TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            files[key] = run_dir / f"{key}.json"
            files[key].write_text(json.dumps(json.load(response)["Resources"], indent=2))
    return files


def measure(run_dir: Path) -> dict[str, tuple[Run, Run]]:
    """Per tool, (direct run, gateway run), each against its own fresh scim2-server."""
    if not stack.WASM.exists():
        raise SystemExit(f"{stack.WASM} is missing: run 'make build'")
    run_dir.mkdir(parents=True, exist_ok=True)
    services: list[stack.Service] = []
    try:
        direct_server, direct_port = start_upstream(run_dir, "scim2-server-direct")
        services.append(direct_server)
        gateway_server, gateway_port = start_upstream(run_dir, "scim2-server-gateway")
        services.append(gateway_server)
        listen, admin = stack.free_port(), stack.free_port()
        config = stack.render(listen_port=listen, admin_port=admin, upstream_port=gateway_port, plugin=rfc_plugin())
        services.append(stack.start_envoy(config, admin, run_dir))

        direct = (f"http://127.0.0.1:{direct_port}/v2", stack.UPSTREAM_TOKEN)
        gateway = (f"http://127.0.0.1:{listen}{stack.SCIM_PREFIX}", stack.CLIENT_TOKEN)
        discovery = save_discovery(direct[0], run_dir)
        return {
            "scim2-tester": (
                scim2_tester(*direct, discovery, run_dir / "scim2-tester-direct.txt"),
                scim2_tester(*gateway, discovery, run_dir / "scim2-tester-gateway.txt"),
            ),
            "scim-sanity": (
                scim_sanity(*direct, run_dir / "scim-sanity-direct.json"),
                scim_sanity(*gateway, run_dir / "scim-sanity-gateway.json"),
            ),
        }
    finally:
        for service in reversed(services):
            service.stop()


def differences(results: dict[str, tuple[Run, Run]]) -> list[Difference]:
    found = []
    for tool, (direct, gateway) in results.items():
        for check in sorted(direct.outcomes.keys() | gateway.outcomes.keys()):
            d, g = direct.outcomes.get(check, Counter()), gateway.outcomes.get(check, Counter())
            if d != g:
                found.append(Difference(tool, check, d, g, gateway.reasons.get(check, [])))
    return found


def counts(counter: Counter) -> str:
    return "/".join(str(counter[outcome]) for outcome in OUTCOMES)


def outcomes(counter: Counter) -> str:
    return ", ".join(f"{counter[o]} {o}" for o in OUTCOMES if counter[o]) or "not run"


def report(results: dict[str, tuple[Run, Run]], diffs: list[Difference], run_dir: Path) -> str:
    lines = [f"{'tool':<14}{'direct p/f/s':>16}{'gateway p/f/s':>16}"]
    for tool, (direct, gateway) in results.items():
        lines.append(f"{tool:<14}{counts(direct.totals()):>16}{counts(gateway.totals()):>16}")
    lines.append("")
    if not diffs:
        lines.append("No check differs between the direct and the gateway runs.")
    for diff in diffs:
        mark = "LOST" if diff.lost else "diff"
        lines.append(f"{mark} {diff.tool}: {diff.check}: direct {outcomes(diff.direct)}; gateway {outcomes(diff.gateway)}")
        for reason in dict.fromkeys(diff.reasons):
            lines.append(f"       {reason}")
    lines.append(f"\nLogs and raw tool output: {run_dir}")
    return "\n".join(lines)


def main() -> int:
    run_dir = Path(os.environ.get("SCIM_EDGE_COMPLIANCE_DIR", ROOT / ".run" / "compliance"))
    shutil.rmtree(run_dir, ignore_errors=True)
    results = measure(run_dir)
    diffs = differences(results)
    print(report(results, diffs, run_dir))
    lost = [d for d in diffs if d.lost]
    if lost:
        print(f"\n{len(lost)} check(s) pass directly but fail through the gateway (LOST above).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
