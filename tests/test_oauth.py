"""OAuth 2.0 client credentials at the edge (RFC 6749 §4.4), end to end through Envoy: the token
endpoint the filter serves itself, both client authentication methods, the RFC's error answers,
the failed-authentication budget, the access tokens on SCIM calls (and every way a token can be
bad), replicas sharing a key, and key rotation.

Tokens are also minted here, in Python, with the same key: a Python-minted token the gateway
accepts proves the format (RFC 7515/9068, HS256) and not just the filter agreeing with itself;
expired and foreign-audience tokens can only be made that way."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time

import pytest
import requests
import yaml

import local_stack as stack
from support.gateways import start_gateway, stop_gateway
from support.upstream_recorder import UpstreamRecorder

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GRANT = {"grant_type": "client_credentials"}
CLIENT = {"client_id": stack.DEV_CLIENT_ID, "client_secret": stack.DEV_CLIENT_SECRET}
ISSUER = AUDIENCE = "scim-edge-local"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def mint(key: str = stack.TOKEN_KEY, kid: str = "local-dev-1", alg: str = "HS256", **claims) -> str:
    """An access token as the edge writes it (RFC 9068), signed here."""
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": stack.DEV_CLIENT_ID, "client_id": stack.DEV_CLIENT_ID,
               "iat": now, "exp": now + 600, "jti": "test", **claims}
    header = {"alg": alg, "typ": "at+jwt", "kid": kid}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def token_url(gw) -> str:
    return f"{gw.origin}{stack.TOKEN_PATH}"


def get_token(gw, **form) -> str:
    response = requests.post(token_url(gw), headers=FORM, data={**GRANT, **CLIENT, **form}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def users(gw, token: str) -> requests.Response:
    return requests.get(f"{gw.base}/Users?count=1", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def assert_oauth_error(response: requests.Response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    return body


def assert_scim_401(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/scim+json"
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_client_secret_post_gets_a_token_that_works_for_scim(gateway):
    response = requests.post(token_url(gateway), headers=FORM, data={**GRANT, **CLIENT}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    header, payload, _ = body["access_token"].split(".")
    assert b64url_json(header) == {"alg": "HS256", "typ": "at+jwt", "kid": "local-dev-1"}
    claims = b64url_json(payload)
    assert claims["client_id"] == claims["sub"] == stack.DEV_CLIENT_ID
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 30

    mark = gateway.recorder.mark()
    scim = users(gateway, body["access_token"])
    assert scim.status_code == 200, scim.text
    forwarded = gateway.recorder.since(mark)
    assert len(forwarded) == 1
    assert forwarded[0].headers["authorization"] == f"Bearer {stack.UPSTREAM_TOKEN}", "the Omni key, never the token"


def test_client_secret_basic_gets_a_token_and_the_request_is_logged_by_client_name(gateway):
    # RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encodes them.
    credentials = base64.b64encode(f"{stack.DEV_CLIENT_ID}:{stack.DEV_CLIENT_SECRET}".encode()).decode()
    response = requests.post(token_url(gateway), headers={**FORM, "Authorization": f"Basic {credentials}"},
                             data=GRANT, timeout=10)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert users(gateway, token).status_code == 200
    assert gateway.counter("auth.accepted.client.local-dev-client") >= 1
    assert gateway.counter("oauth.issued.local-dev-client") >= 1
    log = gateway.envoy.log_text()
    assert "POST token client=local-dev-client status=200" in log
    assert "GET Users client=local-dev-client status=200" in log
    for secret in (token, token.split(".")[2], stack.DEV_CLIENT_SECRET, credentials, stack.TOKEN_KEY):
        assert secret not in log


def test_a_token_minted_elsewhere_with_the_same_key_is_accepted(gateway):
    """The format is the standard one: Python's HMAC over the JWS signing input."""
    assert users(gateway, mint()).status_code == 200


@pytest.mark.parametrize(
    "case",
    ["expired", "tampered", "wrong_key", "unknown_kid", "wrong_audience", "wrong_issuer", "alg_none",
     "unknown_client", "not_a_jwt"],
)
def test_bad_access_tokens_get_the_same_scim_401_as_a_bad_static_token(gateway, case):
    good = get_token(gateway)
    header, payload, signature = good.split(".")
    tampered_claims = {**b64url_json(payload), "exp": int(time.time()) + 10**6}
    token = {
        "expired": lambda: mint(iat=int(time.time()) - 7200, exp=int(time.time()) - 10),
        "tampered": lambda: f"{header}.{b64url(json.dumps(tampered_claims).encode())}.{signature}",
        "wrong_key": lambda: mint(key="another-key-of-at-least-32-bytes-long"),
        "unknown_kid": lambda: mint(kid="local-dev-2"),
        "wrong_audience": lambda: mint(aud="another-scim-service"),
        "wrong_issuer": lambda: mint(iss="someone-else"),
        "alg_none": lambda: f"{b64url(json.dumps({'alg': 'none', 'typ': 'at+jwt', 'kid': 'local-dev-1'}).encode())}.{payload}.",
        "unknown_client": lambda: mint(client_id="not-configured", sub="not-configured"),
        "not_a_jwt": lambda: good.replace(".", ""),
    }[case]()
    mark = gateway.recorder.mark()
    bad = users(gateway, token)
    static = users(gateway, "not-a-configured-token")
    assert_scim_401(bad)
    assert bad.json() == static.json(), "one 401 for every bad credential"
    assert gateway.recorder.since(mark) == []
    assert token not in gateway.envoy.log_text()


