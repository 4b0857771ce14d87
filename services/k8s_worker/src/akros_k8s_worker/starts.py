"""Environments on their way up: recorded in Redis when applied, settled by the pod watcher
(ready or failed) or by the start deadline.

Every replica of the worker watches; whoever removes the record first (HDEL answers 1)
reports the outcome, so each start is reported exactly once.
"""

import time
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from akros_msgs import Actor

_STARTING = "akros:worker:starting"
_UPDATE_IF_PRESENT = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then
  return redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
end
return 0
"""


class StartRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    name: str
    request_id: str
    actor: Actor
    deadline: float
    last_reason: str = "starting"


@dataclass(frozen=True)
class StartBook:
    redis: Redis

    @staticmethod
    def _field(owner: str, name: str) -> str:
        return f"{owner}/{name}"

    async def expect(self, record: StartRecord) -> None:
        await self.redis.hset(
            _STARTING, self._field(record.owner, record.name), record.model_dump_json()
        )

    async def get(self, owner: str, name: str) -> StartRecord | None:
        raw = await self.redis.hget(_STARTING, self._field(owner, name))
        return None if raw is None else StartRecord.model_validate_json(raw)

    async def note(self, record: StartRecord, reason: str) -> None:
        """Keep the latest reason it is still waiting, for the timeout's message; a start that
        was settled meanwhile (claimed) stays settled."""
        if reason != record.last_reason:
            updated = record.model_copy(update={"last_reason": reason})
            field = self._field(record.owner, record.name)
            await self.redis.eval(
                _UPDATE_IF_PRESENT, 1, _STARTING, field, updated.model_dump_json()
            )

    async def claim(self, owner: str, name: str) -> bool:
        """Take the right to report this start; True for exactly one caller."""
        return bool(await self.redis.hdel(_STARTING, self._field(owner, name)))

    async def overdue(self, now: float | None = None) -> list[StartRecord]:
        moment = time.time() if now is None else now
        records = [
            StartRecord.model_validate_json(v)
            for v in (await self.redis.hgetall(_STARTING)).values()
        ]
        return [r for r in records if r.deadline <= moment]
