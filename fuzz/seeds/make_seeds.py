#!/usr/bin/env python3
"""Writes the hand-written seed inputs of every fuzz target into fuzz/corpus/<target>/.

The seeds are the tests/fixtures bodies (RFC 7643 examples, what Entra sends) and edge cases.
Each file is named after a digest of its content, as libFuzzer names corpus files, so running
this again is idempotent. `cargo fuzz cmin` keeps the corpus small afterwards.
"""
import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures"

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
OMNI = "urn:omni:params:1.0:UserAttribute"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ADSCIM = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def write(target, data):
    if isinstance(data, (dict, list)):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def fixtures(*names):
    for name in names:
        yield (FIXTURES / name).read_bytes()


# resource ------------------------------------------------------------------------------------
for body in fixtures("entra/create-user.json", "entra/create-group.json", "rfc7643/group.json",
                     "rfc7643/user-enterprise.json", "rfc7643/user-full.json", "rfc7643/user-minimal.json"):
    write("resource", body)
for body in [
    {"schemas": [USER], "userName": "ada@example.com", "displayName": "Ada", "active": "False"},
    {"schemas": [USER.upper()], "USERNAME": "ada@example.com", "DisplayName": "Ada", "ACTIVE": "TRUE",
     "name": {"GivenName": "Ada", "familyName": None}, "nickName": None},
    {"schemas": [USER], "userName": "ada@example.com", "displayName": "Ada",
     f"{ENT}:employeeNumber": "42", f"{ENT}:manager.value": "m1", f"{ENT}:manager.$ref": "../Users/m1"},
    {"schemas": [USER, ENT], "userName": "ada@example.com", "displayName": "Ada",
     ENT: {"schemas": [ENT], "department": "R&D", "manager": {"value": "m1", "displayName": "Boss"}}},
    {"schemas": [USER, OMNI], "userName": "ada@example.com", "displayName": "Ada",
     OMNI: {"department": "R&D", "omni_is_org_admin": True, "unlisted": [1, {"a": None}]}},
    {"schemas": [USER], "userName": "ada@example.com", "displayName": "Ada", f"{OMNI}:department": 1.5e300},
    {"schemas": [USER], "id": "2819c223-7f76-453a-919d-413861904646", "userName": "ada@example.com",
     "displayName": "Ada", "meta": {"resourceType": "User"}, "groups": [{"value": "g"}]},
    {"schemas": [USER], "id": "other", "userName": "ada@example.com"},
    {"schemas": [USER], "userName": "ada@example.com", "displayName": "Ada",
     "emails": [{"value": "a@example.com", "primary": True, "type": "work"}, None,
                {"value": "b@example.com", "primary": "false"}],
     "roles": [{"value": "admin"}], "x509Certificates": [{"value": "MIIB"}]},
    {"schemas": [USER], "userName": "ada@example.com", "userName ": "x"},
    {"schemas": [USER], "userName": "ada", "displayName": "Ada"},
    {"schemas": [USER], "userName": ""},
    {"schemas": ["urn:unknown"], "userName": "ada@example.com"},
    {"schemas": [GROUP, ADSCIM], "displayName": "G", "externalId": "e",
     "members": [{"value": "u1", "display": "Ada", "$ref": None, "type": "User"}]},
    {"schemas": [GROUP], "displayName": "G", "members": [{"value": "u1"}]},
    {"schemas": [GROUP], "displayName": "G", "members": None},
    {"SCHEMAS": [GROUP], "DISPLAYNAME": "G", "Members": []},
]:
    write("resource", body)
write("resource", '{"schemas":["%s"],"userName":"a@b","a":%s1%s}' % (USER, "[" * 40, "]" * 40))
write("resource", '{"schemas":["%s"],"userName":"a@b","userName":"c@d"}' % USER)
write("resource", "")
write("resource", "[]")
write("resource", '{"schemas":')

# patch ---------------------------------------------------------------------------------------
for body in fixtures(*(f"entra/{n}.json" for n in ["disable-flag", "disable-noflag", "group-add",
                                                     "group-remove-flag", "group-remove-noflag",
                                                     "multi-replace-flag"])):
    write("patch", body)


def patch(*operations):
    return {"schemas": [PATCH], "Operations": list(operations)}


