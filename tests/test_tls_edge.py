"""envoy/envoy.tls.yaml, the TLS edge Entra talks to, end to end with a certificate made in the test:
TLS 1.2 (Microsoft's ECDHE suites) and TLS 1.3 serve SCIM, TLS 1.1 and suites outside Microsoft's
list are refused in the handshake; the source-address allow-list lets a listed range through and
answers any other address with a SCIM 403, whatever X-Forwarded-For says, before anything reaches
the upstream. The template is envoy.omni.yaml apart from the TLS listener and the allow-list."""

from __future__ import annotations

import copy
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import yaml

from support import gateways
import local_stack as stack
from support.upstream_recorder import UpstreamRecorder

ROOT = stack.ROOT
TLS_CONFIG = ROOT / "envoy" / "envoy.tls.yaml"
OMNI_CONFIG = ROOT / "envoy" / "envoy.omni.yaml"
P = stack.SCIM_PREFIX
AUTH = {"Authorization": f"Bearer {stack.CLIENT_TOKEN}"}
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
# Microsoft's TLS 1.2 "minimum bar" for SCIM endpoints, in its order, less the two AES256-SHA384
# CBC suites Envoy's BoringSSL refuses (the template's comment says so).
MICROSOFT_TLS12_SUITES = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
]
RSA_SUITES = [s for s in MICROSOFT_TLS12_SUITES if s.startswith("ECDHE-RSA-")]


