"""Every Envoy configuration the project ships loads in the real Envoy with the built filter, a bad
plugin configuration is refused with a line that names the field, and docker-compose.yml runs the
same gateway as `make run`."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

import local_stack as stack

ROOT = stack.ROOT
SHIPPED = sorted((ROOT / "envoy").glob("*.yaml"))


def validate(config_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [stack.bin_path("envoy"), "--mode", "validate", "-c", str(config_path), "--disable-hot-restart"],
        cwd=ROOT,  # the shipped configs name the wasm relative to the repository root
        capture_output=True,
        text=True,
        timeout=60,
        env=stack.envoy_env() if env is None else env,
    )


def test_the_expected_configs_are_shipped():
    assert {p.name for p in SHIPPED} >= {"envoy.yaml", "envoy.compose.yaml"}


@pytest.mark.parametrize("config_path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_passes_envoy_validate(config_path):
    result = validate(config_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"scim-edge \d+\.\d+\.\d+: configured", output), "the filter read and accepted its configuration"


BAD_PLUGINS = {
    "tokens[0].sha256": lambda p: p["tokens"][0].update(sha256="plain-hunter2-not-a-digest"),
    "upstream.timeout_ms": lambda p: p["upstream"].update(timeout_ms=0),
    "upstream.bearer_token_env": lambda p: p["upstream"].update(bearer_token_env="NOT_SET_ANYWHERE"),
    "tokens": lambda p: p.update(tokens=[]),
    "colour": lambda p: p.update(colour="blue"),
}


@pytest.mark.parametrize("field", BAD_PLUGINS)
def test_a_bad_plugin_config_is_refused_with_one_line_naming_the_field(field, tmp_path):
    config = yaml.safe_load(stack.SHIPPED_CONFIG.read_text())
    plugin = stack.plugin_config(config)
    BAD_PLUGINS[field](plugin)
    stack.wasm_filter(config)["configuration"]["value"] = json.dumps(plugin)
    stack.wasm_filter(config)["vm_config"]["code"]["local"]["filename"] = str(stack.WASM)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = validate(path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    errors = [line for line in output.splitlines() if "scim-edge: invalid configuration" in line]
    assert errors, output[-3000:]
    assert f"invalid configuration: {field}:" in errors[0]
    assert "hunter2" not in output


def test_without_the_upstream_credential_in_the_environment_envoy_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != stack.UPSTREAM_TOKEN_ENV}
    result = validate(stack.SHIPPED_CONFIG, env=env)
    assert result.returncode != 0
    assert "invalid configuration: upstream.bearer_token_env: environment variable SCIM_EDGE_UPSTREAM_TOKEN is not set" in (
        result.stdout + result.stderr
    )


def test_an_unusable_credential_in_the_environment_is_refused_without_showing_it():
    result = validate(stack.SHIPPED_CONFIG, env=stack.envoy_env("two hunter2 words"))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid configuration: upstream.bearer_token_env: expected a non-empty bearer token" in output
    assert "hunter2" not in output


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_mounts_only_files_that_exist():
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            host_path = volume.split(":")[0]
            assert (ROOT / host_path).exists(), f"{name} mounts {host_path}, which does not exist"


def test_compose_envoy_runs_the_mounted_compose_config():
    envoy = compose()["services"]["envoy"]
    config_arg = envoy["command"][envoy["command"].index("-c") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in envoy["volumes"]}
    assert mounts[config_arg] == "./envoy/envoy.compose.yaml"
    wasm = yaml.safe_load((ROOT / "envoy/envoy.compose.yaml").read_text())
    wasm_path = stack.wasm_filter(wasm)["vm_config"]["code"]["local"]["filename"]
    assert mounts[str(Path(envoy["working_dir"]) / wasm_path)] == "./target/filter/scim_edge.wasm"


def test_compose_config_is_the_local_config_but_for_the_listener_and_upstream_addresses():
    local = yaml.safe_load(stack.SHIPPED_CONFIG.read_text())
    composed = yaml.safe_load((ROOT / "envoy/envoy.compose.yaml").read_text())
    assert stack.plugin_config(composed) == stack.plugin_config(local)
    assert composed["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] == "0.0.0.0"
    normalised = copy.deepcopy(composed)
    normalised["static_resources"]["listeners"][0]["address"]["socket_address"]["address"] = "127.0.0.1"
    (cluster,) = [c for c in normalised["static_resources"]["clusters"] if c["name"] == "scim_upstream"]
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (cluster["type"], address["address"]) == ("STRICT_DNS", "scim2-server")
    cluster["type"], address["address"] = "STATIC", "127.0.0.1"
    assert normalised == local


def test_compose_upstream_is_scim2_server_with_the_gateway_credential():
    upstream = compose()["services"]["scim2-server"]
    argv = upstream["entrypoint"] + upstream["command"]
    plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    envoy_env = compose()["services"]["envoy"]["environment"]
    assert argv[argv.index("--bearer-token") + 1] == envoy_env[plugin["upstream"]["bearer_token_env"]]
    assert argv[argv.index("--port") + 1] == "8081"
    assert argv[argv.index("--hostname") + 1] == "0.0.0.0", "reached over the compose network"


def test_compose_upstream_cannot_reach_envoys_admin_port_and_images_are_pinned():
    services = compose()["services"]
    # Separate network namespaces: Envoy's admin listener (loopback) is Envoy's alone.
    assert all("network_mode" not in service for service in services.values())
    assert stack.SHIPPED_CONFIG.read_text().count("port_value: 9901") == 1
    admin = yaml.safe_load((ROOT / "envoy/envoy.compose.yaml").read_text())["admin"]["address"]["socket_address"]
    assert admin["address"] == "127.0.0.1"
    assert "ports" not in services["scim2-server"], "the upstream is not published"
    for name, service in services.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and "latest" not in tag, f"{name}: {image} is not pinned"
        commit = len(tag) >= 7 and all(c in "0123456789abcdef" for c in tag)
        assert tag.count(".") >= 2 or commit or "@sha256:" in image, f"{name}: {image} pins no patch version"
    upstream_argv = services["scim2-server"]["entrypoint"]
    pinned = [line for line in (ROOT / "tests/requirements.txt").read_text().splitlines() if line.startswith("scim2-server==")]
    assert pinned and pinned[0] in " ".join(upstream_argv), "the compose upstream runs the tests' scim2-server"


def test_the_vm_is_held_to_its_capability_list(run_dir, scim_upstream):
    """The shipped configurations pin the VM to the host calls and callbacks the filter uses
    (`capability_restriction_config`); every other test runs under that list, so it is complete.
    This one shows Envoy enforces it: the same gateway without `proxy_http_call` on the list
    cannot start a callout, so a SCIM request gets the filter's 503 and the upstream gets nothing."""
    from support.upstream_recorder import UpstreamRecorder

    recorder = UpstreamRecorder(scim_upstream).start()
    listen, admin = stack.free_port(), stack.free_port()
    config = stack.render(listen_port=listen, admin_port=admin, upstream_port=recorder.port)
    allowed = stack.wasm_filter(config)["capability_restriction_config"]["allowed_capabilities"]
    assert "proxy_http_call" in allowed
    del allowed["proxy_http_call"]
    envoy = stack.start_envoy(config, admin, run_dir, name="envoy-no-callout")
    try:
        mark = recorder.mark()
        response = requests.get(f"http://127.0.0.1:{listen}{stack.SCIM_PREFIX}/Users",
                                headers={"Authorization": f"Bearer {stack.CLIENT_TOKEN}"}, timeout=10)
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/scim+json"
        assert recorder.since(mark) == []
    finally:
        envoy.stop()
        recorder.stop()


