"""Environments on their way up: recorded in Redis when applied, settled by the pod watcher
(ready or failed) or by the start deadline.

Every replica of the worker watches; whoever claims a record first reports the outcome, then
removes the record. A claim is a lease: a worker that dies between claiming and reporting
(SIGKILL, a lost node) leaves the record behind with its lease running out, and the sweep
settles it again from the pods. So each start is reported, and once unless its reporter died
in the few milliseconds between publishing and removing the record.
"""

import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from akros_msgs import Actor
from akros_readmodel import EnvironmentStatus, EnvironmentView, environment_keys

_STARTING = "akros:worker:starting"
_SETTLING = "akros:worker:settling"  # field -> until when its claimant may report it
SETTLE_LEASE_S = 30.0
_CLAIM = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then return 0 end
local leased_until = tonumber(redis.call('hget', KEYS[2], ARGV[1]) or '0')
if leased_until > tonumber(ARGV[2]) then return 0 end
redis.call('hset', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
# KEYS: starting, settling, the view, the owner's index, the owners.
# ARGV: field, start record, pending view, request id, owner, name, the ready status.
_EXPECT = """
local existing = redis.call('get', KEYS[3])
if existing then
  local view = cjson.decode(existing)
  if view.request_id == ARGV[4] and view.status == ARGV[7] then return 0 end
end
redis.call('set', KEYS[3], ARGV[3])
redis.call('sadd', KEYS[4], ARGV[6])
redis.call('sadd', KEYS[5], ARGV[5])
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('hdel', KEYS[2], ARGV[1])
return 1
"""
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
    # On the way to a create's first write: sent by its SHA (EVALSHA), not its text.
    _expect_script: AsyncScript = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_expect_script", self.redis.register_script(_EXPECT))

    @staticmethod
    def _field(owner: str, name: str) -> str:
        return f"{owner}/{name}"

    async def expect(self, record: StartRecord, pending: EnvironmentView) -> bool:
        """Record a start and its environment's ``pending`` view, in one step (again, for a
        redelivered create: any lease of a dead claimant goes). False, and nothing written,
        when this very request's environment is ready already: its start was reported."""
        field = self._field(record.owner, record.name)
        keys = environment_keys(record.owner, record.name)
        return bool(
            await self._expect_script(
                keys=[_STARTING, _SETTLING, keys.view, keys.owner_index, keys.owners],
                args=[
                    field,
                    record.model_dump_json(),
                    pending.model_dump_json(),
                    record.request_id,
                    record.owner,
                    record.name,
                    EnvironmentStatus.READY.value,
                ],
            )
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

    async def claim(self, owner: str, name: str, *, now: float | None = None) -> bool:
        """Take the right to report this start for SETTLE_LEASE_S: True for one caller at a
        time. Report, then call ``settled``."""
        moment = time.time() if now is None else now
        field = self._field(owner, name)
        return bool(
            await self.redis.eval(
                _CLAIM, 2, _STARTING, _SETTLING, field, moment, moment + SETTLE_LEASE_S
            )
        )

    async def settled(self, owner: str, name: str) -> None:
        """Its outcome is reported (or no longer wanted, the environment being deleted)."""
        field = self._field(owner, name)
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.hdel(_STARTING, field)
            pipeline.hdel(_SETTLING, field)
            await pipeline.execute()

    async def due(self, now: float | None = None) -> "DueStarts":
        """The starts the sweep must see to, from one read of the records."""
        moment = time.time() if now is None else now
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.hgetall(_STARTING)
            pipeline.hgetall(_SETTLING)
            starting, settling = await pipeline.execute()
        leases = {_text(k): float(v) for k, v in settling.items()}
        abandoned, overdue = [], []
        for raw in starting.values():
            record = StartRecord.model_validate_json(raw)
            leased_until = leases.get(self._field(record.owner, record.name), 0.0)
            if 0.0 < leased_until <= moment:
                abandoned.append(record)
            if record.deadline <= moment and leased_until <= moment:
                overdue.append(record)
        return DueStarts(abandoned=abandoned, overdue=overdue)


@dataclass(frozen=True)
class DueStarts:
    abandoned: list[StartRecord]
    """Claimed by a reporter that never reported (its lease ran out)."""
    overdue: list[StartRecord]
    """Past their deadline, and nobody is reporting them now."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
