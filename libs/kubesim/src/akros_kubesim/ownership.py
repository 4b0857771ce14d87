"""Owner references as controllers write them on the objects they create."""

from collections.abc import Mapping
from typing import Any


def controller_reference(owner: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """The reference that makes `owner` the managing controller of a dependent: garbage
    collection follows it, and a foreground deletion of the owner waits for the dependent."""
    metadata = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
