"""Entra's own JWT (the Secret Token left blank), end to end: the jwt_authn filter of the shipped
envoy/envoy.entra-jwt.yaml, with its remote JWKS swapped for a local one holding an RSA key made
here (no internet), in front of the gateway; scim-edge admits only a configured tenant and Entra's
provisioning service. Every refusal, jwt_authn's included, is the gateway's SCIM 401 and nothing
reaches the upstream.

Also here: all three methods (static token, OAuth access token, Entra JWT) enabled together, each
request's log line and counter naming the token, client or tenant that admitted it."""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import local_stack as stack
from support.gateways import Gateway
from support.upstream_recorder import UpstreamRecorder

ENTRA_CONFIG = stack.ROOT / "envoy" / "envoy.entra-jwt.yaml"
TENANT = "7a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_TENANT = "0f0e0d0c-1111-4222-8333-444455556666"
PROVISIONING_APP = "00000014-0000-0000-c000-000000000000"
SCIM_AUDIENCE = "8adf8e6e-67b2-4cf2-a259-e3dc5476c621"
KID = "test-key-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_int(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks(signing_key) -> str:
    numbers = signing_key.public_key().public_numbers()
    return json.dumps({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
                                 "n": b64url_int(numbers.n), "e": b64url_int(numbers.e)}]})


def entra_token(key, *, alg: str = "RS256", kid: str = KID, **claims) -> str:
    """A v1 token as Entra's provisioning service sends it to a SCIM endpoint."""
    now = int(time.time())
    payload = {
        "aud": SCIM_AUDIENCE,
        "iss": f"https://sts.windows.net/{TENANT}/",
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
        "appid": PROVISIONING_APP, "appidacr": "2", "idp": f"https://sts.windows.net/{TENANT}/",
        "oid": str(uuid.uuid4()), "sub": str(uuid.uuid4()), "tid": TENANT, "ver": "1.0",
        **claims,
    }
    header = {"typ": "JWT", "alg": alg, "kid": kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if alg == "none":
        return f"{signing_input}."
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def shipped_jwt_authn(jwks: str) -> dict:
    """The jwt_authn filter of envoy.entra-jwt.yaml, for TENANT, with the JWKS inline."""
    shipped = yaml.safe_load(ENTRA_CONFIG.read_text())
    chain = shipped["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    jwt_filter = copy.deepcopy(next(f for f in chain["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn"))
    provider = jwt_filter["typed_config"]["providers"]["entra"]
    provider["issuer"] = provider["issuer"].replace("00000000-0000-0000-0000-000000000000", TENANT)
    del provider["remote_jwks"]
    provider["local_jwks"] = {"inline_string": jwks}
    return jwt_filter


def entra_plugin(with_everything: bool = False) -> dict:
    """The shipped entra_jwt section (tenant replaced) on the local stack's plugin configuration;
    with_everything keeps its static token and OAuth client too."""
    shipped = stack.plugin_config(yaml.safe_load(ENTRA_CONFIG.read_text()))
    plugin = stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))
    plugin["entra_jwt"] = copy.deepcopy(shipped["entra_jwt"])
    plugin["entra_jwt"]["tenants"] = [{"name": "contoso", "tenant_id": TENANT}]
    if not with_everything:
        del plugin["tokens"], plugin["oauth"]
    return plugin


def start_entra_gateway(run_dir, name, upstream_port, jwks, plugin, extra_args=()) -> Gateway:
    recorder = UpstreamRecorder(upstream_port).start()
    listen, admin = stack.free_port(), stack.free_port()
    config = stack.render(listen_port=listen, admin_port=admin, upstream_port=recorder.port, plugin=plugin)
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    chain["http_filters"].insert(0, shipped_jwt_authn(jwks))
    envoy = stack.start_envoy(config, admin, run_dir, name=name, extra_args=extra_args)
    origin = f"http://127.0.0.1:{listen}"
    return Gateway(f"{origin}{stack.SCIM_PREFIX}", origin, f"http://127.0.0.1:{admin}", recorder, envoy)


@pytest.fixture(scope="module")
def entra_gateway(run_dir, scim_upstream, jwks):
    gw = start_entra_gateway(run_dir, "envoy-entra-jwt", scim_upstream, jwks, entra_plugin())
    yield gw
    gw.envoy.stop()
    gw.recorder.stop()


