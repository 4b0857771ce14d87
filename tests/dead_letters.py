"""Writing an entry of a type a stream does not carry, and finding its dead letter: the one
record a consumer must leave before it acknowledges what it cannot handle."""

import json
from typing import Any, cast

import redis

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_msgs import Actor, Stream
from akros_msgs.streams import DEAD_LETTERS


def write_unknown_type(
    store: "redis.Redis", stream: Stream[Any], kind: str, actor: Actor, request_id: str
) -> str:
    """Append a message of type ``kind`` with a valid envelope, as a producer newer than the
    consumer would; the id of its entry."""
    document = {"type": kind, "request_id": request_id, "actor": actor.model_dump(mode="json")}
    entry_id = cast(bytes, store.xadd(stream.name, {DATA_FIELD: json.dumps(document)}))
    return entry_id.decode()


def dead_letters(store: "redis.Redis") -> list[dict[str, Any]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], store.xrange(DEAD_LETTERS.name))
    return [json.loads(fields[DATA_FIELD]) for _, fields in entries]


def pending(store: "redis.Redis", stream: Stream[Any], group: str) -> int:
    return int(store.xpending(stream.name, group)["pending"])


def wait_for_dead_letter(
    store: "redis.Redis", stream: Stream[Any], group: str, entry_id: str, timeout_s: float = 20
) -> dict[str, Any]:
    """The one dead letter ``group`` left for the entry, once the entry is no longer pending
    (it is acknowledged only after its dead letter is stored)."""

    def letters() -> list[dict[str, Any]]:
        return [
            letter
            for letter in dead_letters(store)
            if (letter["stream"], letter["group"], letter["entry_id"])
            == (stream.name, group, entry_id)
        ]

    wait_until(
        lambda: bool(letters()) and pending(store, stream, group) == 0,
        timeout_s=timeout_s,
        what=f"a dead letter of {stream.name} {entry_id} from {group}, and none pending",
    )
    [letter] = letters()
    return letter


def unknown_type_reason(stream: Stream[Any], kind: str) -> str:
    """The start of the reason a consumer gives for a type its stream does not carry."""
    return f"unknown message type '{kind}' on stream '{stream.name}'"
