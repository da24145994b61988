"""The `scim-edge` command against a real Envoy: a token from `scim-edge token new` is accepted by
the filter, and `scim-edge explain` predicts, byte for byte, the upstream request that the
recording hop sees when the same Entra payload goes through Envoy (both of Entra's forms, both
mapping profiles)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

import local_stack as stack
from support.gateways import ROOT, plugin_with_profile, start_gateway, stop_gateway
from support.upstream_recorder import UpstreamRecorder

FIXTURES = ROOT / "tests" / "fixtures" / "entra"


@pytest.fixture(scope="session")
def scim_edge() -> Path:
    """The command as `cargo build` makes it (cargo is already a requirement of the test suite)."""
    built = subprocess.run(
        ["cargo", "build", "--quiet", "--bin", "scim-edge", "--message-format=json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    executables = [m["executable"] for m in map(json.loads, built.stdout.splitlines()) if m.get("executable")]
    assert executables, built.stderr
    return Path(executables[-1])


def run(scim_edge: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != stack.UPSTREAM_TOKEN_ENV}
    return subprocess.run([str(scim_edge), *args], cwd=ROOT, capture_output=True, text=True, env=env)


def test_a_token_from_token_new_is_accepted_by_the_filter(scim_edge, scim_upstream, run_dir):
    made = run(scim_edge, "token", "new", "--name", "entra-e2e")
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    token = next(line.removeprefix("token: ") for line in lines if line.startswith("token: "))
    entry = json.loads(next(line for line in lines if line.startswith("{")))

    plugin = plugin_with_profile("omni")
    plugin["tokens"] = [entry]
    recorder = UpstreamRecorder(scim_upstream).start()
    gateway = start_gateway(run_dir, "envoy-cli-token", recorder.port, recorder, plugin=plugin)
    try:
        accepted = requests.get(f"{gateway.base}/Users", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert accepted.status_code == 200, accepted.text
        mark = recorder.mark()
        for wrong in (stack.CLIENT_TOKEN, token[:-1], token + "x"):
            refused = requests.get(f"{gateway.base}/Users", headers={"Authorization": f"Bearer {wrong}"}, timeout=10)
            assert refused.status_code == 401, refused.text
        assert recorder.since(mark) == [], "a refused request never reaches the upstream"
        assert gateway.counter("auth.accepted.entra-e2e") == 1
    finally:
        stop_gateway(gateway)
        recorder.stop()


def test_a_client_and_key_from_client_new_and_key_new_work_end_to_end(scim_edge, scim_upstream, run_dir, monkeypatch):
    """The OAuth client and the signing key the command makes, configured as it prints them:
    Entra's client-credentials flow gets a token at the edge, and the token admits SCIM calls."""
    client = json.loads(run(scim_edge, "client", "new", "--name", "entra-oauth", "--json").stdout)
    key = json.loads(run(scim_edge, "key", "new", "--kid", "cli-1", "--env", stack.TOKEN_KEY_ENV, "--json").stdout)
    assert client["entry"]["secret_sha256"] != client["client_secret"], "only the digest goes in the configuration"
    assert len(key["key"]) >= 32

    monkeypatch.setenv(stack.TOKEN_KEY_ENV, key["key"])  # Envoy's environment, as an operator sets it
    plugin = plugin_with_profile("omni")
    plugin["oauth"]["clients"] = [client["entry"]]
    plugin["oauth"]["signing_keys"] = [key["entry"]]
    recorder = UpstreamRecorder(scim_upstream).start()
    gateway = start_gateway(run_dir, "envoy-cli-oauth", recorder.port, recorder, plugin=plugin)
    try:
        form = {"grant_type": "client_credentials", "client_id": client["client_id"],
                "client_secret": client["client_secret"]}
        issued = requests.post(f"{gateway.origin}/oauth2/token", data=form, timeout=10)
        assert issued.status_code == 200, issued.text
        access = issued.json()["access_token"]
        assert json.loads(base64.urlsafe_b64decode(access.split(".")[0] + "=="))["kid"] == "cli-1"
        listed = requests.get(f"{gateway.base}/Users?count=1", headers={"Authorization": f"Bearer {access}"}, timeout=10)
        assert listed.status_code == 200, listed.text
        wrong = requests.post(f"{gateway.origin}/oauth2/token", data={**form, "client_secret": "wrong"}, timeout=10)
        assert wrong.status_code == 401
        assert gateway.counter("auth.accepted.client.entra-oauth") == 1
    finally:
        stop_gateway(gateway)
        recorder.stop()


