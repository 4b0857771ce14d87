"""The real Kubernetes JSON schemas (shipped by kubernetes-validate), loaded once per kind.

The same schemas drive validation and strategic-merge patching: they carry the
`x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` markers the API server's
own patch code reads from the Go struct tags.
"""

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
from referencing import Registry, Resource

from akros_kubesim.quantity import QUANTITY_PATTERN

SCHEMA_VERSION = "v1.37.0"
_DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"
_QUANTITY_REF = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def _schema_directory() -> Any:
    return resources.files(kubernetes_validate).joinpath(
        f"kubernetes-json-schema/{SCHEMA_VERSION}-local-strict"
    )


@functools.cache
def definitions() -> dict[str, Any]:
    """The shared `$defs`, with Quantity tightened from "any string" to the real grammar."""
    document: dict[str, Any] = json.loads(
        _schema_directory().joinpath("_definitions.json").read_text()
    )
    document["$defs"][_QUANTITY_REF] = {
        "anyOf": [
            {"type": "string", "pattern": QUANTITY_PATTERN},
            {"type": "number"},
            {"type": "null"},
        ]
    }
    return document


@functools.cache
def _registry() -> Registry[Any]:
    return Resource.from_contents(definitions()) @ Registry()


def _schema_file(api_version: str, kind: str) -> str:
    # rbac.authorization.k8s.io/v1 -> rbac-v1, the file naming of kubernetes-validate
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


@functools.cache
def top_schema(api_version: str, kind: str) -> dict[str, Any]:
    text = _schema_directory().joinpath(_schema_file(api_version, kind)).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """A compiled validator per kind: building one costs milliseconds, using one far less."""
    schema = top_schema(api_version, kind)
    registry = Resource.from_contents(schema) @ _registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def has_schema(api_version: str, kind: str) -> bool:
    try:
        top_schema(api_version, kind)
    except FileNotFoundError:
        return False
    return True


# --- navigation for strategic-merge patch ---------------------------------------------------


@dataclass(frozen=True)
class FieldSchema:
    """The schema of one field plus the patch markers found on the way to it."""

    schema: Mapping[str, Any]
    strategy: str = ""
    merge_key: str = ""

    def strategies(self) -> set[str]:
        return set(self.strategy.split(",")) if self.strategy else set()


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follows $ref (and single-branch allOf) until a schema with content is reached."""
    seen = 0
    while "$ref" in schema and seen < 32:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = definitions()["$defs"].get(name, {})
        seen += 1
    return schema


def root_field(api_version: str, kind: str) -> FieldSchema:
    if not has_schema(api_version, kind):
        return FieldSchema({})
    return FieldSchema(top_schema(api_version, kind))


def child(parent: FieldSchema, key: str) -> FieldSchema:
    """The schema of `key` inside an object (a declared property or a map value)."""
    schema = _resolve(parent.schema)
    properties = schema.get("properties") or {}
    if key in properties:
        declared = properties[key]
        return FieldSchema(
            declared,
            str(declared.get("x-kubernetes-patch-strategy", "")),
            str(declared.get("x-kubernetes-patch-merge-key", "")),
        )
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        return FieldSchema(additional)
    return FieldSchema({})


def items(parent: FieldSchema) -> FieldSchema:
    schema = _resolve(parent.schema)
    item_schema = schema.get("items")
    return FieldSchema(item_schema if isinstance(item_schema, Mapping) else {})
