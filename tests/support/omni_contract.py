"""Omni's contract for the requests scim-edge forwards: every request a test's UpstreamRecorder saw is
checked against Omni's published OpenAPI document for its SCIM endpoints
(tests/fixtures/omni/omni-scim-openapi.json, a verbatim copy of the document) with openapi-core, a
general OpenAPI 3.1 request validator (pinned in tests/requirements.txt).

What is checked, per recorded request (method, path with query, headers, body):
- the path and method: an operation of the document must serve them. Paths the document does not
  describe (/ServiceProviderConfig, /Schemas, /ResourceTypes, /.search, /Users/.search, ...) are
  violations: Omni does not promise to serve them.
- path parameters (user ids are `format: uuid`), query parameters (names and values) and the JSON
  body, by openapi-core against the operation's schemas (formats such as `uuid` and `email` included).
- query parameters the operation does not declare are violations too. OpenAPI itself tolerates
  undeclared parameters; Omni's document lists the ones its endpoints read (`filter`, `count`,
  `startIndex`, `excludedAttributes=members` on groups), and what it does with any other is unknown.
- the content type: RFC 7644's `application/scim+json` or `application/json`. The document lists only
  `application/json`; bodies are validated against that media type's schema either way (Entra itself
  sends application/scim+json to Omni's SCIM base).

Two adjustments, both here and nowhere else:
- Base path: in the tests the upstream is scim2-server, whose SCIM base is `/v2` (the plugin's
  `upstream.base_path`), where Omni's is `/api/scim/v2` (the document's paths). A recorded `/v2/...`
  is validated as `/api/scim/v2/...`; a recorded path outside `/v2` is a violation.
- Omni's document has six defects that would make every list request fail: the `count` and
  `startIndex` query parameters are `type: string` with integer defaults (100 and 1), so a validator
  that applies defaults rejects a request that leaves them out, and openapi-spec-validator rejects the
  document. The loaded copy has those defaults as strings ("100", "1"); `DOCUMENT_DEFECTS` lists what
  is changed, and the corrected document must pass openapi-spec-validator (tests check both).
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from functools import lru_cache
from pathlib import Path

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from werkzeug.datastructures import Headers, ImmutableMultiDict

DOCUMENT = Path(__file__).resolve().parent.parent / "fixtures" / "omni" / "omni-scim-openapi.json"
UPSTREAM_BASE = "/v2"  # scim2-server's SCIM base in the tests (plugin upstream.base_path)
OMNI_BASE = "/api/scim/v2"  # the document's
OMNI_ORIGIN = "https://acme.omniapp.co"  # any host: the document names no servers
ACCEPTED_CONTENT_TYPES = {"application/scim+json", "application/json"}
DOCUMENT_MEDIA_TYPE = "application/json"


def _raw_document() -> dict:
    return json.loads(DOCUMENT.read_text())


def _defective_defaults(document: dict):
    """(path, method, parameter) whose schema is a string with a non-string default."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.get("type") == "string" and "default" in schema and not isinstance(schema["default"], str):
                    yield path, method, parameter


DOCUMENT_DEFECTS = [
    f"{method.upper()} {path} ?{parameter['name']}: default {parameter['schema']['default']!r} on a string"
    for path, method, parameter in _defective_defaults(_raw_document())
]


def corrected_document() -> dict:
    """Omni's document with its integer defaults on string parameters written as strings."""
    document = copy.deepcopy(_raw_document())
    for _, _, parameter in _defective_defaults(document):
        parameter["schema"]["default"] = str(parameter["schema"]["default"])
    return document


@lru_cache(maxsize=1)
def openapi() -> OpenAPI:
    # from_dict runs openapi-spec-validator on the (corrected) document.
    return OpenAPI.from_dict(corrected_document())


class _Request:
    """openapi-core's Request protocol for one recorded upstream request."""

    def __init__(self, method: str, path: str, query: list[tuple[str, str]], content_type: str, body: bytes):
        self.host_url = OMNI_ORIGIN
        self.path = path
        self.method = method.lower()
        self.content_type = content_type
        self.body = body or None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(), cookie=ImmutableMultiDict(), path={}
        )


def _describe(error: BaseException) -> str:
    """One line for an openapi-core error: what failed, then the schema failures behind it."""
    schema_failures = []
    cause = error.__cause__
    while cause is not None:
        schema_errors = getattr(cause, "schema_errors", None) or ()
        for schema_error in schema_errors:
            where = "/".join(str(p) for p in schema_error.absolute_path) or "(root)"
            schema_failures.append(f"{where}: {_short(schema_error.message)}")
        cause = cause.__cause__
    if not schema_failures:
        return _short(str(error) or type(error).__name__)
    # The error's own text repeats the whole value: name what failed, then how.
    what = type(error).__name__
    if getattr(error, "location", None) and getattr(error, "name", None):
        what += f" ({error.location} parameter {error.name})"
    return f"{what}: " + "; ".join(schema_failures)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def violations(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> list[str]:
    """What in this upstream request Omni's contract does not allow; [] when it fits."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    split = urllib.parse.urlsplit(path)
    raw_path = split.path
    if raw_path != UPSTREAM_BASE and not raw_path.startswith(UPSTREAM_BASE + "/"):
        return [f"path {raw_path} is outside the upstream base path {UPSTREAM_BASE}"]
    omni_path = OMNI_BASE + raw_path[len(UPSTREAM_BASE):]
    query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)

    found: list[str] = []
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if body:
        if content_type not in ACCEPTED_CONTENT_TYPES:
            found.append(f"content type {content_type or '(none)'} is not JSON")
        content_type = DOCUMENT_MEDIA_TYPE

    spec = openapi()
    try:
        operation = APICallPathFinder(spec.spec).find(method.lower(), OMNI_ORIGIN + omni_path).operation
    except PathError as error:  # PathNotFound, OperationNotFound: the document does not describe it
        return [f"not in Omni's contract: {error}"]
    declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    for name in dict.fromkeys(name for name, _ in query):
        if name not in declared:
            found.append(f"query parameter {name!r} is not one the operation declares ({', '.join(sorted(declared)) or 'none'})")
    for name in dict.fromkeys(name for name, _ in query if sum(1 for n, _ in query if n == name) > 1):
        found.append(f"query parameter {name!r} repeated")

    request = _Request(method, omni_path, query, content_type, body)
    found.extend(_describe(error) for error in spec.iter_request_errors(request))
    return found


def recorded_violations(recorded) -> list[str]:
    """violations() for an upstream_recorder.Recorded."""
    return violations(recorded.method, recorded.path, recorded.headers, recorded.body)


def report(records) -> list[str]:
    """One line per violation over many recorded requests: `METHOD path: what`."""
    lines = []
    for recorded in records:
        for violation in recorded_violations(recorded):
            body = recorded.body.decode("utf-8", "replace")
            lines.append(f"{recorded.method} {recorded.path}: {violation}" + (f"\n    body: {body[:500]}" if body else ""))
    return lines
