"""Issue 13, the seams: requests that must never slip past the filter, upstream answers that must
not lock or leak through the edge, and the shipped Envoy configuration's own limits. Every test
goes through a real Envoy with the built wasm; a scripted upstream (tests/upstream_recorder.py)
plays the misbehaving Omni. docs/robustness.md lists each attack with what the edge answered and
what reached the upstream."""

from __future__ import annotations

import time

import pytest
import requests

from test_gateway_e2e import AUTH, assert_scim_error
from upstream_recorder import UpstreamRecorder


@pytest.fixture
def scripted():
    recorder = UpstreamRecorder(target_port=None).start()
    yield recorder
    recorder.stop()


# ---------------------------------------------------------------------------------------------------
# Item 4: one upstream answer must not lock provisioning


@pytest.mark.parametrize(
    "sent",
    ["99999999999", "9" * 40, "Fri, 31 Dec 9999 23:59:59 GMT", "Friday, 31-Dec-99 23:59:59 GMT", "soon", "-1"],
)
def test_an_upstream_retry_after_is_bounded_by_default(gateway_factory, scripted, sent):
    scripted.behaviour, scripted.retry_after = "throttle", sent
    gw = gateway_factory("envoy-retry-after", scripted.port, scripted)
    response = requests.get(f"{gw.base}/Users", headers=AUTH)
    assert_scim_error(response, 429)
    wait = int(response.headers["retry-after"])
    assert 0 <= wait <= 3600, sent
    # The budget backs off for that long, no longer: the edge's own 429 says so.
    again = requests.get(f"{gw.base}/Users", headers=AUTH)
    assert_scim_error(again, 429)
    assert int(again.headers["retry-after"]) <= 3600


def test_a_huge_retry_after_blocks_only_as_long_as_configured(gateway_factory, scripted, shipped_plugin):
    scripted.behaviour, scripted.retry_after = "throttle_text", "99999999999"
    plugin = {**shipped_plugin, "upstream": {**shipped_plugin["upstream"], "max_retry_after_s": 2}}
    gw = gateway_factory("envoy-retry-after-2s", scripted.port, scripted, plugin)
    for sent in ["99999999999", "Fri, 31 Dec 9999 23:59:59 GMT", "garbage"]:
        scripted.behaviour, scripted.retry_after = "throttle", sent
        response = requests.get(f"{gw.base}/Users", headers=AUTH)
        assert_scim_error(response, 429)
        assert response.headers["retry-after"] == "2", sent
        mark = scripted.mark()
        assert_scim_error(requests.get(f"{gw.base}/Users", headers=AUTH), 429)
        assert scripted.since(mark) == [], "backing off: nothing goes upstream"
        time.sleep(2.2)
        scripted.behaviour = "error_json"
        scripted.error_status = 404
        assert requests.get(f"{gw.base}/Users", headers=AUTH).status_code == 404, sent
        assert len(scripted.since(mark)) == 1, f"{sent}: the upstream is called again after the bound"


# ---------------------------------------------------------------------------------------------------
# Item 6: the client's Host never ends up in a URL the edge hands out


@pytest.mark.parametrize(
    "forged",
    [
        {"Host": "evil.example"},
        {"Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example;proto=http"},
    ],
)
def test_urls_are_built_on_the_configured_public_base(gateway, forged):
    from test_gateway_e2e import SCIM_JSON, new_user

    created = requests.post(f"{gateway.base}/Users", headers={**SCIM_JSON, **forged}, json=new_user())
    assert created.status_code == 201, created.text
    user = created.json()
    assert created.headers["location"] == f"{gateway.base}/Users/{user['id']}"
    assert user["meta"]["location"] == f"{gateway.base}/Users/{user['id']}"
    read = requests.get(f"{gateway.base}/Users/{user['id']}", headers={**AUTH, **forged})
    assert read.json()["meta"]["location"] == f"{gateway.base}/Users/{user['id']}"
    for endpoint in ["ServiceProviderConfig", "ResourceTypes", "Schemas"]:
        answer = requests.get(f"{gateway.base}/{endpoint}", headers={**AUTH, **forged})
        assert answer.status_code == 200
        assert "evil" not in answer.text, endpoint
        assert gateway.base in answer.text, endpoint
