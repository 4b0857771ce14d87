"""events.k8s.io/v1 Events are the core/v1 Events seen through another schema.

The API server keeps one store of events and converts between the two versions field by field
(pkg/apis/events/v1 conversion): regarding is involvedObject, note is message, the deprecated*
fields carry the legacy source, timestamps and count, and reportingController is
reportingComponent. kubesim does the same, so an event written through either API is read
through both.
"""

import copy
from collections.abc import Mapping
from typing import Any

# (events.k8s.io/v1 field, core/v1 field) pairs with the same value under another name.
_RENAMED = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
)
_SHARED = ("metadata", "eventTime", "series", "action", "reason", "related", "type")
_SHARED_CORE_ONLY = ("reportingInstance",)


def to_events_v1(core_event: Mapping[str, Any]) -> dict[str, Any]:
    """A stored core/v1 Event as events.k8s.io/v1 presents it."""
    event: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for field in _SHARED:
        if field in core_event:
            event[field] = copy.deepcopy(core_event[field])
    # reportingInstance is omitempty here (not in core/v1): the legacy events' "" is left out.
    for field in _SHARED_CORE_ONLY:
        if core_event.get(field):
            event[field] = core_event[field]
    for new_name, core_name in _RENAMED:
        if core_event.get(core_name) not in (None, {}, ""):
            event[new_name] = copy.deepcopy(core_event[core_name])
    # A legacy event has no eventTime; the API server presents it as null, not absent.
    event.setdefault("eventTime", None)
    return event


def to_core(event: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as the core/v1 Event it is stored as."""
    core: dict[str, Any] = {"apiVersion": "v1", "kind": "Event"}
    for field in _SHARED + _SHARED_CORE_ONLY:
        if field in event:
            core[field] = copy.deepcopy(event[field])
    for new_name, core_name in _RENAMED:
        if new_name in event:
            core[core_name] = copy.deepcopy(event[new_name])
    core.setdefault("involvedObject", {})
    core.setdefault("reportingInstance", "")  # not omitempty in core/v1
    return core
