"""The three PATCH flavours the API server accepts, as pure functions on plain dicts.

Strategic merge is implemented here, driven by the patch markers in the real schemas
(`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`). JSON merge patch (RFC 7386)
and JSON patch (RFC 6902) come from the well-kept libraries.
"""

import copy
from typing import Any

import json_merge_patch
import jsonpatch

from akros_kubesim import schemas
from akros_kubesim.errors import ApiError, bad_request

STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_ORDER_PREFIX = "$setElementOrder/"
_DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"


def apply_patch(content_type: str, original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """The patched object; 400 for a malformed patch, 415 for a flavour we do not speak."""
    media_type = content_type.split(";", 1)[0].strip()
    if media_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise bad_request("json patch must be a list of operations")
        try:
            result = jsonpatch.apply_patch(original, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
            raise ApiError(
                422, f"the server rejected our request due to an error in our request: {error}"
            ) from error
        if not isinstance(result, dict):
            raise bad_request("json patch must keep the object a JSON object")
        return result
    if not isinstance(patch, dict):
        raise bad_request("the patch must be a JSON object")
    if media_type == MERGE:
        merged: dict[str, Any] = json_merge_patch.merge(copy.deepcopy(original), patch)
        return merged
    if media_type == STRATEGIC:
        root = schemas.root_field(
            str(original.get("apiVersion", "")), str(original.get("kind", ""))
        )
        result = strategic_merge(copy.deepcopy(original), patch, root)
        return result if isinstance(result, dict) else {}
    raise ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE}, {STRATEGIC}",
    )


def strategic_merge(original: Any, patch: dict[str, Any], field: schemas.FieldSchema) -> Any:
    """Merges a map patch into original (a fresh copy the function may change)."""
    directive = patch.get(_PATCH)
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != _PATCH}
    if directive == "delete":
        return None
    if directive is not None:
        raise bad_request(f"Unknown patch type: {directive}")
    result: dict[str, Any] = original if isinstance(original, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith(_ORDER_PREFIX):
            orders[key.removeprefix(_ORDER_PREFIX)] = value
        elif key.startswith(_DELETE_PRIMITIVE_PREFIX):
            name = key.removeprefix(_DELETE_PRIMITIVE_PREFIX)
            if isinstance(result.get(name), list):
                result[name] = [item for item in result[name] if item not in value]
        elif key == _RETAIN_KEYS:
            continue
        elif value is None:
            result.pop(key, None)
        else:
            child = schemas.child(field, key)
            merged = _merge_value(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    for name, order in orders.items():
        if isinstance(result.get(name), list):
            result[name] = _apply_order(result[name], order, schemas.child(field, name).merge_key)
    if _RETAIN_KEYS in patch:
        retained = set(patch[_RETAIN_KEYS] or [])
        result = {k: v for k, v in result.items() if k in retained}
    return result


def _merge_value(original: Any, value: Any, field: schemas.FieldSchema) -> Any:
    if isinstance(value, dict):
        return strategic_merge(original, value, field)
    if isinstance(value, list) and "merge" in field.strategies() and isinstance(original, list):
        return _merge_list(original, value, field)
    if isinstance(value, list):
        # A replaced list still has its map elements' directives removed.
        return [_strip_directives(item) for item in value if not _is_delete_directive(item)]
    return value


def _is_delete_directive(item: Any) -> bool:
    return isinstance(item, dict) and item.get(_PATCH) == "delete"


def _strip_directives(item: Any) -> Any:
    if isinstance(item, dict):
        return {k: _strip_directives(v) for k, v in item.items() if not k.startswith("$")}
    return item


def _merge_list(original: list[Any], patch: list[Any], field: schemas.FieldSchema) -> list[Any]:
    key = field.merge_key
    if any(isinstance(item, dict) and item.get(_PATCH) == "replace" for item in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and _PATCH in i)]
    if not key:
        # A merging list of primitives is a set union that keeps the original order.
        return original + [item for item in patch if item not in original]
    result = list(original)
    element = schemas.items(field)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise bad_request(f"map: {item} does not contain declared merge key: {key}")
        position = next(
            (i for i, e in enumerate(result) if isinstance(e, dict) and e.get(key) == item[key]),
            None,
        )
        if item.get(_PATCH) == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            result.append(strategic_merge({}, item, element))
        else:
            result[position] = strategic_merge(result[position], item, element)
    return result


def _apply_order(items: list[Any], order: list[Any], key: str) -> list[Any]:
    """Orders items as $setElementOrder says; items it does not mention keep their place last."""

    def identity(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    rank = {
        _hashable(identity(entry) if isinstance(entry, dict) else entry): i
        for i, entry in enumerate(order)
    }
    listed = sorted(
        (i for i in items if _hashable(identity(i)) in rank),
        key=lambda i: rank[_hashable(identity(i))],
    )
    unlisted = [i for i in items if _hashable(identity(i)) not in rank]
    return listed + unlisted


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value
