"""The Istio and Envoy Gateway manifests in deploy/: no cluster runs here, so they are checked for
shape. Each parses; each embedded plugin configuration passes the filter's own configuration check
in a real `envoy --mode validate` (envoy.omni.yaml with its plugin configuration replaced); and
each matches the production configuration (envoy/envoy.omni.yaml, envoy/envoy.tls.yaml) apart from
what docs/deploy.md says differs: under Istio, upstream.cluster names Istio's cluster for Omni."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import local_stack as stack

ROOT = stack.ROOT
DEPLOY = ROOT / "deploy"
ISTIO = DEPLOY / "istio" / "scim-edge.yaml"
GATEWAY = DEPLOY / "envoy-gateway" / "scim-edge.yaml"
OMNI = yaml.safe_load((ROOT / "envoy" / "envoy.omni.yaml").read_text())
TLS = yaml.safe_load((ROOT / "envoy" / "envoy.tls.yaml").read_text())
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


def documents(path: Path) -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    kinds = [d["kind"] for d in docs]
    assert len(set(kinds)) == len(kinds), f"{path.name}: one document per kind"
    return {d["kind"]: d for d in docs}


def hcm(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][-1]["filters"][0]["typed_config"]


def omni_wasm() -> dict:
    return stack.wasm_filter(OMNI)


def omni_http_filter(name: str) -> dict:
    return next(f for f in hcm(OMNI)["http_filters"] if f["name"] == name)


def omni_cluster() -> dict:
    return next(c for c in OMNI["static_resources"]["clusters"] if c["name"] == "omni")


def omni_not_found() -> dict:
    return hcm(OMNI)["route_config"]["virtual_hosts"][0]["routes"][-1]["direct_response"]


def tls_suites() -> list[str]:
    tls = TLS["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]["typed_config"]
    return tls["common_tls_context"]["tls_params"]["cipher_suites"]


def validate_plugin(plugin: dict, tmp_path: Path, cluster_name: str = "omni", cluster: dict | None = None):
    """envoy.omni.yaml with this plugin configuration (and its omni cluster renamed or replaced),
    through `envoy --mode validate`: Envoy runs the filter's on_configure on it."""
    config = copy.deepcopy(OMNI)
    wasm = stack.wasm_filter(config)
    wasm["configuration"]["value"] = json.dumps(plugin)
    wasm["vm_config"]["code"]["local"]["filename"] = str(stack.WASM)
    clusters = config["static_resources"]["clusters"]
    index = next(i for i, c in enumerate(clusters) if c["name"] == "omni")
    clusters[index] = copy.deepcopy(cluster or clusters[index])
    clusters[index]["name"] = clusters[index]["load_assignment"]["cluster_name"] = cluster_name
    path = tmp_path / "manifest-plugin.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [stack.bin_path("envoy"), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True, text=True, timeout=60, env=stack.envoy_env(),
    )