@pytest.fixture(scope="module")
def refusing_gateway(run_dir, scim_upstream, shipped_plugin_module):
    """A gateway of its own with a budget large enough that these failures are never throttled
    (and never spend the shared gateway's budget)."""
    plugin = copy.deepcopy(shipped_plugin_module)
    plugin["oauth"]["failed_auth_budget"] = {"per_minute": 10000, "burst": 10000}
    gw = start_gateway(run_dir, "envoy-oauth-refusals", scim_upstream, None, plugin)
    yield gw
    stop_gateway(gw)


@pytest.fixture(scope="module")
def shipped_plugin_module() -> dict:
    return stack.plugin_config(yaml.safe_load(stack.SHIPPED_CONFIG.read_text()))


@pytest.mark.parametrize(
    "case, status, error",
    [
        ("wrong_secret_post", 401, "invalid_client"),
        ("wrong_secret_basic", 401, "invalid_client"),
        ("unknown_client", 401, "invalid_client"),
        ("no_client_authentication", 401, "invalid_client"),
        ("wrong_grant", 400, "unsupported_grant_type"),
        ("no_grant", 400, "invalid_request"),
        ("get", 400, "invalid_request"),
        ("json_body", 400, "invalid_request"),
        ("two_methods", 400, "invalid_request"),
        ("repeated_parameter", 400, "invalid_request"),
    ],
)
def test_bad_token_requests_get_the_rfc_6749_errors(refusing_gateway, case, status, error):
    gw = refusing_gateway
    before = gw.counter(f"oauth.refused.{error}")
    url = token_url(gw)
    basic = "Basic " + base64.b64encode(f"{stack.DEV_CLIENT_ID}:wrong".encode()).decode()
    response = {
        "wrong_secret_post": lambda: requests.post(url, headers=FORM, data={**GRANT, **CLIENT, "client_secret": "wrong"}),
        "wrong_secret_basic": lambda: requests.post(url, headers={**FORM, "Authorization": basic}, data=GRANT),
        "unknown_client": lambda: requests.post(url, headers=FORM, data={**GRANT, **CLIENT, "client_id": "nobody"}),
        "no_client_authentication": lambda: requests.post(url, headers=FORM, data=GRANT),
        "wrong_grant": lambda: requests.post(url, headers=FORM, data={**CLIENT, "grant_type": "password"}),
        "no_grant": lambda: requests.post(url, headers=FORM, data=CLIENT),
        "get": lambda: requests.get(url, params={**GRANT, **CLIENT}),
        "json_body": lambda: requests.post(url, json={**GRANT, **CLIENT}),
        "two_methods": lambda: requests.post(url, headers={**FORM, "Authorization": basic}, data={**GRANT, **CLIENT}),
        "repeated_parameter": lambda: requests.post(url, headers=FORM, data="grant_type=client_credentials&client_id=a&client_id=b&client_secret=s"),
    }[case]()
    assert_oauth_error(response, status, error)
    if case == "wrong_secret_basic":
        assert response.headers["www-authenticate"].startswith("Basic")
    assert "access_token" not in response.text
    assert gw.counter(f"oauth.refused.{error}") == before + 1
    assert stack.DEV_CLIENT_SECRET not in gw.envoy.log_text()