def users(gw, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.get(f"{gw.base}/Users?count=1", headers=headers, timeout=10)


def test_a_valid_entra_token_is_admitted_as_its_tenant(entra_gateway, signing_key):
    mark = entra_gateway.recorder.mark()
    token = entra_token(signing_key)
    response = users(entra_gateway, token)
    assert response.status_code == 200, response.text
    forwarded = entra_gateway.recorder.since(mark)
    assert len(forwarded) == 1
    assert forwarded[0].headers["authorization"] == f"Bearer {stack.UPSTREAM_TOKEN}", "never Entra's token"
    assert entra_gateway.counter("auth.accepted.tenant.contoso") >= 1
    log = entra_gateway.envoy.log_text()
    assert "GET Users tenant=contoso status=200" in log
    assert token not in log and TENANT not in log


def other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


BAD_TOKENS = {
    # Verified by jwt_authn, refused by scim-edge.
    "wrong_tid": lambda key: entra_token(key, tid=OTHER_TENANT),
    "wrong_appid": lambda key: entra_token(key, appid="11111111-2222-4333-8444-555555555555"),
    "no_appid": lambda key: entra_token(key, appid=None),
    # Refused by jwt_authn (no payload in metadata): scim-edge answers.
    "wrong_audience": lambda key: entra_token(key, aud="https://graph.microsoft.com"),
    "other_tenants_issuer": lambda key: entra_token(key, iss=f"https://sts.windows.net/{OTHER_TENANT}/", tid=OTHER_TENANT),
    "expired": lambda key: entra_token(key, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200,
                                       exp=int(time.time()) - 600),
    "bad_signature": lambda key: entra_token(other_key()),
    "unknown_kid": lambda key: entra_token(other_key(), kid="unknown-key"),
    "alg_none": lambda key: entra_token(key, alg="none"),
    "missing": lambda key: None,
}


@pytest.mark.parametrize("case", BAD_TOKENS)
def test_bad_entra_tokens_get_the_scim_401_and_nothing_reaches_the_upstream(entra_gateway, signing_key, case):
    token = BAD_TOKENS[case](signing_key)
    mark = entra_gateway.recorder.mark()
    response = users(entra_gateway, token)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/scim+json"
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "401"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert entra_gateway.recorder.since(mark) == []
    if token:
        assert token not in entra_gateway.envoy.log_text()


def test_all_three_methods_together_each_named_in_log_and_counters(run_dir, scim_upstream, jwks, signing_key):
    gw = start_entra_gateway(run_dir, "envoy-all-methods", scim_upstream, jwks, entra_plugin(with_everything=True))
    try:
        token = requests.post(
            f"{gw.origin}{stack.TOKEN_PATH}", timeout=10,
            data={"grant_type": "client_credentials", "client_id": stack.DEV_CLIENT_ID,
                  "client_secret": stack.DEV_CLIENT_SECRET}).json()["access_token"]
        for credential in (stack.CLIENT_TOKEN, token, entra_token(signing_key)):
            assert users(gw, credential).status_code == 200
        assert users(gw, entra_token(signing_key, tid=OTHER_TENANT)).status_code == 401
        assert users(gw, "wrong").status_code == 401
        log = gw.envoy.log_text()
        for label in ("token=local-dev", "client=local-dev-client", "tenant=contoso"):
            assert f"GET Users {label} status=200" in log
        assert gw.counter("auth.accepted.local-dev") == 1
        assert gw.counter("auth.accepted.client.local-dev-client") == 1
        assert gw.counter("auth.accepted.tenant.contoso") == 1
        assert gw.counter("auth.rejected.invalid") == 2
    finally:
        gw.envoy.stop()
        gw.recorder.stop()


def test_without_get_property_on_the_capability_list_entra_tokens_are_refused_and_the_vm_lives(
        run_dir, scim_upstream, jwks, signing_key):
    """A VM pinned without proxy_get_property: Envoy answers the call InternalFailure (seen in the
    wasm trace), the filter reads no payload, refuses Entra's token with the SCIM 401 and keeps
    serving static tokens (the SDK's get_property returns that status as an error, no panic)."""
    recorder = UpstreamRecorder(scim_upstream).start()
    listen, admin = stack.free_port(), stack.free_port()
    config = stack.render(listen_port=listen, admin_port=admin, upstream_port=recorder.port,
                          plugin=entra_plugin(with_everything=True))
    del stack.wasm_filter(config)["capability_restriction_config"]["allowed_capabilities"]["proxy_get_property"]
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    chain["http_filters"].insert(0, shipped_jwt_authn(jwks))
    envoy = stack.start_envoy(config, admin, run_dir, name="envoy-entra-no-property")
    gw = Gateway(f"http://127.0.0.1:{listen}{stack.SCIM_PREFIX}", f"http://127.0.0.1:{listen}",
                 f"http://127.0.0.1:{admin}", recorder, envoy)
    try:
        assert users(gw, entra_token(signing_key)).status_code == 401
        assert users(gw, stack.CLIENT_TOKEN).status_code == 200
        assert "panic" not in envoy.log_text().lower()
    finally:
        envoy.stop()
        recorder.stop()
