#!/usr/bin/env python3
"""scim2-server with Omni-like resource ids: `python tests/omni_upstream.py <scim2-server's arguments>`.

Omni's SCIM API identifies users by dashed UUIDs (its OpenAPI: `format: uuid`; group member removal
takes `members[value eq "<36 characters>"]`), where scim2-server's in-memory storage hands out
`uuid4().hex` (32 characters, no dashes). This launcher is the `scim2-server` console script
(`scim2_server.testserver.cli:main`, from the package's entry_points.txt) with one change: the storage
class it instantiates overrides `InMemoryStorage.generate_id`, the method scim2-server documents for
choosing identifiers, to return `str(uuid.uuid4())`. Arguments, defaults, authentication, routes and
behaviour are otherwise the console script's own.

`start(port, run_dir)` runs it as local_stack.start_upstream runs scim2-server (same flags).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from scim2_models import Resource, ResourceType
from scim2_server.memory import InMemoryStorage
from scim2_server.testserver import cli


class OmniIdStorage(InMemoryStorage):
    """InMemoryStorage whose new resources get Omni-shaped ids: dashed UUIDs."""

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        return str(uuid.uuid4())


def main() -> None:
    # cli.main() builds one storage per tenant as `InMemoryStorage()`, looked up in its module's
    # globals at call time: pointing that name at the subclass is the only difference.
    cli.InMemoryStorage = OmniIdStorage
    cli.main()


def start(port: int, run_dir: Path, name: str = "omni-upstream"):
    """The Omni-like upstream on 127.0.0.1:<port>, accepting only the gateway's own credential, as a
    local_stack.Service (stop it with .stop())."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "envoy"))
    import local_stack as stack

    service = stack.Service(
        name,
        [sys.executable, str(Path(__file__).resolve()), "--hostname", "127.0.0.1", "--port", str(port),
         "--bearer-token", stack.UPSTREAM_TOKEN],
        run_dir / f"{name}.log",
    ).start()
    stack.wait_for(f"{name} on 127.0.0.1:{port}", lambda: stack.port_open(port), service)
    return service


if __name__ == "__main__":
    main()
