"""What a consumer group has handled: the proof a test waits for before asserting that a
consumer did nothing, instead of sleeping and hoping it had got there.

The bus acknowledges an entry only once its handler has returned, and a handler publishes
what it decided before returning, so a group that has delivered an entry and has nothing
pending has finished with it and with everything before it."""

import time
from typing import Any, cast

import redis

from akros_devtools.waiting import wait_until

EntryId = tuple[int, int]
"""A stream entry id as (milliseconds, sequence), which compares in the stream's order."""


def entry_id(value: bytes | str) -> EntryId:
    milliseconds, _, sequence = _text(value).partition("-")
    return int(milliseconds), int(sequence or 0)


def newest_entry(connection: "redis.Redis", stream: str) -> EntryId:
    """The id of ``stream``'s newest entry; (0, 0) when it is empty."""
    newest = cast(list[tuple[bytes, Any]], connection.xrevrange(stream, count=1))
    return entry_id(newest[0][0]) if newest else (0, 0)


def seconds_from_now(seconds: float) -> EntryId:
    """The id an entry added ``seconds`` from now is past (entry ids start with the time)."""
    return int((time.time() + seconds) * 1000), 0


def has_handled_through(
    connection: "redis.Redis", stream: str, group: str, through: EntryId
) -> bool:
    """Whether ``group`` has delivered ``stream``'s entry ``through`` (or a later one) and
    acknowledged every entry it delivered."""
    groups: list[dict[str, Any]] = connection.xinfo_groups(stream)
    found = [g for g in groups if _text(g["name"]) == group]
    if not found:
        return False
    [info] = found
    return entry_id(info["last-delivered-id"]) >= through and int(info["pending"]) == 0


def wait_until_handled(
    connection: "redis.Redis",
    stream: str,
    group: str,
    *,
    through: EntryId | None = None,
    timeout_s: float = 15,
) -> None:
    """Wait until ``group`` has handled ``stream`` through ``through`` (by default its
    newest entry now)."""
    last = newest_entry(connection, stream) if through is None else through
    wait_until(
        lambda: has_handled_through(connection, stream, group, last),
        timeout_s=timeout_s,
        interval_s=0.05,
        what=f"{group} to handle {stream} through entry {last[0]}-{last[1]}",
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