def entra(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def create_user() -> dict:
    body = entra("create-user.json")
    body["userName"] = f"{uuid.uuid4()}@testuser.com"
    body["externalId"] = str(uuid.uuid4())
    return body


def create_group() -> dict:
    body = entra("create-group.json")
    body["displayName"] = f"group-{uuid.uuid4()}"
    body["externalId"] = str(uuid.uuid4())
    return body


def multi_replace_default() -> dict:
    """multi-replace-flag.json as Entra sends it without the flag: "Replace"."""
    body = entra("multi-replace-flag.json")
    for operation in body["Operations"]:
        operation["op"] = "Replace"
    return body


# (case, method, resource, body): the creates and Entra's PATCH shapes, in both forms.
CASES = [
    ("create-user", "POST", "Users", create_user),
    ("create-group", "POST", "Groups", create_group),
    ("disable-flag", "PATCH", "Users/{id}", lambda: entra("disable-flag.json")),
    ("disable-noflag", "PATCH", "Users/{id}", lambda: entra("disable-noflag.json")),
    ("multi-replace-flag", "PATCH", "Users/{id}", lambda: entra("multi-replace-flag.json")),
    ("multi-replace-default", "PATCH", "Users/{id}", multi_replace_default),
    ("group-add", "PATCH", "Groups/{id}", lambda: entra("group-add.json")),
    ("group-remove-flag", "PATCH", "Groups/{id}", lambda: entra("group-remove-flag.json")),
    ("group-remove-noflag", "PATCH", "Groups/{id}", lambda: entra("group-remove-noflag.json")),
]


@pytest.fixture(scope="module", params=["omni", "rfc"])
def profile_gateway(request, scim_upstream, run_dir, tmp_path_factory):
    profile = request.param
    plugin = plugin_with_profile(profile)
    config = tmp_path_factory.mktemp("cli") / f"plugin-{profile}.json"
    config.write_text(json.dumps(plugin))
    recorder = UpstreamRecorder(scim_upstream).start()
    gateway = start_gateway(run_dir, f"envoy-cli-{profile}", recorder.port, recorder, plugin=plugin)
    yield gateway, config
    stop_gateway(gateway)
    recorder.stop()


@pytest.mark.parametrize("case,method,resource,make_body", CASES, ids=[c[0] for c in CASES])
def test_explain_predicts_what_reaches_the_upstream(scim_edge, profile_gateway, tmp_path, case, method, resource, make_body):
    gateway, config = profile_gateway
    path = f"{stack.SCIM_PREFIX}/{resource.replace('{id}', str(uuid.uuid4()))}"
    body = json.dumps(make_body()).encode()
    body_file = tmp_path / f"{case}.json"
    body_file.write_bytes(body)

    explained = run(scim_edge, "explain", "--json", "--config", str(config), method, path, "--body", str(body_file))
    assert explained.returncode == 0, explained.stderr
    predicted = json.loads(explained.stdout)

    mark = gateway.recorder.mark()
    answer = requests.request(
        method, f"{gateway.origin}{path}", data=body, timeout=10,
        headers={"Authorization": f"Bearer {stack.CLIENT_TOKEN}", "Content-Type": "application/scim+json"},
    )
    seen = gateway.recorder.since(mark)

    upstream = predicted["upstream"]
    if upstream is None:
        assert seen == [], f"{case}: explain says the edge answers itself"
        assert answer.status_code == predicted["response"]["status"], answer.text
        return
    assert len(seen) == 1, f"{case}: {seen}"
    target = upstream["path"] + (f"?{upstream['query']}" if upstream["query"] else "")
    assert (seen[0].method, seen[0].path) == (upstream["method"], target), case
    assert seen[0].body == (upstream["body_text"] or "").encode(), f"{case}: explain predicted another body"


SHIPPED = sorted((ROOT / "envoy").glob("*.yaml"))

# Breakages of the shipped plugin configuration, by the field the filter names.
BROKEN = {
    "version": lambda p: p.update(version=2),
    "colour": lambda p: p.update(colour="blue"),
    "tokens": lambda p: p.update(tokens=[]),
    "tokens[0].sha256": lambda p: p["tokens"][0].update(sha256="plain-hunter2-not-a-digest"),
    "upstream.timeout_ms": lambda p: p["upstream"].update(timeout_ms=0),
    "upstream.bearer_token_env": lambda p: p["upstream"].update(bearer_token_env="NOT_SET_ANYWHERE"),
    "mapping.users.add[0]": lambda p: p["mapping"]["users"].update(add=["favouriteColour"]),
    "rate_limit.requests_per_minute": lambda p: p["rate_limit"].update(requests_per_minute=0),
}


def envoy_validate(config_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [stack.bin_path("envoy"), "--mode", "validate", "-c", str(config_path), "--disable-hot-restart"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=stack.envoy_env(),
    )


def check_with_env(scim_edge: Path, path: Path) -> subprocess.CompletedProcess:
    """`scim-edge check` with the environment Envoy gets in the tests."""
    return subprocess.run([str(scim_edge), "check", str(path)], cwd=ROOT, capture_output=True, text=True, env=stack.envoy_env())


@pytest.mark.parametrize("config_path", SHIPPED, ids=lambda p: p.name)
def test_check_accepts_every_shipped_configuration_as_envoy_does(scim_edge, config_path):
    checked = check_with_env(scim_edge, config_path)
    assert checked.returncode == 0, checked.stdout
    assert "0 with errors" in checked.stdout
    assert envoy_validate(config_path).returncode == 0


@pytest.mark.parametrize("field", BROKEN)
def test_check_prints_the_line_the_filter_logs_when_envoy_refuses(scim_edge, field, tmp_path):
    import yaml

    config = yaml.safe_load(stack.SHIPPED_CONFIG.read_text())
    plugin = stack.plugin_config(config)
    BROKEN[field](plugin)
    stack.wasm_filter(config)["configuration"]["value"] = json.dumps(plugin)
    stack.wasm_filter(config)["vm_config"]["code"]["local"]["filename"] = str(stack.WASM)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))

    refused = envoy_validate(path)
    assert refused.returncode != 0
    logged = [line.split("scim-edge: ", 1)[1] for line in (refused.stdout + refused.stderr).splitlines() if "scim-edge: invalid configuration" in line]
    assert logged and logged[0].startswith(f"invalid configuration: {field}: "), logged

    checked = check_with_env(scim_edge, path)
    assert checked.returncode == 1, checked.stdout
    assert f"  error: {logged[0]}\n" in checked.stdout, checked.stdout
    assert "hunter2" not in checked.stdout
