"""The discovery endpoints (RFC 7644 §4) through the real Envoy: answered by the edge itself under both
mapping profiles, describing what the edge lets through, with nothing reaching the upstream."""

from __future__ import annotations

import requests
from scim2_models import Context, ListResponse, ResourceType, Schema, ServiceProviderConfig

import local_stack as stack
from support.gateways import plugin_with_profile
from support.upstream_recorder import UpstreamRecorder

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
OMNI_ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
AUTH = {"Authorization": f"Bearer {stack.CLIENT_TOKEN}"}


def get(gateway, path: str, status: int = 200, headers: dict | None = None) -> dict:
    response = requests.get(f"{gateway.base}/{path}", headers=AUTH if headers is None else headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/scim+json"
    return response.json()


def attribute_names(schema: dict) -> list[str]:
    names = []
    for attribute in schema["attributes"]:
        names.append(attribute["name"])
        names.extend(f"{attribute['name']}.{sub['name']}" for sub in attribute.get("subAttributes", []))
    return names


def discovery(gateway) -> dict[str, dict]:
    """Every discovery document the edge serves, by path, each checked against scim2-models (the
    library the compliance checkers parse them with)."""
    documents = {
        "ServiceProviderConfig": get(gateway, "ServiceProviderConfig"),
        "Schemas": get(gateway, "Schemas"),
        "ResourceTypes": get(gateway, "ResourceTypes"),
    }
    ServiceProviderConfig.model_validate(documents["ServiceProviderConfig"], scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for listed, model in [("Schemas", Schema), ("ResourceTypes", ResourceType)]:
        ListResponse[model].model_validate(documents[listed], scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        assert documents[listed]["schemas"] == [LIST]
        assert documents[listed]["totalResults"] == len(documents[listed]["Resources"])
        for resource in documents[listed]["Resources"]:
            one = get(gateway, f"{listed}/{resource['id']}")
            assert one == resource
            assert one["meta"]["location"] == f"{gateway.base}/{listed}/{resource['id']}"
            documents[f"{listed}/{resource['id']}"] = one
    assert documents["ServiceProviderConfig"]["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{gateway.base}/ServiceProviderConfig",
    }
    return documents


def assert_edge_config(spc: dict, max_body_bytes: int) -> None:
    assert spc["patch"] == {"supported": True}
    assert spc["bulk"] == {"supported": False, "maxOperations": 0, "maxPayloadSize": max_body_bytes}
    assert spc["filter"] == {"supported": True, "maxResults": 100}
    assert spc["changePassword"] == {"supported": False}
    assert spc["sort"] == {"supported": False}
    assert spc["etag"] == {"supported": False}
    [scheme] = spc["authenticationSchemes"]
    assert (scheme["type"], scheme["name"]) == ("oauthbearertoken", "OAuth Bearer Token")
    assert scheme["specUri"] == "https://www.rfc-editor.org/info/rfc6750"


def test_the_shipped_omni_gateway_describes_itself_and_calls_nobody(gateway, shipped_plugin):
    mark = gateway.recorder.mark()
    documents = discovery(gateway)
    assert_edge_config(documents["ServiceProviderConfig"], shipped_plugin["max_body_bytes"])
    assert [s["id"] for s in documents["Schemas"]["Resources"]] == [USER, GROUP]
    user = documents[f"Schemas/{USER}"]
    assert attribute_names(user) == ["userName", "displayName", "active"]
    assert "externalId is not forwarded" in user["description"]
    assert attribute_names(documents[f"Schemas/{GROUP}"]) == [
        "displayName", "members", "members.value", "members.$ref", "members.type", "members.display",
    ]
    published = str(documents["Schemas"])
    for unmapped in ["'roles'", "'entitlements'", "'groups'", "'x509Certificates'", "'password'", "omni_", ENTERPRISE]:
        assert unmapped not in published, unmapped
    assert [(r["id"], r["endpoint"], r["schema"]) for r in documents["ResourceTypes"]["Resources"]] == [
        ("User", "/Users", USER),
        ("Group", "/Groups", GROUP),
    ]
    assert "schemaExtensions" not in documents["ResourceTypes/User"]
    assert gateway.recorder.since(mark) == [], "discovery never reaches the upstream"


def test_discovery_needs_the_token_and_keeps_the_routing_rules(gateway):
    mark = gateway.recorder.mark()
    for path in ["ServiceProviderConfig", "Schemas", f"Schemas/{USER}", "ResourceTypes/User"]:
        refused = requests.get(f"{gateway.base}/{path}")
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"] == 'Bearer realm="scim-edge"'
    assert get(gateway, "Schemas/urn:example:nope", 404)["status"] == "404"
    assert get(gateway, f"Schemas/{ENTERPRISE}", 404)["status"] == "404", "an unpublished schema is unknown"
    assert get(gateway, "ResourceTypes/Agent", 404)["status"] == "404"
    assert get(gateway, "ServiceProviderConfig/x", 404)["status"] == "404"
    assert get(gateway, "Schemas?filter=id%20eq%20%22x%22", 400)["scimType"] == "invalidValue"
    not_allowed = requests.post(f"{gateway.base}/ResourceTypes", headers={**AUTH, "Content-Type": "application/scim+json"}, json={})
    assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "GET"
    assert gateway.recorder.since(mark) == []


def test_mapped_omni_user_attributes_publish_their_extension(gateway_factory, scim_upstream, shipped_plugin):
    plugin = dict(shipped_plugin)
    plugin["mapping"] = {"profile": "omni", "users": {"add": ["title", f"{OMNI_ATTRIBUTES}:department"]}}
    recorder = UpstreamRecorder(scim_upstream).start()
    try:
        gateway = gateway_factory("envoy-omni-custom", recorder.port, recorder, plugin)
        documents = discovery(gateway)
        assert [s["id"] for s in documents["Schemas"]["Resources"]] == [USER, OMNI_ATTRIBUTES, GROUP]
        assert attribute_names(documents[f"Schemas/{USER}"]) == ["userName", "displayName", "title", "active"]
        extension = documents[f"Schemas/{OMNI_ATTRIBUTES}"]
        [department] = extension["attributes"]
        assert (department["name"], department["type"], department["multiValued"]) == ("department", "string", False)
        assert "omni_" not in str(extension["attributes"])
        assert documents["ResourceTypes/User"]["schemaExtensions"] == [{"schema": OMNI_ATTRIBUTES, "required": False}]
        assert recorder.since(0) == []
    finally:
        recorder.stop()


def test_the_rfc_gateway_publishes_every_rfc7643_attribute(gateway_factory, scim_upstream):
    plugin = plugin_with_profile("rfc")
    recorder = UpstreamRecorder(scim_upstream).start()
    try:
        gateway = gateway_factory("envoy-rfc-discovery", recorder.port, recorder, plugin)
        documents = discovery(gateway)
        assert_edge_config(documents["ServiceProviderConfig"], plugin["max_body_bytes"])
        assert [s["id"] for s in documents["Schemas"]["Resources"]] == [USER, ENTERPRISE, GROUP]
        user = attribute_names(documents[f"Schemas/{USER}"])
        for name in ["userName", "name.givenName", "emails.value", "groups.$ref", "roles", "x509Certificates.value", "password"]:
            assert name in user, name
        assert "externalId passes" in documents[f"Schemas/{USER}"]["description"]
        assert "manager.$ref" in attribute_names(documents[f"Schemas/{ENTERPRISE}"])
        assert documents["ResourceTypes/User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
        # A count above maxResults is reduced before it goes upstream.
        listed = requests.get(f"{gateway.base}/Users?count=1000", headers=AUTH)
        assert listed.status_code == 200, listed.text
        assert [r.path for r in recorder.since(0)] == ["/v2/Users?count=100"], "only the query reached the upstream"
    finally:
        recorder.stop()