def assert_accepted(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert re.search(r"scim-edge \d+\.\d+\.\d+: configured", output)


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_deploy_file_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        if "apiVersion" in doc:
            assert doc["kind"] and doc["metadata"]["name"] and doc["metadata"]["namespace"]


# --- Istio -----------------------------------------------------------------------------------------


def istio_cluster(docs: dict) -> tuple[str, str]:
    """Istio's name for the ServiceEntry's HTTP port: outbound|<port>||<host>, and the host."""
    entry = docs["ServiceEntry"]["spec"]
    [host] = entry["hosts"]
    [port] = [p for p in entry["ports"] if p["protocol"] == "HTTP"]
    return f"outbound|{port['number']}||{host}", host


def test_istio_wasm_plugin_is_pinned_fail_closed_in_authn_with_the_key_from_the_proxy():
    docs = documents(ISTIO)
    plugin = docs["WasmPlugin"]["spec"]
    assert plugin["url"].startswith("oci://") and PINNED.search(plugin["url"])
    assert (plugin["phase"], plugin["failStrategy"]) == ("AUTHN", "FAIL_CLOSE")
    assert plugin["pluginName"] == omni_wasm()["root_id"]
    host_keys = omni_wasm()["vm_config"]["environment_variables"]["host_env_keys"]
    assert plugin["vmConfig"]["env"] == [{"name": key, "valueFrom": "HOST"} for key in host_keys]


def test_istio_plugin_config_is_production_but_for_istios_cluster_name():
    docs = documents(ISTIO)
    cluster, host = istio_cluster(docs)
    plugin = docs["WasmPlugin"]["spec"]["pluginConfig"]
    expected = stack.plugin_config(OMNI)
    expected["upstream"]["cluster"] = cluster
    assert plugin == expected
    assert plugin["upstream"]["authority"] == host


def test_istio_plugin_config_passes_the_filters_check(tmp_path):
    docs = documents(ISTIO)
    cluster, _ = istio_cluster(docs)
    assert_accepted(validate_plugin(docs["WasmPlugin"]["spec"]["pluginConfig"], tmp_path, cluster_name=cluster))


def test_istio_originates_tls_to_omni_as_the_production_cluster_does():
    docs = documents(ISTIO)
    _, host = istio_cluster(docs)
    production_tls = omni_cluster()["transport_socket"]["typed_config"]
    assert docs["DestinationRule"]["spec"]["host"] == host
    [setting] = docs["DestinationRule"]["spec"]["trafficPolicy"]["portLevelSettings"]
    [port] = docs["ServiceEntry"]["spec"]["ports"]
    assert (setting["port"]["number"], port["targetPort"]) == (port["number"], 443)
    assert setting["tls"]["mode"] == "SIMPLE"
    assert setting["tls"]["sni"] == production_tls["sni"] == host
    sans = production_tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"]
    assert setting["tls"]["subjectAltNames"] == [s["matcher"]["exact"] for s in sans]


def test_istio_puts_the_production_buffer_filter_after_the_wasm_filter():
    patch = documents(ISTIO)["EnvoyFilter"]["spec"]["configPatches"][0]
    assert patch["applyTo"] == "HTTP_FILTER"
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "envoy.filters.http.router"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"  # the AUTHN-phase wasm filter is near the top
    assert patch["patch"]["value"] == omni_http_filter("envoy.filters.http.buffer")


def test_istio_terminates_tls_and_forwards_nothing_as_production_does():
    docs = documents(ISTIO)
    [server] = docs["Gateway"]["spec"]["servers"]
    assert server["tls"]["minProtocolVersion"] == "TLSV1_2"
    assert server["tls"]["cipherSuites"] == tls_suites()
    [route] = docs["VirtualService"]["spec"]["http"]
    assert "route" not in route
    assert route["directResponse"] == {"status": 404, "body": {"string": omni_not_found()["body"]["inline_string"]}}


# --- Envoy Gateway ----------------------------------------------------------------------------------


def test_envoy_gateway_policy_is_pinned_fail_closed_with_the_key_from_the_proxy():
    docs = documents(GATEWAY)
    [wasm] = docs["EnvoyExtensionPolicy"]["spec"]["wasm"]
    assert wasm["code"]["type"] == "Image" and PINNED.search(wasm["code"]["image"]["url"])
    assert wasm["failOpen"] is False
    assert (wasm["name"], wasm["rootID"]) == (omni_wasm()["name"], omni_wasm()["root_id"])
    host_keys = omni_wasm()["vm_config"]["environment_variables"]["host_env_keys"]
    assert wasm["env"]["hostKeys"] == host_keys
    container = docs["EnvoyProxy"]["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]
    assert [e["name"] for e in container["env"]] == host_keys


def test_envoy_gateway_plugin_config_is_production_unchanged_and_passes_the_filters_check(tmp_path):
    docs = documents(GATEWAY)
    [wasm] = docs["EnvoyExtensionPolicy"]["spec"]["wasm"]
    assert wasm["config"] == stack.plugin_config(OMNI)
    [patch] = docs["EnvoyPatchPolicy"]["spec"]["jsonPatches"]
    assert_accepted(validate_plugin(wasm["config"], tmp_path, cluster=patch["operation"]["value"]))


def test_a_broken_plugin_config_fails_the_same_check(tmp_path):
    [wasm] = documents(GATEWAY)["EnvoyExtensionPolicy"]["spec"]["wasm"]
    broken = copy.deepcopy(wasm["config"])
    broken["tokens"][0]["sha256"] = "not-a-digest"
    result = validate_plugin(broken, tmp_path)
    assert result.returncode != 0
    assert "invalid configuration: tokens[0].sha256" in result.stdout + result.stderr


def test_envoy_gateway_adds_the_production_omni_cluster_under_the_plugins_cluster_name():
    docs = documents(GATEWAY)
    [patch] = docs["EnvoyPatchPolicy"]["spec"]["jsonPatches"]
    [wasm] = docs["EnvoyExtensionPolicy"]["spec"]["wasm"]
    assert patch["type"] == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    assert (patch["operation"]["op"], patch["operation"]["path"]) == ("add", "")  # a whole new resource
    assert patch["name"] == patch["operation"]["value"]["name"] == wasm["config"]["upstream"]["cluster"]
    assert patch["operation"]["value"] == omni_cluster()


def test_envoy_gateway_orders_rate_limit_before_and_buffer_after_the_wasm_filter():
    docs = documents(GATEWAY)
    order = docs["EnvoyProxy"]["spec"]["filterOrder"]
    assert {"name": "envoy.filters.http.ratelimit", "before": "envoy.filters.http.wasm"} in order
    assert {"name": "envoy.filters.http.buffer", "after": "envoy.filters.http.wasm"} in order
    limit = docs["BackendTrafficPolicy"]["spec"]["requestBuffer"]["limit"]
    assert int(limit) == omni_http_filter("envoy.filters.http.buffer")["typed_config"]["max_request_bytes"]


def test_envoy_gateway_terminates_tls_and_forwards_nothing_as_production_does():
    docs = documents(GATEWAY)
    tls = docs["ClientTrafficPolicy"]["spec"]["tls"]
    assert (tls["minVersion"], tls["ciphers"]) == ("1.2", tls_suites())
    [rule] = docs["HTTPRoute"]["spec"]["rules"]
    assert "backendRefs" not in rule
    [route_filter] = rule["filters"]
    assert route_filter["extensionRef"]["name"] == docs["HTTPRouteFilter"]["metadata"]["name"]
    response = docs["HTTPRouteFilter"]["spec"]["directResponse"]
    assert (response["statusCode"], response["body"]["inline"]) == (404, omni_not_found()["body"]["inline_string"])
    for kind in ("EnvoyExtensionPolicy", "BackendTrafficPolicy"):
        assert docs[kind]["spec"]["targetRefs"][0]["name"] == docs["HTTPRoute"]["metadata"]["name"]


def test_the_deploy_guide_names_what_differs():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    cluster, _ = istio_cluster(documents(ISTIO))
    for needle in (cluster, "FAIL_RELOAD", "filterOrder", "enableEnvoyPatchPolicy", "deploy/istio/scim-edge.yaml", "deploy/envoy-gateway/scim-edge.yaml"):
        assert needle in guide, needle
