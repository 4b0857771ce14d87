"""Reading what the gateway published, and playing the k8s_worker's part in the read model."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import redis
import redis.asyncio as aioredis

from akros_bus.wire import DATA_FIELD
from akros_msgs import Message
from akros_msgs.streams import ENVIRONMENT_COMMANDS
from akros_readmodel import ReadModel


def published_commands(redis_url: str) -> list[Message]:
    """Every entry of the environment command stream, parsed as the worker would."""
    client = redis.Redis.from_url(redis_url)
    try:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], client.xrange(ENVIRONMENT_COMMANDS.name)
        )
    finally:
        client.close()
    return [ENVIRONMENT_COMMANDS.parse(fields[DATA_FIELD]) for _, fields in entries]


def as_worker(redis_url: str, change: Callable[[ReadModel], Awaitable[Any]]) -> Any:
    """Run ``change`` on the read model, as the k8s_worker does when it reports outcomes."""

    async def run() -> Any:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await change(ReadModel(client))
        finally:
            await client.aclose()

    return asyncio.run(run())


def create_body(name: str = "lab", **fields: object) -> dict[str, object]:
    return {"name": name, "image": "pytorch", "cpu": "2", "memory": "8Gi", **fields}
