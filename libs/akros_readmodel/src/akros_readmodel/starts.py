"""Environments on their way up: the start records the worker's reconciler owes an outcome.

A record is the desired side of the reconcile: a create's command writes it (with the pending
view, in one step), the reconciler reads it with what the cluster shows, records the stage the
start has reached, and removes it once it reported the outcome (or the environment was
deleted). It lives in Redis, not in the worker, so any replica can settle it and a restarted
worker finds every start it still owes.

Every replica of the worker reconciles; whoever claims a record first reports the outcome,
then removes the record. A claim is a lease: a worker that dies between claiming and
reporting (SIGKILL, a lost node) leaves the record behind with its lease running out, and the
reconciler's resync settles it again. So each start is reported, and once unless its reporter
died in the few milliseconds between publishing and removing the record.
"""

import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from akros_msgs import Actor
from akros_readmodel.store import REQUEST_TTL_S, _load, _request_key, environment_keys
from akros_readmodel.views import EnvironmentStatus, EnvironmentView, RequestView

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
# KEYS: starting, settling, the view, the request. ARGV: field, start record, view ('' to
# leave it), request ('' to leave it), now, the request's TTL. Nothing is written once the
# start is settled or being reported: a stage must never overwrite the outcome's view.
_RECORD_STAGE = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then return 0 end
local leased_until = tonumber(redis.call('hget', KEYS[2], ARGV[1]) or '0')
if leased_until > tonumber(ARGV[5]) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('set', KEYS[3], ARGV[3]) end
if ARGV[4] ~= '' then redis.call('set', KEYS[4], ARGV[4], 'EX', ARGV[6]) end
return 1
"""


class StartRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    name: str
    request_id: str
    actor: Actor
    stage: str = "scheduling"
    stage_since: float
    """When the start entered ``stage``: each stage's timeout runs from here."""
    detail: str = ""
    started_at: float = 0.0


@dataclass(frozen=True)
class StartBook:
    redis: Redis
    # On the way to a create's first write: sent by its SHA (EVALSHA), not its text.
    _expect_script: AsyncScript = field(init=False, repr=False, compare=False)

    _stage_script: AsyncScript = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_expect_script", self.redis.register_script(_EXPECT))
        object.__setattr__(self, "_stage_script", self.redis.register_script(_RECORD_STAGE))

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

    async def record_stage(
        self, record: StartRecord, stage: str, detail: str, since: float
    ) -> StartRecord | None:
        """Keep the stage the start has reached and what it waits for, in its record, its
        environment's view and its request (where people look), in two round trips. Returns
        the record as it is now, or None (nothing written) when the start was settled or is
        being reported meanwhile."""
        updated = record.model_copy(update={"stage": stage, "detail": detail, "stage_since": since})
        keys = environment_keys(record.owner, record.name)
        request_key = _request_key(record.request_id)
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.get(keys.view)
            pipeline.get(request_key)
            raw_view, raw_request = await pipeline.execute()
        changes = {"stage": stage, "progress": detail}
        view = _load(EnvironmentView, raw_view)
        request = _load(RequestView, raw_request)
        written = await self._stage_script(
            keys=[_STARTING, _SETTLING, keys.view, request_key],
            args=[
                self._field(record.owner, record.name),
                updated.model_dump_json(),
                view.model_copy(update=changes).model_dump_json()
                if view is not None and view.request_id == record.request_id
                else "",
                request.model_copy(update=changes).model_dump_json() if request else "",
                time.time(),
                REQUEST_TTL_S,
            ],
        )
        return updated if written else None

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

    async def all(self) -> list[StartRecord]:
        """Every start some worker owes an outcome, from one read."""
        starting = await self.redis.hgetall(_STARTING)
        return [StartRecord.model_validate_json(raw) for raw in starting.values()]

    async def open_starts(self) -> list[tuple[str, str]]:
        """(owner, name) of every start some worker owes an outcome: the fields alone, for
        the reconciler's resync, which reads each record when it reconciles it."""
        fields = await self.redis.hkeys(_STARTING)
        return [_split(_text(f)) for f in fields]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _split(field: str) -> tuple[str, str]:
    owner, _, name = field.partition("/")
    return owner, name
