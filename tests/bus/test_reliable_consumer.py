"""The reliable consumer against a real Redis, in-process."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from akros_bus import Bus, BusSettings
from akros_devtools import wait_until_async
from akros_msgs import Message, WorkloadUsage
from akros_msgs.streams import DEAD_LETTERS, ENVIRONMENT_COMMANDS, USAGE
from tests.bus.helpers import create_command

GROUP = "test-group"


def _settings(redis_url: str, **overrides: object) -> BusSettings:
    values: dict[str, object] = {
        "redis_url": redis_url,
        "service_name": "test",
        "reclaim_idle_ms": 200,
        "reclaim_interval_ms": 50,
        "poll_interval_ms": 20,
        "max_deliveries": 3,
        "graceful_timeout_s": 2,
    }
    values.update(overrides)
    return BusSettings.model_validate(values)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def _dead_letters(client: aioredis.Redis) -> list[dict[str, Any]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(DEAD_LETTERS.name))
    return [json.loads(fields[b"__data__"]) for _, fields in entries]


async def test_a_message_published_before_any_consumer_started_is_processed(
    redis_url: str,
) -> None:
    publisher = Bus(_settings(redis_url))
    await publisher.connect()
    await publisher.publish(create_command("early-1", "early"))
    await publisher.stop()

    handled: list[Message] = []
    consumer = Bus(_settings(redis_url))

    @consumer.consume(ENVIRONMENT_COMMANDS, GROUP)
    async def handle(message: Message) -> None:
        handled.append(message)

    await consumer.start()
    try:
        await wait_until_async(lambda: bool(handled), timeout_s=10)
    finally:
        await consumer.stop()
    assert [m.request_id for m in handled] == ["early-1"]


async def test_a_handler_that_always_fails_ends_in_the_dead_letter_stream_after_n_deliveries(
    redis_url: str, client: aioredis.Redis
) -> None:
    handled: list[str] = []
    attempts: dict[str, int] = {}
    heard: list[tuple[str, bool]] = []
    bus = Bus(_settings(redis_url, max_deliveries=3))

    async def on_dead_letter(body: bytes, reason: str, malformed: bool) -> None:
        heard.append((json.loads(body)["request_id"], malformed))

    @bus.consume(ENVIRONMENT_COMMANDS, GROUP, on_dead_letter=on_dead_letter)
    async def handle(message: Message) -> None:
        attempts[message.request_id] = attempts.get(message.request_id, 0) + 1
        if message.request_id == "poison":
            raise RuntimeError("cannot apply this one")
        handled.append(message.request_id)

    await bus.start()
    try:
        await bus.publish(create_command("poison", "bad"))
        for index in range(5):
            await bus.publish(create_command(f"good-{index}", f"good-{index}"))
        await wait_until_async(lambda: len(handled) == 5, timeout_s=2)
        await wait_until_async(lambda: _has_dead_letters(client, 1), timeout_s=10)
    finally:
        await bus.stop()

    [letter] = await _dead_letters(client)
    assert heard == [("poison", False)], "the consumer hears of it, to answer its request"
    assert attempts["poison"] == 3
    assert letter["delivery_count"] == 3
    assert letter["stream"] == ENVIRONMENT_COMMANDS.name
    assert "cannot apply this one" in str(letter["reason"])
    assert len(letter["errors"]) == 3
    original = json.loads(letter["original"]["__data__"])
    assert original["request_id"] == "poison"
    assert await client.xpending(ENVIRONMENT_COMMANDS.name, GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


async def _has_dead_letters(client: aioredis.Redis, count: int) -> bool:
    return len(await _dead_letters(client)) >= count


@pytest.mark.parametrize(
    ("fields", "reason_part"),
    [
        ({"foo": "bar"}, "type"),
        ({"__data__": "this is not json"}, "malformed message"),
        ({"__data__": b"\xff\xfe\x00garbage"}, "malformed message"),
        ({"__data__": b"[" * 10_000}, "malformed message"),
        ({"__data__": '{"type": "snapshot_environment"}'}, "unknown message type"),
        ({"__data__": create_command("x", "x").model_dump_json().replace('"1"', '"lots"')}, "cpu"),
    ],
)
async def test_a_malformed_entry_lands_in_the_dead_letter_stream_with_a_readable_reason(
    redis_url: str, client: aioredis.Redis, fields: dict[FieldT, EncodableT], reason_part: str
) -> None:
    handled: list[str] = []
    bus = Bus(_settings(redis_url))

    @bus.consume(ENVIRONMENT_COMMANDS, GROUP)
    async def handle(message: Message) -> None:
        handled.append(message.request_id)

    await bus.start()
    try:
        await client.xadd(ENVIRONMENT_COMMANDS.name, fields)
        await bus.publish(create_command("after", "after"))
        await wait_until_async(lambda: _has_dead_letters(client, 1), timeout_s=10)
        await wait_until_async(lambda: handled == ["after"], timeout_s=10)
    finally:
        await bus.stop()
    [letter] = await _dead_letters(client)
    assert reason_part in str(letter["reason"])
    assert letter["delivery_count"] == 1
    assert letter["original"]


async def test_a_consumer_hears_of_a_malformed_entry_after_it_is_dead_lettered(
    redis_url: str, client: aioredis.Redis
) -> None:
    heard: list[tuple[bytes, str, int]] = []
    bus = Bus(_settings(redis_url))

    async def on_dead_letter(body: bytes, reason: str, malformed: bool) -> None:
        assert malformed
        heard.append((body, reason, len(await _dead_letters(client))))

    @bus.consume(ENVIRONMENT_COMMANDS, GROUP, on_dead_letter=on_dead_letter)
    async def handle(message: Message) -> None:
        raise AssertionError("a malformed entry never reaches the handler")

    bad = create_command("x", "x").model_dump_json().replace('"1"', '"lots"')
    await bus.start()
    try:
        await client.xadd(ENVIRONMENT_COMMANDS.name, {"__data__": bad})
        await wait_until_async(lambda: len(heard) == 1, timeout_s=10)
    finally:
        await bus.stop()
    [(body, reason, dead_letters_by_then)] = heard
    assert body == bad.encode()
    assert reason.startswith("malformed message: create_environment.cpu")
    assert dead_letters_by_then == 1


async def test_a_batch_consumer_dead_letters_bad_entries_and_handles_the_rest(
    redis_url: str, client: aioredis.Redis
) -> None:
    batches: list[int] = []
    bus = Bus(_settings(redis_url))

    @bus.consume_batch(USAGE, GROUP)
    async def handle(messages: list[WorkloadUsage]) -> None:
        batches.append(len(messages))

    await client.xadd(USAGE.name, {"__data__": "garbage"})
    for index in range(10):
        await client.xadd(USAGE.name, {"__data__": _usage_json(index)})
    await bus.start()
    try:
        await wait_until_async(lambda: sum(batches) == 10, timeout_s=10)
        await wait_until_async(lambda: _has_dead_letters(client, 1), timeout_s=10)
    finally:
        await bus.stop()
    assert await client.xpending(USAGE.name, GROUP) == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }


def _usage_json(index: int) -> str:
    return json.dumps(
        {
            "type": "workload_usage",
            "request_id": f"usage-{index}",
            "actor": {"user_id": "akros", "source": "system", "role": "system"},
            "sampled_at": "2026-01-01T00:00:00Z",
            "samples": [],
        }
    )


async def test_health_reports_a_live_connection(redis_url: str) -> None:
    bus = Bus(_settings(redis_url))

    @bus.consume(ENVIRONMENT_COMMANDS, GROUP)
    async def handle(message: Message) -> None:
        return None

    await bus.start()
    try:
        assert await bus.healthy()
    finally:
        await bus.stop()
    assert not await bus.healthy()


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_an_entry_handled_longer_than_the_reclaim_idle_time_is_not_taken_over(
    redis_url: str, client: aioredis.Redis, concurrency: int
) -> None:
    # The handler runs five reclaim periods: without kept claims the reclaim subscriber
    # delivered it again while it ran, and dead-lettered it after max_deliveries.
    calls: list[str] = []
    bus = Bus(_settings(redis_url, reclaim_idle_ms=200, max_deliveries=3))

    @bus.consume(ENVIRONMENT_COMMANDS, GROUP, concurrency=concurrency)
    async def handle(message: Message) -> None:
        calls.append(message.request_id)
        await asyncio.sleep(1.0)

    await bus.start()
    try:
        await bus.publish(create_command("slow", "slow"))
        await wait_until_async(lambda: calls == ["slow"], timeout_s=10)
        await asyncio.sleep(1.5)
        pending = await client.xpending(ENVIRONMENT_COMMANDS.name, GROUP)
    finally:
        await bus.stop()
    assert calls == ["slow"]
    assert pending["pending"] == 0
    assert await _dead_letters(client) == []


async def test_a_concurrent_consumer_handles_messages_side_by_side(redis_url: str) -> None:
    # Reclaim far off: messages waiting their turn in this process are not abandoned.
    running = 0
    most_at_once = 0
    handled: list[str] = []
    bus = Bus(_settings(redis_url, reclaim_idle_ms=30_000))

    @bus.consume(ENVIRONMENT_COMMANDS, GROUP, concurrency=4)
    async def handle(message: Message) -> None:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.2)
        running -= 1
        handled.append(message.request_id)

    await bus.start()
    try:
        await bus.publish_many([create_command(f"c-{i}", f"c-{i}") for i in range(8)])
        await wait_until_async(lambda: len(handled) == 8, timeout_s=5)
    finally:
        await bus.stop()
    assert most_at_once == 4
