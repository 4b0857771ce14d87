"""Bad input against the running platform: garbage written straight to every consumed stream
ends in the dead-letter stream while consumers keep serving; oversized bodies get 413."""

import json
import random
from collections.abc import Iterator
from contextlib import closing
from typing import Any, cast

import pytest
import redis

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_msgs.streams import ALL_STREAMS, DEAD_LETTERS, Groups
from tests.e2e.conftest import Running

pytestmark = pytest.mark.cluster

SMALL = {"image": "pytorch", "cpu": "1", "memory": "1Gi"}


def _garbage_entries() -> list[dict[Any, Any]]:
    """Entries no stream's schema accepts: not JSON, wrong shapes, wrong types, no data."""
    rng = random.Random(10)  # seeded, so a failure replays
    valid_envelope = {
        "request_id": "garbage",
        "actor": {"user_id": "mallory", "source": "http", "role": "admin"},
    }
    documents: list[bytes] = [
        b"",
        b"not json",
        b"{",
        b"null",
        b"42",
        b"[]",
        b"{}",
        json.dumps({"type": "no_such_message", **valid_envelope}).encode(),
        json.dumps({"type": "create_environment", **valid_envelope}).encode(),
        json.dumps({"type": "capacity_changed", "request_id": "x" * 1000}).encode(),
        json.dumps({**valid_envelope, "type": 1, "schema_version": 99}).encode(),
        b"\xff\xfe\x00binary",
        b"[" * 10_000,
        json.dumps({"type": "a" * 200_000}).encode(),
        *(rng.randbytes(rng.randint(1, 512)) for _ in range(5)),
    ]
    entries = [{DATA_FIELD: document} for document in documents]
    return [*entries, {b"other": b"field"}, {DATA_FIELD: b"{}", b"extra": b"x"}]


def _groups_by_stream(store: "redis.Redis") -> dict[str, list[dict[str, Any]]]:
    consumed: dict[str, list[dict[str, Any]]] = {}
    for stream in ALL_STREAMS:
        if not store.exists(stream.name):
            continue
        groups = store.xinfo_groups(stream.name)
        if groups:
            consumed[stream.name] = groups
    return consumed


def _dead_letters(store: "redis.Redis") -> list[dict[str, Any]]:
    raw = cast(list[tuple[bytes, dict[bytes, bytes]]], store.xrange(DEAD_LETTERS.name))
    return [json.loads(fields[DATA_FIELD]) for _, fields in raw]


def test_garbage_on_every_consumed_stream_is_dead_lettered_and_consumers_keep_serving(
    running: Running,
) -> None:
    with closing(redis.Redis.from_url(running.platform.redis.url)) as store:
        consumed = _groups_by_stream(store)
        # The worker's command streams and the poller's capacity stream. The catalogue also names
        # the gateway as a consumer of results, usage and notifications, but the gateway reads
        # the read model instead and creates no group; the Slack app is not running here.
        assert set(consumed) == {
            s.name
            for s in ALL_STREAMS
            if {Groups.K8S_WORKER, Groups.POLLER} & set(s.consumer_groups)
        }
        written: list[tuple[str, str]] = []
        for stream in consumed:
            for entry in _garbage_entries():
                entry_id = cast(bytes, store.xadd(stream, entry)).decode()
                written.append((stream, entry_id))
        wanted = {
            (stream, group["name"].decode(), entry_id)
            for stream, entry_id in written
            for group in consumed[stream]
        }

        def all_dead_lettered() -> bool:
            seen = {(d["stream"], d["group"], d["entry_id"]) for d in _dead_letters(store)}
            return wanted <= seen

        wait_until(all_dead_lettered, timeout_s=30, what="every garbage entry dead-lettered")
        letters = [
            (d["stream"], d["group"], d["entry_id"])
            for d in _dead_letters(store)
            if (d["stream"], d["group"], d["entry_id"]) in wanted
        ]
        print(f"wrote {len(written)} garbage entries, {len(letters)} dead letters, lost 0")
        assert sorted(letters) == sorted(wanted), "a garbage entry was dead-lettered twice"
        for stream, groups in _groups_by_stream(store).items():
            for group in groups:
                assert group["pending"] == 0, (stream, group)
        assert running.platform.failed_child() is None

    researcher = running.token_for("after-garbage")
    answer = running.http.post(
        "/v1/environments", json={"name": "still", **SMALL}, headers=researcher
    )
    assert answer.status_code == 202, answer.text
    # Applied means the worker consumed the command and the gateway consumed the result.
    assert running.settle(answer.json()["request_id"], researcher)["status"] == "applied"


def test_an_oversized_body_gets_413_whether_declared_or_streamed(running: Running) -> None:
    researcher = running.token_for("big-body")
    two_mib = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    declared = running.http.post(
        "/v1/environments",
        content=two_mib,
        headers={**researcher, "Content-Type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b" " * 65_536

    streamed = running.http.post(
        "/v1/environments",
        content=chunks(),
        headers={**researcher, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert running.http.get("/v1/environments", headers=researcher).json()["environments"] == []
