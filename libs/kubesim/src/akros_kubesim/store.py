"""The in-memory object store: one resourceVersion counter, change history and watch fan-out.

Stored objects are never changed in place: every write stores a new dict, so the history and
the lists handed to serialisers are consistent snapshots without copying.
"""

import asyncio
import base64
import bisect
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from akros_kubesim.errors import ApiError, bad_request, gone

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_micro() -> str:
    """A metav1.MicroTime, as events.k8s.io's eventTime carries it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def object_key(obj: dict[str, Any]) -> Key:
    metadata = obj["metadata"]
    return metadata.get("namespace", ""), metadata["name"]


@dataclass(frozen=True)
class Change:
    """One committed write, as a watch event: type is ADDED, MODIFIED or DELETED."""

    resource_version: int
    type: str
    resource_key: str
    obj: dict[str, Any]
    previous: dict[str, Any] | None


@dataclass(eq=False)
class Watcher:
    resource_key: str
    namespace: str
    queue: asyncio.Queue[Change] = field(default_factory=asyncio.Queue)


class Store:
    def __init__(self, history_size: int = 20_000) -> None:
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {}
        self._sorted_keys: dict[str, list[Key]] = {}
        self._history: deque[Change] = deque(maxlen=history_size)
        self._compacted_through = 0
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Change], None]] = []
        self.resource_version = 1

    # --- reads ---------------------------------------------------------------------------

    def get(self, resource_key: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(resource_key, {}).get((namespace, name))

    def count(self, resource_key: str) -> int:
        return len(self._objects.get(resource_key, {}))

    def all(self, resource_key: str) -> Iterator[dict[str, Any]]:
        """Every object of a type, unordered; cheap, for controllers."""
        return iter(list(self._objects.get(resource_key, {}).values()))

    def _keys_in_order(self, resource_key: str) -> list[Key]:
        keys = self._sorted_keys.get(resource_key)
        if keys is None:
            keys = sorted(self._objects.get(resource_key, {}))
            self._sorted_keys[resource_key] = keys
        return keys

    def list_page(
        self,
        resource_key: str,
        namespace: str,
        accepts: Callable[[dict[str, Any]], bool] | None,
        limit: int,
        after: Key | None,
    ) -> tuple[list[dict[str, Any]], Key | None, int | None]:
        """(items, key to continue after or None, remaining count when known) in key order."""
        objects = self._objects.get(resource_key, {})
        keys = self._keys_in_order(resource_key)
        start = bisect.bisect_right(keys, after) if after else 0
        if namespace and (after is None or after[0] < namespace):
            start = max(start, bisect.bisect_left(keys, (namespace, "")))
        items: list[dict[str, Any]] = []
        index = start
        for index in range(start, len(keys)):
            key = keys[index]
            if namespace and key[0] != namespace:
                break
            obj = objects[key]
            if accepts is None or accepts(obj):
                items.append(obj)
                if limit and len(items) >= limit:
                    break
        else:
            index = len(keys)
        if not limit or len(items) < limit:
            return items, None, None
        next_index = index + 1
        more = next_index < len(keys) and (not namespace or keys[next_index][0] == namespace)
        if not more:
            return items, None, None
        remaining = None if accepts is not None or namespace else len(keys) - next_index
        return items, keys[index], remaining

    # --- writes --------------------------------------------------------------------------

    def _next_version(self) -> int:
        self.resource_version += 1
        return self.resource_version

    def _commit(self, change: Change) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted_through = self._history[0].resource_version
        self._history.append(change)
        for watcher in self._watchers:
            if watcher.resource_key == change.resource_key and (
                not watcher.namespace
                or watcher.namespace == change.obj["metadata"].get("namespace")
            ):
                watcher.queue.put_nowait(change)
        for listener in self._listeners:
            listener(change)

    def insert(self, resource_key: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Stores a new object, filling in uid, resourceVersion and creationTimestamp."""
        version = self._next_version()
        metadata = obj["metadata"]
        metadata["uid"] = str(uuid.uuid4())
        metadata["resourceVersion"] = str(version)
        metadata["creationTimestamp"] = now_rfc3339()
        key = object_key(obj)
        self._objects.setdefault(resource_key, {})[key] = obj
        if (keys := self._sorted_keys.get(resource_key)) is not None:
            bisect.insort(keys, key)
        self._commit(Change(version, "ADDED", resource_key, obj, None))
        return obj

    def replace(self, resource_key: str, obj: dict[str, Any]) -> dict[str, Any]:
        key = object_key(obj)
        previous = self._objects[resource_key][key]
        version = self._next_version()
        obj["metadata"]["resourceVersion"] = str(version)
        self._objects[resource_key][key] = obj
        self._commit(Change(version, "MODIFIED", resource_key, obj, previous))
        return obj

    def remove(self, resource_key: str, key: Key) -> dict[str, Any]:
        previous = self._objects[resource_key].pop(key)
        if (keys := self._sorted_keys.get(resource_key)) is not None:
            position = bisect.bisect_left(keys, key)
            if position < len(keys) and keys[position] == key:
                del keys[position]
        version = self._next_version()
        # The DELETED event carries the object at the version of its deletion, as etcd does.
        final = previous | {"metadata": previous["metadata"] | {"resourceVersion": str(version)}}
        self._commit(Change(version, "DELETED", resource_key, final, previous))
        return final

    # --- watch ---------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Change], None]) -> None:
        self._listeners.append(listener)

    def watch(
        self, resource_key: str, namespace: str, since: int | None
    ) -> tuple[Watcher, list[Change]]:
        """A registered watcher plus the recorded changes after `since`; 410 if they are gone."""
        backlog: list[Change] = []
        if since is not None:
            if since < self._compacted_through:
                raise gone(f"too old resource version: {since} ({self._compacted_through + 1})")
            backlog = [
                c
                for c in self._history
                if c.resource_version > since
                and c.resource_key == resource_key
                and (not namespace or c.obj["metadata"].get("namespace") == namespace)
            ]
        watcher = Watcher(resource_key, namespace)
        self._watchers.add(watcher)
        return watcher, backlog

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def compact(self) -> None:
        """Forgets all history, as etcd compaction does: older watches then get 410 Gone."""
        self._compacted_through = self.resource_version
        self._history.clear()


def encode_continue(key: Key, resource_version: int) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": resource_version, "start": f"{key[0]}/{key[1]}\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode()


def decode_continue(token: str) -> Key:
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        namespace, _, name = str(decoded["start"]).rstrip("\x00").partition("/")
    except (ValueError, KeyError, TypeError) as error:
        raise bad_request(f"continue key is not valid: {error}") from error
    return namespace, name


def parse_resource_version(text: str) -> int:
    try:
        return int(text)
    except ValueError as error:
        raise ApiError(400, f"invalid resource version: {text!r}") from error