def wasm_exports(path: Path) -> set[str]:
    """The export names of a wasm module (its export section, id 7)."""
    data = path.read_bytes()
    assert data[:4] == b"\0asm"

    def leb(at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, at

    at, names = 8, set()
    while at < len(data):
        section, at = data[at], at + 1
        size, at = leb(at)
        if section == 7:
            count, p = leb(at)
            for _ in range(count):
                length, p = leb(p)
                names.add(data[p:p + length].decode())
                p += length + 1  # the name, then the export kind
                _, p = leb(p)  # and its index
        at += size
    return names


def test_the_filter_exports_exactly_the_callbacks_the_capability_lists_allow():
    """`make build` keeps only the callbacks the filter implements (wasm-metadce, FILTER_EXPORTS in
    the Makefile), and every shipped configuration allows the same ones: a callback exported but
    not allowed would never be made, one allowed but not exported would be skipped by Envoy."""
    exported = {name for name in wasm_exports(stack.WASM) if name.startswith("proxy_on_")}
    assert "proxy_on_response_headers" not in exported and "proxy_on_grpc_receive" not in exported
    for config_path in SHIPPED:
        config = yaml.safe_load(config_path.read_text())
        allowed = stack.wasm_filter(config)["capability_restriction_config"]["allowed_capabilities"]
        callbacks = {name for name in allowed if name.startswith("proxy_on_")}
        assert callbacks == exported, config_path.name
