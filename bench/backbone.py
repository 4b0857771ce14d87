"""Event backbone throughput and latency against raw Redis Streams, in one run.

Measures, on a redis-server of its own (AOF on, as shipped):
- raw redis-py: XREADGROUP COUNT 100 and one XACK per batch (the ceiling);
- plain FastStream: a single-message subscriber taking the pydantic model, acking per message;
- our reliable consumer, single-message and batch (akros_bus.Bus);
- publish-to-handler latency across processes (publisher here, consumer in a child process).
Each throughput figure is the median of REPEATS runs. The last line is one JSON object.
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import redis.asyncio as aioredis
from faststream.redis import RedisBroker, StreamSub

from akros_bus import Bus, BusSettings, configure_logging, ensure_group
from akros_bus.wire import DATA_FIELD
from akros_devtools import ChildProcess, LocalRedis
from akros_msgs import SYSTEM_ACTOR, Message, ScaleDeployment
from akros_msgs.streams import SCALE_COMMANDS
from bench.backbone_latency_consumer import LATENCY_KEY

REPEATS = 3
RAW_AND_BATCH_MESSAGES = 20_000
SINGLE_MESSAGES = 4_000
LATENCY_MESSAGES = 1_000
LATENCY_PACE_S = 0.002
GROUP = "bench"


def _message(index: int) -> ScaleDeployment:
    return ScaleDeployment(
        request_id=f"bench-{index}",
        actor=SYSTEM_ACTOR,
        namespace="inference",
        deployment="auto-inference",
        replicas=index % 50,
        reason="bench",
    )


async def _fill(client: aioredis.Redis, stream: str, count: int) -> None:
    payload = _message(0).model_dump_json().encode()
    for start in range(0, count, 1000):
        async with client.pipeline(transaction=False) as pipeline:
            for _ in range(min(1000, count - start)):
                pipeline.xadd(stream, {DATA_FIELD: payload})
            await pipeline.execute()


async def _reset(client: aioredis.Redis, count: int) -> None:
    await client.delete(SCALE_COMMANDS.name)
    await _fill(client, SCALE_COMMANDS.name, count)


async def raw_drain(url: str, count: int) -> float:
    client = aioredis.Redis.from_url(url)
    await _reset(client, count)
    await ensure_group(client, SCALE_COMMANDS.name, GROUP)
    started = time.perf_counter()
    done = 0
    while done < count:
        reply: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] = cast(
            Any, await client.xreadgroup(GROUP, "raw", {SCALE_COMMANDS.name: ">"}, count=100)
        )
        for _, entries in reply:
            ids = [entry_id for entry_id, _ in entries]
            await client.xack(SCALE_COMMANDS.name, GROUP, *ids)
            done += len(ids)
    elapsed = time.perf_counter() - started
    await client.aclose()
    return count / elapsed


async def _timed(start: Callable[[], Awaitable[None]], finished: asyncio.Event) -> float:
    started = time.perf_counter()
    await start()
    await finished.wait()
    return time.perf_counter() - started


async def plain_faststream(url: str, count: int) -> float:
    client = aioredis.Redis.from_url(url)
    await client.delete(SCALE_COMMANDS.name)
    broker = RedisBroker(url, log_level=10)  # per-message logs off, as in our consumer
    await broker.connect()
    for index in range(count):
        await broker.publish(_message(index), stream=SCALE_COMMANDS.name)
    await ensure_group(client, SCALE_COMMANDS.name, GROUP)
    finished = asyncio.Event()
    seen = 0

    @broker.subscriber(
        stream=StreamSub(SCALE_COMMANDS.name, group=GROUP, consumer="plain", max_records=100)
    )
    async def handle(body: ScaleDeployment) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            finished.set()

    elapsed = await _timed(broker.start, finished)
    await broker.stop()
    await client.aclose()
    return count / elapsed


def _bus(url: str) -> Bus:
    return Bus(
        BusSettings(redis_url=url, service_name="bench", consumer_name="bench", read_count=100)
    )


async def reliable_single(url: str, count: int) -> float:
    client = aioredis.Redis.from_url(url)
    await _reset(client, count)
    bus = _bus(url)
    finished = asyncio.Event()
    seen = 0

    @bus.consume(SCALE_COMMANDS, GROUP)
    async def handle(message: Message) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            finished.set()

    elapsed = await _timed(bus.start, finished)
    await bus.stop()
    await client.aclose()
    return count / elapsed


async def reliable_batch(url: str, count: int) -> float:
    client = aioredis.Redis.from_url(url)
    await _reset(client, count)
    bus = _bus(url)
    finished = asyncio.Event()
    seen = 0

    @bus.consume_batch(SCALE_COMMANDS, GROUP)
    async def handle(messages: list[ScaleDeployment]) -> None:
        nonlocal seen
        seen += len(messages)
        if seen >= count:
            finished.set()

    elapsed = await _timed(bus.start, finished)
    await bus.stop()
    await client.aclose()
    return count / elapsed


async def latency(url: str, workdir: Path) -> tuple[float, float]:
    client = aioredis.Redis.from_url(url)
    await client.delete(SCALE_COMMANDS.name, LATENCY_KEY)
    consumer = ChildProcess.python_module(
        "bench.backbone_latency_consumer",
        log_path=workdir / "latency-consumer.log",
        env={
            "AKROS_REDIS_URL": url,
            "AKROS_LOG_LEVEL": "WARNING",
            "AKROS_POLL_INTERVAL_MS": "1000",
        },
    ).start()
    try:
        publisher = _bus(url)
        await publisher.connect()
        await publisher.publish(_message(-1))  # warm-up: the consumer is up once this arrives
        async with asyncio.timeout(30):
            while await client.llen(LATENCY_KEY) < 1:
                await asyncio.sleep(0.05)
        await client.delete(LATENCY_KEY)
        for index in range(LATENCY_MESSAGES):
            message = _message(index).model_copy(update={"occurred_at": datetime.now(UTC)})
            await publisher.publish(message)
            await asyncio.sleep(LATENCY_PACE_S)
        async with asyncio.timeout(30):
            while await client.llen(LATENCY_KEY) < LATENCY_MESSAGES:
                await asyncio.sleep(0.05)
        delays = sorted(float(v) for v in await client.lrange(LATENCY_KEY, 0, -1))
        await publisher.stop()
    finally:
        consumer.stop()
        await client.aclose()
    p50 = statistics.median(delays)
    p99 = delays[int(len(delays) * 0.99) - 1]
    return p50, p99


def _median(runs: list[float]) -> float:
    return statistics.median(runs)


async def main() -> dict[str, float]:
    configure_logging("bench", "WARNING")
    with tempfile.TemporaryDirectory() as directory, LocalRedis(Path(directory)) as server:
        url = server.url
        raw = _median([await raw_drain(url, RAW_AND_BATCH_MESSAGES) for _ in range(REPEATS)])
        plain = _median([await plain_faststream(url, SINGLE_MESSAGES) for _ in range(REPEATS)])
        single = _median([await reliable_single(url, SINGLE_MESSAGES) for _ in range(REPEATS)])
        batch = _median([await reliable_batch(url, RAW_AND_BATCH_MESSAGES) for _ in range(REPEATS)])
        p50, p99 = await latency(url, Path(directory))
    return {
        "raw_msgs_per_s": round(raw),
        "plain_faststream_msgs_per_s": round(plain),
        "single_msgs_per_s": round(single),
        "batch_msgs_per_s": round(batch),
        "single_ratio_to_raw": round(single / raw, 3),
        "batch_ratio_to_raw": round(batch / raw, 3),
        "single_ratio_to_plain_faststream": round(single / plain, 3),
        "latency_p50_ms": round(p50, 2),
        "latency_p99_ms": round(p99, 2),
    }


def report(figures: dict[str, float]) -> None:
    print(f"raw redis-py (XREADGROUP COUNT 100, XACK per batch): {figures['raw_msgs_per_s']} msg/s")
    print(f"plain FastStream, single-message:  {figures['plain_faststream_msgs_per_s']} msg/s")
    print(
        f"akros_bus single-message:          {figures['single_msgs_per_s']} msg/s "
        f"({figures['single_ratio_to_raw']:.1%} of raw, "
        f"{figures['single_ratio_to_plain_faststream']:.1%} of plain FastStream)"
    )
    print(
        f"akros_bus batch (100 per read):    {figures['batch_msgs_per_s']} msg/s "
        f"({figures['batch_ratio_to_raw']:.1%} of raw)"
    )
    print(
        f"publish-to-handler latency across processes: p50 {figures['latency_p50_ms']} ms, "
        f"p99 {figures['latency_p99_ms']} ms"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    report(asyncio.run(main()))
    sys.exit(0)
