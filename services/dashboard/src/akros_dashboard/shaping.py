"""Pure functions behind the pages: checking a spec against the schema, the diff before a
deploy, and the gateway's answers shaped into tables and chart data. No Streamlit, no I/O."""

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

JSON = dict[str, Any]
GIB = 1024**3


@dataclass(frozen=True)
class SpecCheck:
    """The editor's text as a spec, or why it is not one (each problem names its field)."""

    spec: JSON | None
    problems: list[str]


def check_spec(text: str, schema: JSON) -> SpecCheck:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return SpecCheck(
            None, [f"not JSON: {error.msg} (line {error.lineno}, column {error.colno})"]
        )
    if not isinstance(document, dict):
        return SpecCheck(None, ["the spec must be a JSON object"])
    validator = Draft202012Validator(schema)
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(spec)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]
    return SpecCheck(None if problems else document, problems)


def _resolve(schema: JSON, root: JSON) -> JSON:
    """Follow a local ``$ref``; for ``anyOf`` (an optional field) the non-null branch."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return _resolve(root["$defs"][name], root)
    for branch in schema.get("anyOf") or []:
        if branch.get("type") != "null":
            return _resolve(branch, root)
    return schema


def with_defaults(instance: Any, schema: JSON, root: JSON | None = None) -> Any:
    """``instance`` with every default the schema declares filled in, as the gateway will
    store it, so a diff shows what really changes."""
    root = root or schema
    resolved = _resolve(schema, root)
    if isinstance(instance, dict):
        properties: JSON = resolved.get("properties") or {}
        filled = {
            key: with_defaults(value, properties.get(key, {}), root)
            for key, value in instance.items()
        }
        for key, definition in properties.items():
            if key not in filled and "default" in definition:
                filled[key] = definition["default"]
        return filled
    if isinstance(instance, list):
        items = resolved.get("items") or {}
        return [with_defaults(item, items, root) for item in instance]
    return instance


def _compact(value: Any) -> Any:
    """Without empty values (null, [], {}): the schema declares no default for an empty list
    or map, so a spec as written and as stored differ only there."""
    if isinstance(value, dict):
        kept = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_compact(item) for item in value]
    return value


def spec_diff(current: JSON | None, proposed: JSON) -> str:
    """A unified diff from the deployed spec to the proposed one ("" when they are equal)."""

    def lines(spec: JSON | None) -> list[str]:
        if spec is None:
            return []
        return json.dumps(_compact(spec), indent=2, sort_keys=True).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(lines(current), lines(proposed), "deployed", "proposed", n=2)
    )


def node_rows(nodes: Sequence[JSON]) -> dict[str, list[JSON]]:
    """Per resource (CPU cores, memory GiB, GPUs), one row per node with allocatable,
    requested and used (None where no metrics are served), ready for a grouped bar chart."""
    dimensions = {"CPU (cores)": ("cpu_millis", 1000), "Memory (GiB)": ("memory_bytes", GIB)}
    dimensions["GPUs"] = ("gpus", 1)
    return {
        title: [
            {
                "node": node["name"],
                "allocatable": node["allocatable"][key] / unit,
                "requested": node["requested"][key] / unit,
                "used": node["used"][key] / unit if node.get("used") else None,
            }
            for node in sorted(nodes, key=lambda n: str(n["name"]))
        ]
        for title, (key, unit) in dimensions.items()
    }


def environment_rows(
    environments: Iterable[JSON],
    *,
    users: Sequence[str] = (),
    statuses: Sequence[str] = (),
    name_contains: str = "",
) -> list[JSON]:
    """The environments matching every filter given (an empty filter matches all), as rows."""
    return [
        {
            "owner": env["owner"],
            "name": env["name"],
            "status": env["status"],
            "image": env["image"],
            "cpu": env["resources"]["cpu"],
            "memory": env["resources"]["memory"],
            "gpus": env["resources"]["gpus"],
            "node": env.get("node") or "",
            "url": env.get("url") or "",
            "reason": env.get("reason") or "",
        }
        for env in environments
        if (not users or env["owner"] in users)
        and (not statuses or env["status"] in statuses)
        and name_contains.lower() in env["name"].lower()
    ]


def lifecycle_choices(rows: Iterable[JSON]) -> dict[str, list[str]]:
    """The rows (as ``owner/name``) that can be stopped now, and those that can be started:
    a ready environment stops, a stopped one starts; the gateway refuses any other."""
    listed = list(rows)

    def named(status: str) -> list[str]:
        return [f"{row['owner']}/{row['name']}" for row in listed if row["status"] == status]

    return {"stop": named("ready"), "start": named("stopped"), "pending": named("pending")}


def event_rows(events: Sequence[JSON]) -> list[JSON]:
    """What the cluster said about an environment, newest first, in words."""
    return [
        {
            "at": event["at"],
            "about": event["object"],
            "what": event["words"],
            "warning": event["warning"],
            "times": event["count"],
        }
        for event in reversed(events)
    ]


_GIB = 2**30


def user_usage_rows(users: Sequence[JSON]) -> list[JSON]:
    """Each user's latest use against what they requested, in cores and GiB."""
    return [
        {
            "user": user["user"],
            "cpu requested": user["cpu_requested_millis"] / 1000,
            "cpu used": user["cpu_used_millis"] / 1000,
            "memory requested": user["memory_requested_bytes"] / _GIB,
            "memory used": user["memory_used_bytes"] / _GIB,
            "gpus": user["gpus"],
        }
        for user in users
    ]


def history_rows(points: Sequence[JSON]) -> list[JSON]:
    """An environment's history as rows to plot over time, in cores, GiB and percent."""
    return [
        {
            "at": point["at"],
            "cpu requested": point["cpu_requested_millis"] / 1000,
            "cpu used": point["cpu_used_millis"] / 1000,
            "memory requested": point["memory_requested_bytes"] / _GIB,
            "memory used": point["memory_used_bytes"] / _GIB,
            "gpu utilisation %": (
                None
                if point.get("gpu_utilisation") is None
                else round(100 * point["gpu_utilisation"], 1)
            ),
        }
        for point in points
    ]