def test_failed_client_authentications_are_budgeted_per_client(gateway_factory, scim_upstream, shipped_plugin):
    plugin = copy.deepcopy(shipped_plugin)
    other_secret = "second-client-secret"
    plugin["oauth"]["clients"].append(
        {"name": "second", "client_id": "second-client", "secret_sha256": hashlib.sha256(other_secret.encode()).hexdigest()})
    plugin["oauth"]["failed_auth_budget"] = {"per_minute": 1, "burst": 3}
    gw = gateway_factory("envoy-oauth-budget", scim_upstream, None, plugin)
    wrong = {**GRANT, **CLIENT, "client_secret": "guess"}
    statuses = [requests.post(token_url(gw), headers=FORM, data=wrong).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    throttled = requests.post(token_url(gw), headers=FORM, data={**GRANT, **CLIENT})
    assert_oauth_error(throttled, 429, "invalid_client")
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    # Another client's budget is its own.
    ok = requests.post(token_url(gw), headers=FORM,
                       data={**GRANT, "client_id": "second-client", "client_secret": other_secret})
    assert ok.status_code == 200, ok.text
    assert gw.counter("oauth.refused.throttled") == 3


def test_a_token_from_one_replica_is_accepted_by_another_sharing_the_key(gateway, gateway_factory, scim_upstream,
                                                                         monkeypatch):
    token = get_token(gateway)
    replica = gateway_factory("envoy-oauth-replica", scim_upstream, None)
    assert users(replica, token).status_code == 200
    assert users(gateway, get_token(replica)).status_code == 200
    monkeypatch.setenv(stack.TOKEN_KEY_ENV, "a-different-key-for-another-deployment")
    stranger = gateway_factory("envoy-oauth-other-key", scim_upstream, None)
    assert_scim_401(users(stranger, token))


def rotation_gateway(run_dir, name, upstream_port, keys: list[tuple[str, str, str]], signing: str):
    """A gateway whose signing keys are `(kid, env var, value)`, signing with `signing`."""
    config = yaml.safe_load(stack.SHIPPED_CONFIG.read_text())
    plugin = stack.plugin_config(config)
    plugin["oauth"]["signing_keys"] = [{"kid": kid, "secret_env": env} for kid, env, _ in keys]
    plugin["oauth"]["signing_kid"] = signing
    recorder = UpstreamRecorder(upstream_port).start()
    listen, admin = stack.free_port(), stack.free_port()
    rendered = stack.render(listen_port=listen, admin_port=admin, upstream_port=recorder.port, plugin=plugin)
    stack.wasm_filter(rendered)["vm_config"]["environment_variables"]["host_env_keys"] = [
        stack.UPSTREAM_TOKEN_ENV, *[env for _, env, _ in keys]]
    envoy = stack.start_envoy(rendered, admin, run_dir, name=name)
    origin = f"http://127.0.0.1:{listen}"
    from support.gateways import Gateway

    return Gateway(f"{origin}{stack.SCIM_PREFIX}", origin, f"http://127.0.0.1:{admin}", recorder, envoy)


def test_signing_keys_rotate_without_downtime(run_dir, scim_upstream, monkeypatch):
    old = ("2026-06", "SCIM_EDGE_TOKEN_KEY_OLD", "old-signing-key-0123456789-0123456789")
    new = ("2026-12", "SCIM_EDGE_TOKEN_KEY_NEW", "new-signing-key-9876543210-9876543210")
    for _, env, value in (old, new):
        monkeypatch.setenv(env, value)
    started = []
    try:
        before = rotation_gateway(run_dir, "envoy-rotate-before", scim_upstream, [old], "2026-06")
        started.append(before)
        old_token = get_token(before)
        # Step 1: the new key is added everywhere and signs; the old one still verifies.
        during = rotation_gateway(run_dir, "envoy-rotate-during", scim_upstream, [new, old], "2026-12")
        started.append(during)
        new_token = get_token(during)
        assert b64url_json(new_token.split(".")[0])["kid"] == "2026-12"
        assert users(during, old_token).status_code == 200
        assert users(during, new_token).status_code == 200
        # Step 2, once the old tokens have expired: the old key is removed.
        after = rotation_gateway(run_dir, "envoy-rotate-after", scim_upstream, [new], "2026-12")
        started.append(after)
        assert users(after, new_token).status_code == 200
        assert_scim_401(users(after, old_token))
        for gw in started:
            for _, _, value in (old, new):
                assert value not in gw.envoy.log_text()
    finally:
        for gw in started:
            gw.envoy.stop()
            gw.recorder.stop()


def test_static_tokens_and_access_tokens_work_side_by_side(gateway):
    static = users(gateway, stack.CLIENT_TOKEN)
    assert static.status_code == 200
    assert users(gateway, get_token(gateway)).status_code == 200
    assert "GET Users token=local-dev status=200" in gateway.envoy.log_text()


def test_a_chunked_token_request_is_read_to_its_end_and_an_oversized_one_refused(refusing_gateway):
    form = f"grant_type=client_credentials&client_id={stack.DEV_CLIENT_ID}&client_secret={stack.DEV_CLIENT_SECRET}"
    chunks = (part.encode() for part in (form[:10], form[10:30], form[30:]))
    chunked = requests.post(token_url(refusing_gateway), headers=FORM, data=chunks, timeout=10)
    assert chunked.status_code == 200, chunked.text
    assert users(refusing_gateway, chunked.json()["access_token"]).status_code == 200
    oversized = requests.post(token_url(refusing_gateway), headers=FORM, data=form + "&pad=" + "a" * 9000, timeout=10)
    assert_oauth_error(oversized, 400, "invalid_request")
