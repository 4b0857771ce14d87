"""The OpenAPI document of the HTTP API. Run ``python -m akros_gateway.openapi``
(``make openapi``) to regenerate docs/openapi.json; a test fails when the committed one is
stale. Built from the app's routes only: no settings, files or connections are involved."""

import json
import sys
from typing import Any

from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings


def build_document() -> dict[str, Any]:
    # Defaults, not the environment: the document must not depend on where it is generated.
    settings = GatewaySettings.model_construct()
    return create_app(settings).openapi()


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