for body in [
    patch({"op": "replace", "value": {"displayName": "Ada", "name.givenName": "A", f"{ENT}:department": "R",
                                      ENT: {"employeeNumber": "1", "schemas": [ENT]}, "active": "true"}}),
    patch({"op": "Replace", "path": "displayName", "value": None}),
    patch({"op": "add", "path": "displayName", "value": None}),
    patch({"op": "remove", "path": "name.givenName"}),
    patch({"op": "remove", "path": "userName"}),
    patch({"op": "remove", "path": ENT}),
    patch({"op": "replace", "path": ENT, "value": {"department": "R", "manager": {"value": "m"}}}),
    patch({"op": "replace", "path": f"{OMNI}:department", "value": {"nested": [1, 2]}}),
    patch({"op": "remove", "path": f"{OMNI}:department"}),
    patch({"op": "replace", "path": f"{OMNI}:unlisted", "value": 1}),
    patch({"op": "replace", "path": f"{OMNI}:omni_user_id", "value": "x"}),
    patch({"op": "add", "path": "emails", "value": [{"value": "a@example.com", "primary": True}]}),
    patch({"op": "replace", "path": "emails[type eq \"work\" and primary eq true].value", "value": "a@b"}),
    patch({"op": "remove", "path": "emails[value co \"@example.com\"]"}),
    patch({"op": "remove", "path": "members[display eq \"Ada Lovelace\"]"}),
    patch({"op": "add", "path": "members[value eq \"u1\"].display", "value": "Ada"}),
    patch({"op": "remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}),
    patch({"op": "remove", "path": "members"}),
    patch({"op": "replace", "path": "members", "value": [{"value": "u1", "display": "A"}]}),
    patch({"op": "add", "value": {"members": [{"value": "u1"}], "displayName": "G", "externalId": "e"}}),
    patch({"op": "replace", "path": "id", "value": "x"}),
    patch({"op": "replace", "path": "meta.created", "value": "x"}),
    patch({"op": "move", "path": "displayName", "value": "x"}),
    patch({"op": "replace", "path": "manager", "value": {"value": "m1", "$ref": "x"}}),
    patch({"op": "replace", "path": "roles", "value": [{"value": "admin"}]}),
    {"schemas": [PATCH], "Operations": []},
    {"schemas": [PATCH, USER], "Operations": [{"op": "remove", "path": "title"}]},
    {"Operations": [{"op": "remove", "path": "title"}], "extra": 1},
]:
    write("patch", body)

# filter --------------------------------------------------------------------------------------
for text in [
    'userName eq "Test_User_00aa00aa@testuser.com"',
    'externalId eq "0a21f0f2"',
    'displayName eq "Group 1"',
    'members[value eq "42"]',
    'emails[type eq "work" and value co "@example.com"] or emails[primary eq true]',
    'not (active eq false) and (title pr or userType ne "x")',
    'name.givenName sw "A" and name.familyName ew "z"',
    'meta.lastModified gt "2011-05-13T04:42:34Z"',
    'meta.version eq -1.5e+10',
    f'{ENT}:manager.value eq "m1"',
    f'{ENT}:manager[displayName sw "A"]',
    f'{OMNI}:department eq "R&D"',
    'manager.value eq "m1"',
    'USERNAME EQ "a" OR ((displayName pr))',
    'userName eq "\\u00e9\\"\\\\\\n"',
    'userName eq null',
    'emails[type eq "work"].value',
    'members[value eq "u1"].display',
    'name.givenName',
    'emails[',
    '((((((((((((((((((title pr))))))))))))))))))',
    'userName eq "unterminated',
    'unknownAttr eq "x"',
    'userName gt true',
]:
    write("filter", text)

# query ---------------------------------------------------------------------------------------
for line in [
    "GET /api/scim/v2/Users?filter=userName+eq+%22Test_User_00aa00aa%40testuser.com%22",
    "GET /api/scim/v2/Users?filter=userName%20eq%20%22ada@example.com%22&startIndex=1&count=100",
    "GET /api/scim/v2/Groups?excludedAttributes=members&filter=displayName+eq+%22Group+1%22",
    "GET /api/scim/v2/Users?attributes=USERNAME,%20name.givenName%20,emails.value,employeeNumber"
    "&sortBy=manager.displayName&sortOrder=DESCENDING",
    "GET /api/scim/v2/Users?filter=title+pr+or+active+eq+true&count=-5&startIndex=0",
    "GET /api/scim/v2/Users?filter=emails%5Btype+eq+%22work%22%5D&count=99999",
    "GET /api/scim/v2/Users/2819c223-7f76-453a-919d-413861904646?attributes=userName",
    "PATCH /api/scim/v2/Groups/7f3a?excludedAttributes=members",
    "DELETE /api/scim/v2/Users/user%40example.com",
    "DELETE /api/scim/v2/Users/1?attributes=userName",
    "PUT /api/scim/v2/Users/a:b@c",
    "POST /api/scim/v2/Users/.search",
    "POST /api/scim/v2/.search",
    "GET /api/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "GET /api/scim/v2/ResourceTypes/User",
    "GET /api/scim/v2/ServiceProviderConfig",
    "GET /api/scim/v2/Me",
    "GET /api/scim/v2/Users/a%2Fb",
    "GET /api/scim/v2x/Users",
    "OPTIONS /api/scim/v2/Users",
    "GET /api/scim/v2?filter=a",
    "GET /api/scim/v2/Users?filter=%zz&Filter=x&fliter=y",
    "GET /api/scim/v2/Users?filter=urn:omni:params:1.0:UserAttribute:department+eq+%22x%22",
]:
    write("query", line)

# token ---------------------------------------------------------------------------------------
for header in ["Bearer fixed-token", "bearer   fixed-token ", "BEARER abc-._~+/==", "Bearer", "Bearer ",
               "Basic bmV3LXNlY3JldA==", "Bearer a b", "Bearer ===", "Bearer new-secret, Bearer old",
               "Token x", "  Bearer\tx"]:
    write("token", header)
write("token", b"Bearer new\xffsecret")

# search --------------------------------------------------------------------------------------
for body in [
    {"schemas": [SEARCH], "filter": 'userName eq "ada@example.com"', "startIndex": 1, "count": 10},
    {"schemas": [SEARCH], "attributes": ["userName", "displayName"], "excludedAttributes": ["emails"],
     "sortBy": "userName", "sortOrder": "ascending"},
    {"schemas": [SEARCH], "Filter": 'displayName eq "Group 1" and members[value eq "u1"]', "count": 500},
    {"schemas": [SEARCH], "filter": 'title pr', "count": -1, "startIndex": None},
    {"schemas": [SEARCH], "filter": f'{OMNI}:department eq "R"', "excludedAttributes": ["members"]},
    {"schemas": [SEARCH], "filter": 5},
    {"schemas": [SEARCH], "attributes": [1]},
    {"schemas": [SEARCH], "unknown": 1},
    {"schemas": [PATCH]},
]:
    write("search", body)

# config --------------------------------------------------------------------------------------
TOKENS = [{"name": "entra-prod", "sha256": hashlib.sha256(b"client-secret").hexdigest()}]
UPSTREAM = {"cluster": "scim_upstream", "authority": "acme.omniapp.co", "base_path": "/api/scim/v2",
            "bearer_token": "omni-S3CR3T-key"}
for config in [
    {"version": 1, "tokens": TOKENS, "upstream": UPSTREAM},
    {"version": 1, "scim_prefix": "/scim", "max_body_bytes": 4096, "tokens": TOKENS,
     "upstream": {**UPSTREAM, "bearer_token": None, "bearer_token_env": "OMNI_KEY", "timeout_ms": 500,
                  "max_response_bytes": 2048},
     "rate_limit": {"requests_per_minute": 60, "burst": 10},
     "mapping": {"profile": "omni", "omni_system_attributes": "strip", "allow_privileged": ["roles"],
                 "users": {"add": [f"{OMNI}:department", "roles", "emails.value"], "remove": ["active"]},
                 "groups": {"remove": ["members.display"]}}},
    {"version": 1, "tokens": TOKENS, "upstream": UPSTREAM, "rate_limit": "off",
     "mapping": {"profile": "rfc", "users": {"remove": ["name.givenName", f"{ENT}:manager"]}}},
    {"version": 2, "tokens": TOKENS, "upstream": UPSTREAM},
    {"version": 1, "tokens": [{"name": "bad name", "sha256": "S3CR3T"}], "upstream": UPSTREAM},
    {"version": 1, "tokens": TOKENS, "upstream": {**UPSTREAM, "bearer_token": "S3CR3T with spaces"}},
    {"version": 1, "tokens": TOKENS, "upstream": {**UPSTREAM, "authority": "S3CR3T/"}},
    {"version": 1, "tokens": TOKENS, "upstream": UPSTREAM, "mapping": {"users": {"add": ["S3CR3T"]}}},
]:
    write("config", json.dumps(config, indent=1))
write("config", '{"version": 1, "tokens": [')
