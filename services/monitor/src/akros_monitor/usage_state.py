"""The under-use policy's memory, kept in Redis so a restarted monitor resumes every
environment's streak instead of starting its grace period over."""

from collections.abc import Iterable, Mapping

from pydantic import TypeAdapter, ValidationError
from redis.asyncio import Redis

from akros_monitor.underuse import UnderuseState
from akros_monitor.usage import EnvironmentKey

UNDERUSE_STATE_KEY = "akros:monitor:underuse"
"""A hash: "owner/name" -> UnderuseState as JSON."""
_STATE = TypeAdapter(UnderuseState)


def _field(key: EnvironmentKey) -> str:
    return f"{key[0]}/{key[1]}"


class UnderuseStates:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def load(self) -> dict[EnvironmentKey, UnderuseState]:
        raw = await self.redis.hgetall(UNDERUSE_STATE_KEY)
        states: dict[EnvironmentKey, UnderuseState] = {}
        for field, value in raw.items():
            text = field.decode() if isinstance(field, bytes) else field
            owner, _, name = text.partition("/")
            try:
                states[(owner, name)] = _STATE.validate_json(value)
            except ValidationError:
                continue  # written by an incompatible version: that streak starts over
        return states

    async def save(
        self, changed: Mapping[EnvironmentKey, UnderuseState], gone: Iterable[EnvironmentKey]
    ) -> None:
        """Write the states that changed and drop those of environments that are gone, in one
        round trip."""
        async with self.redis.pipeline(transaction=False) as pipeline:
            if changed:
                pipeline.hset(
                    UNDERUSE_STATE_KEY,
                    mapping={_field(k): _STATE.dump_json(s) for k, s in changed.items()},
                )
            gone_fields = [_field(key) for key in gone]
            if gone_fields:
                pipeline.hdel(UNDERUSE_STATE_KEY, *gone_fields)
            await pipeline.execute()