def hcm(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def chain(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]


def rbac(config: dict) -> dict:
    return next(f for f in hcm(config)["http_filters"] if f["name"] == "envoy.filters.http.rbac")


def make_certificate(directory: Path) -> Path:
    """A self-signed RSA 2048 certificate for 127.0.0.1 (Microsoft: RSA keys of at least 2048 bits),
    as tls.crt and tls.key in `directory` (a Kubernetes TLS Secret's layout)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test certificate"
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=scim-edge.test",
            "-addext", "subjectAltName=DNS:scim-edge.test,IP:127.0.0.1",
            "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt"),
        ],
        check=True, capture_output=True, timeout=60,
    )
    return directory


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    return make_certificate(tmp_path_factory.mktemp("tls"))


class TlsEdge:
    """envoy.tls.yaml on loopback: its SDS file rewritten to name the test's certificate, the
    allow-list set to `allow` (CIDR strings; None keeps the shipped one)."""

    def __init__(self, run_dir: Path, recorder: UpstreamRecorder, certs: Path, name: str, allow: list[str] | None):
        self.listen, self.admin_port = stack.free_port(), stack.free_port()
        config = stack.render_production(
            TLS_CONFIG, listen_port=self.listen, admin_port=self.admin_port, upstream_port=recorder.port
        )
        shipped_sds = yaml.safe_load((ROOT / "deploy" / "tls" / "scim_edge_cert.sds.yaml").read_text())
        secret = shipped_sds["resources"][0]["tls_certificate"]
        secret["certificate_chain"]["filename"] = str(certs / "tls.crt")
        secret["private_key"]["filename"] = str(certs / "tls.key")
        secret["watched_directory"]["path"] = str(certs)
        sds_dir = run_dir / f"{name}-sds"
        sds_dir.mkdir(parents=True, exist_ok=True)
        (sds_dir / "scim_edge_cert.sds.yaml").write_text(yaml.safe_dump(shipped_sds))
        tls = chain(config)["transport_socket"]["typed_config"]["common_tls_context"]
        source = tls["tls_certificate_sds_secret_configs"][0]["sds_config"]["path_config_source"]
        source.update(path=str(sds_dir / "scim_edge_cert.sds.yaml"), watched_directory={"path": str(sds_dir)})
        if allow is not None:
            principals = []
            for cidr in allow:
                address, length = cidr.split("/")
                principals.append({"direct_remote_ip": {"address_prefix": address, "prefix_len": int(length)}})
            rbac(config)["typed_config"]["rules"]["policies"]["azure_active_directory"]["principals"] = principals
        self.envoy = stack.start_envoy(config, self.admin_port, run_dir, name=name)
        gateways.running_envoys.append(self.envoy)
        self.recorder = recorder

    def stop(self) -> None:
        self.envoy.stop()
        gateways.running_envoys.remove(self.envoy)

    def request(self, context: ssl.SSLContext, method: str, path: str, headers: dict | None = None):
        connection = http.client.HTTPSConnection("127.0.0.1", self.listen, context=context, timeout=10)
        try:
            connection.request(method, path, headers={**AUTH, **(headers or {})})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read(), connection.sock.version(), connection.sock.cipher()[0]
        finally:
            connection.close()


def client(minimum: ssl.TLSVersion, maximum: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1, offered on purpose
        context.minimum_version, context.maximum_version = minimum, maximum
    if ciphers:
        context.set_ciphers(ciphers)  # @SECLEVEL=0 lets this client offer what the edge must refuse
    return context


@pytest.fixture(scope="module")
def recorder(module_recorder):
    return module_recorder


@pytest.fixture(scope="module")
def loopback_edge(run_dir, recorder, certificate):
    edge = TlsEdge(run_dir, recorder, certificate, "envoy-tls", allow=["127.0.0.0/8"])
    yield edge
    edge.stop()


def test_the_template_is_the_omni_config_plus_tls_and_the_allow_list():
    tls, omni = yaml.safe_load(TLS_CONFIG.read_text()), yaml.safe_load(OMNI_CONFIG.read_text())
    tls_params = chain(tls)["transport_socket"]["typed_config"]["common_tls_context"]["tls_params"]
    assert tls_params["tls_minimum_protocol_version"] == "TLSv1_2"
    assert tls_params["cipher_suites"] == MICROSOFT_TLS12_SUITES
    assert [f["name"] for f in hcm(tls)["http_filters"]][:2] == ["envoy.filters.http.rbac", "envoy.filters.http.wasm"]
    # What differs from envoy.omni.yaml, and nothing else:
    stripped = copy.deepcopy(tls)
    del stripped["node"]  # SDS needs a node identity
    del chain(stripped)["transport_socket"]
    del hcm(stripped)["local_reply_config"]
    hcm(stripped)["http_filters"].remove(rbac(stripped))
    stripped["static_resources"]["listeners"][0]["address"] = omni["static_resources"]["listeners"][0]["address"]
    assert hcm(tls).get("xff_num_trusted_hops", 0) == 0, "Envoy is the edge: X-Forwarded-For is the client's"
    del hcm(omni)["xff_num_trusted_hops"]
    assert stripped == omni


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
)
def test_tls_1_2_and_1_3_serve_scim(loopback_edge, version):
    mark = loopback_edge.recorder.mark()
    status, headers, body, negotiated, cipher = loopback_edge.request(
        client(version, version), "GET", f"{P}/Users?filter=userName%20eq%20%22nobody%40example.com%22"
    )
    assert (status, negotiated) == (200, {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version])
    assert json.loads(body)["totalResults"] == 0
    if version == ssl.TLSVersion.TLSv1_2:
        assert cipher in MICROSOFT_TLS12_SUITES
    assert len(loopback_edge.recorder.since(mark)) == 1


@pytest.mark.parametrize("suite", RSA_SUITES, ids=str)
def test_each_microsoft_rsa_suite_is_served(loopback_edge, suite):
    status, _, _, _, cipher = loopback_edge.request(
        client(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, suite), "GET", f"{P}/ServiceProviderConfig"
    )
    assert (status, cipher) == (200, suite)


def handshake_error(edge: TlsEdge, context: ssl.SSLContext) -> str:
    mark = edge.recorder.mark()
    with pytest.raises(ssl.SSLError) as refused:
        edge.request(context, "GET", f"{P}/Users")
    assert edge.recorder.since(mark) == []
    return str(refused.value)


def test_tls_1_1_is_refused(loopback_edge):
    error = handshake_error(loopback_edge, client(ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0"))
    assert "PROTOCOL_VERSION" in error.upper(), error  # the edge's alert, not a client-side refusal


@pytest.mark.parametrize(
    "suite",
    ["AES128-GCM-SHA256", "AES256-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-CHACHA20-POLY1305"],
    ids=["rsa-kx-gcm", "rsa-kx-cbc-sha1", "ecdhe-cbc-sha1", "ecdhe-chacha-not-listed"],
)
def test_tls_1_2_suites_outside_microsofts_list_are_refused(loopback_edge, suite):
    error = handshake_error(
        loopback_edge, client(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, f"{suite}:@SECLEVEL=0")
    )
    assert "HANDSHAKE_FAILURE" in error.upper(), error


def test_an_address_outside_the_allow_list_gets_a_scim_403_and_nothing_reaches_the_upstream(
    run_dir, recorder, certificate
):
    edge = TlsEdge(run_dir, recorder, certificate, "envoy-tls-denied", allow=["192.0.2.0/24", "2001:db8::/32"])
    try:
        context = client(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
        mark = recorder.mark()
        for headers in ({}, {"X-Forwarded-For": "192.0.2.7"}):  # a client's XFF cannot widen the list
            for method, path in [("GET", f"{P}/Users"), ("GET", f"{P}/ServiceProviderConfig"), ("GET", "/")]:
                status, response_headers, body, _, _ = edge.request(context, method, path, headers)
                assert status == 403
                assert response_headers["content-type"] == "application/scim+json"
                assert json.loads(body) == {"schemas": [SCIM_ERROR], "status": "403", "detail": "Source address not allowed"}
        assert recorder.since(mark) == []
    finally:
        edge.stop()


def test_the_filters_own_errors_are_not_rewritten_by_the_allow_list_mapping(loopback_edge):
    status, headers, body, _, _ = loopback_edge.request(
        client(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3), "GET", f"{P}/Users", {"Authorization": "Bearer wrong"}
    )
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert json.loads(body)["status"] == "401"


def served_certificate(edge: TlsEdge) -> bytes:
    context = client(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    with socket.create_connection(("127.0.0.1", edge.listen), timeout=5) as raw:
        with context.wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def test_a_certificate_renewed_in_the_watched_directory_is_served_without_a_restart(run_dir, recorder, tmp_path):
    """The SDS layout at work: new tls.key and tls.crt renamed into the watched directory (as a
    Kubernetes Secret update lands) are served by the running Envoy. The shipped allow-list (every
    address) is kept here."""
    certs = make_certificate(tmp_path / "certs")
    edge = TlsEdge(run_dir, recorder, certs, "envoy-tls-rotation", allow=None)
    try:
        before = served_certificate(edge)
        assert before == ssl.PEM_cert_to_DER_cert((certs / "tls.crt").read_text())
        renewed = make_certificate(tmp_path / "renewed")
        expected = ssl.PEM_cert_to_DER_cert((renewed / "tls.crt").read_text())
        os.replace(renewed / "tls.key", certs / "tls.key")
        os.replace(renewed / "tls.crt", certs / "tls.crt")
        deadline = time.monotonic() + 10
        while served_certificate(edge) != expected:
            assert time.monotonic() < deadline, "the renewed certificate was not picked up"
            time.sleep(0.1)
        status, _, _, _, _ = edge.request(client(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3), "GET", f"{P}/ServiceProviderConfig")
        assert status == 200
    finally:
        edge.stop()
