"""What the worker's reconciler owes each environment: a start, a stop or a deletion, in Redis.

A record is the desired side of the reconcile. A create's command (or a start's, resuming a
stopped environment) writes a start record (with the pending view, in one step); a stop's
command writes a stop record; a delete's command writes a deletion record (and drops any
start or stop of that name, in one step). The reconciler reads the record with what the cluster
shows, does the next step (write the objects, record the stage reached, delete the workload,
wait for a purged claim to go), keeps its progress in the record, and removes the record once
it reported the outcome. The records live in Redis, not in the worker, so any replica can
carry one on and a restarted worker finds every outcome it still owes.

Every replica of the worker reconciles; whoever claims a record first reports the outcome,
then removes the record. A claim is a lease held by a worker that is alive: each worker
keeps a key of its own (``akros:worker:alive:<holder>``) for ALIVE_TTL_S and renews it
(``keep_alive``), and a lease counts only while both its time (SETTLE_LEASE_S) and its
holder's key last. So a worker that dies between claiming and reporting (SIGKILL, a lost
node) holds its records up for ALIVE_TTL_S at most, not for the whole lease; the reconciler's
resync settles them again. Each outcome is reported, and once unless its reporter died in the
few milliseconds between publishing and removing the record.
"""

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum

from pydantic import AwareDatetime, BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from akros_msgs import Actor, CreateEnvironment
from akros_readmodel.store import REQUEST_TTL_S, _load, _request_key, environment_keys
from akros_readmodel.views import EnvironmentStatus, EnvironmentView, RequestView

_STARTING = "akros:worker:starting"
_SETTLING = "akros:worker:settling"  # field -> until when its claimant may report the start
_DELETING = "akros:worker:deleting"
_DELETION_LEASES = "akros:worker:deleting:leases"
_STOPPING = "akros:worker:stopping"
_STOP_LEASES = "akros:worker:stopping:leases"
SETTLE_LEASE_S = 30.0
ALIVE_TTL_S = 10
_ALIVE_PREFIX = "akros:worker:alive:"
# A lease is "<until> <holder>" (a lease of an older worker, "<until>", has no holder to ask).
# The holder's key is derived here rather than passed in KEYS: who holds a lease is only
# known once it is read, in the script.
_LEASE_HELD = f"""
local function lease_left_ms(leases, field, now)
  local lease = redis.call('hget', leases, field)
  if not lease then return 0 end
  local until_s, holder = string.match(lease, '^(%S+) ?(%S*)$')
  local left = math.floor(((tonumber(until_s) or 0) - now) * 1000)
  if left <= 0 or holder == '' then return math.max(left, 0) end
  return math.max(math.min(left, redis.call('pttl', '{_ALIVE_PREFIX}' .. holder)), 0)
end
local function lease_held(leases, field, now)
  return lease_left_ms(leases, field, now) > 0
end
"""
# KEYS: the leases. ARGV: field, now. How long the lease of a record still holds, in ms.
_LEASE_LEFT = _LEASE_HELD + "return lease_left_ms(KEYS[1], ARGV[1], tonumber(ARGV[2]))"
# KEYS: the records, their leases. ARGV: field, now, until, holder, the holder's TTL.
# The claimant's key is set with the claim: a lease is never taken by a holder not alive.
_CLAIM = (
    _LEASE_HELD
    + f"""
if redis.call('hexists', KEYS[1], ARGV[1]) == 0 then return 0 end
if lease_held(KEYS[2], ARGV[1], tonumber(ARGV[2])) then return 0 end
redis.call('hset', KEYS[2], ARGV[1], ARGV[3] .. ' ' .. ARGV[4])
redis.call('set', '{_ALIVE_PREFIX}' .. ARGV[4], '1', 'EX', ARGV[5])
return 1
"""
)
# KEYS: starting, settling, the view, the owner's index, the owners, deleting, stopping.
# ARGV: field, start record, pending view, request id, owner, name, the ready status.
# Returns 1 recorded, 0 this request is ready already, -1 a deletion of the name is under
# way, -2 a stop of the name is.
_EXPECT = """
if redis.call('hexists', KEYS[6], ARGV[1]) == 1 then return -1 end
if redis.call('hexists', KEYS[7], ARGV[1]) == 1 then return -2 end
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
# KEYS: the records, their leases, the view, the request. ARGV: field, record, view ('' to
# leave it), request ('' to leave it), now, the request's TTL, the record's request id.
# Nothing is written once the record is settled, being reported or another request's: a
# progress note must never overwrite an outcome.
_RECORD_PROGRESS = (
    _LEASE_HELD
    + """
local current = redis.call('hget', KEYS[1], ARGV[1])
if not current then return 0 end
if cjson.decode(current).request_id ~= ARGV[7] then return 0 end
if lease_held(KEYS[2], ARGV[1], tonumber(ARGV[5])) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('set', KEYS[3], ARGV[3]) end
if ARGV[4] ~= '' then redis.call('set', KEYS[4], ARGV[4], 'EX', ARGV[6]) end
return 1
"""
)
# KEYS: deleting, starting, stopping. ARGV: field. One command where a pipeline of HGETs
# cost the client a fifth more CPU, on every reconcile.
_INTENT = """
local deleting = redis.call('hget', KEYS[1], ARGV[1])
if deleting then return {'deletion', deleting} end
local stopping = redis.call('hget', KEYS[3], ARGV[1])
if stopping then return {'stop', stopping} end
local starting = redis.call('hget', KEYS[2], ARGV[1])
if starting then return {'start', starting} end
return false
"""
# KEYS: deleting, starting, settling, stopping, stop leases. ARGV: field, deletion record,
# request id, now. Returns false when another request's deletion of the name is under way;
# else the deletion is recorded and any start or stop of the name dropped (nobody waits for
# it now), and the answer lists the requests of those dropped that nobody is reporting (a
# record whose lease is held is being reported: its outcome is on its way).
_EXPECT_DELETION = (
    _LEASE_HELD
    + """
local current = redis.call('hget', KEYS[1], ARGV[1])
if current and cjson.decode(current).request_id ~= ARGV[3] then return false end
if not current then redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) end
local superseded = {}
for i, records in ipairs({KEYS[2], KEYS[4]}) do
  local leases = ({KEYS[3], KEYS[5]})[i]
  local raw = redis.call('hget', records, ARGV[1])
  if raw and not lease_held(leases, ARGV[1], tonumber(ARGV[4])) then
    table.insert(superseded, cjson.decode(raw).request_id)
  end
  redis.call('hdel', records, ARGV[1])
  redis.call('hdel', leases, ARGV[1])
end
return {'recorded', unpack(superseded)}
"""
)
# KEYS: stopping, deleting, starting. ARGV: field, stop record, request id.
# Returns 1 recorded (a redelivered stop keeps its progress), 0 another request's stop of
# the name is under way, -1 a deletion is, -2 a start is (it must be reported first).
_EXPECT_STOP = """
if redis.call('hexists', KEYS[2], ARGV[1]) == 1 then return -1 end
if redis.call('hexists', KEYS[3], ARGV[1]) == 1 then return -2 end
local current = redis.call('hget', KEYS[1], ARGV[1])
if current and cjson.decode(current).request_id ~= ARGV[3] then return 0 end
if not current then redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) end
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
    spec: CreateEnvironment | None = None
    """The create whose objects the reconciler writes (each write is idempotent, so a worker
    that does not know whether they are written writes them again); None for a start whose
    objects are written already by other means."""
    resume: bool = False
    """A stopped environment started again: its objects exist, and its Deployment is scaled
    back to one with this request's id on its pods."""
    restart: bool = False
    """An existing environment restarted with ``spec`` (a resize): a start that fails stops
    it, keeping everything, rather than removing its workload as a create's failure does."""
    new_expiry: AwareDatetime | None = None
    """A resume after the environment's expiry: the expiry it is given with the scale-up."""


class DeletionRecord(BaseModel):
    """A delete the reconciler owes an outcome: of the environment (its workload, and its
    volume when ``purge_volume``), or of its kept volume alone (``volume_only``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    name: str
    request_id: str
    actor: Actor
    requested_at: float
    purge_volume: bool = False
    volume_only: bool = False
    workload_deleted: bool = False


class StopRecord(BaseModel):
    """A stop the reconciler owes an outcome: the Deployment scaled to zero (``scaled``), then
    reported once no pod of it is left."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    name: str
    request_id: str
    actor: Actor
    requested_at: float
    reason: str = ""
    scaled: bool = False


class Expected(Enum):
    RECORDED = 1
    ALREADY_READY = 0
    BEING_DELETED = -1
    BEING_STOPPED = -2


class StopExpected(Enum):
    RECORDED = 1
    ANOTHER_STOP = 0
    BEING_DELETED = -1
    STARTING = -2


Intent = StartRecord | DeletionRecord | StopRecord


@dataclass(frozen=True)
class LifecycleBook:
    redis: Redis
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Who this worker is, in its leases."""
    # On the way to a create's first write: sent by its SHA (EVALSHA), not its text.
    _expect_script: AsyncScript = field(init=False, repr=False, compare=False)
    _progress_script: AsyncScript = field(init=False, repr=False, compare=False)
    _deletion_script: AsyncScript = field(init=False, repr=False, compare=False)
    _claim_script: AsyncScript = field(init=False, repr=False, compare=False)
    _intent_script: AsyncScript = field(init=False, repr=False, compare=False)
    _lease_left_script: AsyncScript = field(init=False, repr=False, compare=False)
    _stop_script: AsyncScript = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, text in (
            ("_expect_script", _EXPECT),
            ("_progress_script", _RECORD_PROGRESS),
            ("_deletion_script", _EXPECT_DELETION),
            ("_claim_script", _CLAIM),
            ("_intent_script", _INTENT),
            ("_lease_left_script", _LEASE_LEFT),
            ("_stop_script", _EXPECT_STOP),
        ):
            object.__setattr__(self, name, self.redis.register_script(text))

    @staticmethod
    def _field(owner: str, name: str) -> str:
        return f"{owner}/{name}"

    # -- starts ---------------------------------------------------------------------------

    async def expect(self, record: StartRecord, pending: EnvironmentView) -> Expected:
        """Record a start and its environment's ``pending`` view, in one step (again, for a
        redelivered create: any lease of a dead claimant goes). Nothing is written when this
        very request's environment is ready already (its start was reported) or a deletion
        of the name is under way."""
        field = self._field(record.owner, record.name)
        keys = environment_keys(record.owner, record.name)
        answer = await self._expect_script(
            keys=[
                _STARTING,
                _SETTLING,
                keys.view,
                keys.owner_index,
                keys.owners,
                _DELETING,
                _STOPPING,
            ],
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
        return Expected(int(answer))

    async def get(self, owner: str, name: str) -> StartRecord | None:
        raw = await self.redis.hget(_STARTING, self._field(owner, name))
        return None if raw is None else StartRecord.model_validate_json(raw)

    async def intent(self, owner: str, name: str) -> Intent | None:
        """What is owed for this environment, from one round trip: its deletion when one is
        under way (it supersedes anything else), else its stop, else its start, else None."""
        found = await self._intent_script(
            keys=[_DELETING, _STARTING, _STOPPING], args=[self._field(owner, name)]
        )
        if not found:
            return None
        kind, raw = found
        kinds: dict[str, type[Intent]] = {"deletion": DeletionRecord, "stop": StopRecord}
        return kinds.get(_text(kind), StartRecord).model_validate_json(raw)

    async def record_stage(
        self, record: StartRecord, stage: str, detail: str, since: float
    ) -> StartRecord | None:
        """Keep the stage the start has reached and what it waits for, in its record, its
        environment's view and its request (where people look), in two round trips. Returns
        the record as it is now, or None (nothing written) when the start was settled, is
        being reported or was replaced meanwhile."""
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
        written = await self._progress(
            _STARTING,
            _SETTLING,
            updated,
            view=view.model_copy(update=changes)
            if view is not None and view.request_id == record.request_id
            else None,
            request=request.model_copy(update=changes) if request else None,
        )
        return updated if written else None

    async def claim(self, owner: str, name: str, *, now: float | None = None) -> bool:
        """Take the right to report this start for SETTLE_LEASE_S, or until this worker's
        key runs out (``keep_alive``): True for one caller at a time. Report, then call
        ``settled``."""
        return await self._claim(_STARTING, _SETTLING, owner, name, now)

    async def held_for_s(self, owner: str, name: str, *, now: float | None = None) -> float:
        """How long another worker's claim on this start still holds: until its lease runs
        out or, sooner, its holder's key (0 when nobody holds it)."""
        return await self._lease_left(_SETTLING, owner, name, now)

    async def release(self, owner: str, name: str) -> None:
        """Give up the claim on a start whose report failed, so a retry (this worker's or
        another's) may report it at once rather than after the lease."""
        await self.redis.hdel(_SETTLING, self._field(owner, name))

    async def settled(self, owner: str, name: str) -> None:
        """Its outcome is reported (or no longer wanted)."""
        await self._remove(_STARTING, _SETTLING, owner, name)

    async def all(self) -> list[StartRecord]:
        """Every start some worker owes an outcome, from one read."""
        starting = await self.redis.hgetall(_STARTING)
        return [StartRecord.model_validate_json(raw) for raw in starting.values()]

    # -- deletions --------------------------------------------------------------------------

    async def expect_deletion(
        self, record: DeletionRecord, *, now: float | None = None
    ) -> tuple[str, ...] | None:
        """Record a deletion and drop any start or stop of the name (nobody waits for it
        now), in one step. None, and nothing written, when another request's deletion of the
        name is under way; a redelivered one keeps the progress recorded. Else the request
        ids of the starts and stops it dropped whose outcome nobody is reporting: they end
        here, so their requests are the caller's to settle."""
        answer = await self._deletion_script(
            keys=[_DELETING, _STARTING, _SETTLING, _STOPPING, _STOP_LEASES],
            args=[
                self._field(record.owner, record.name),
                record.model_dump_json(),
                record.request_id,
                time.time() if now is None else now,
            ],
        )
        if not answer:
            return None
        return tuple(_text(request_id) for request_id in answer[1:])

    async def deletion(self, owner: str, name: str) -> DeletionRecord | None:
        raw = await self.redis.hget(_DELETING, self._field(owner, name))
        return None if raw is None else DeletionRecord.model_validate_json(raw)

    async def record_workload_deleted(self, record: DeletionRecord) -> DeletionRecord | None:
        updated = record.model_copy(update={"workload_deleted": True})
        written = await self._progress(_DELETING, _DELETION_LEASES, updated)
        return updated if written else None

    async def claim_deletion(self, owner: str, name: str, *, now: float | None = None) -> bool:
        return await self._claim(_DELETING, _DELETION_LEASES, owner, name, now)

    async def deletion_held_for_s(
        self, owner: str, name: str, *, now: float | None = None
    ) -> float:
        return await self._lease_left(_DELETION_LEASES, owner, name, now)

    async def release_deletion(self, owner: str, name: str) -> None:
        await self.redis.hdel(_DELETION_LEASES, self._field(owner, name))

    async def deletion_settled(self, owner: str, name: str) -> None:
        await self._remove(_DELETING, _DELETION_LEASES, owner, name)

    # -- stops ------------------------------------------------------------------------------

    async def expect_stop(self, record: StopRecord) -> StopExpected:
        """Record a stop, unless a deletion or a start of the name is under way, or another
        request's stop; a redelivered one keeps the progress recorded."""
        answer = await self._stop_script(
            keys=[_STOPPING, _DELETING, _STARTING],
            args=[
                self._field(record.owner, record.name),
                record.model_dump_json(),
                record.request_id,
            ],
        )
        return StopExpected(int(answer))

    async def record_scaled(self, record: StopRecord) -> StopRecord | None:
        updated = record.model_copy(update={"scaled": True})
        written = await self._progress(_STOPPING, _STOP_LEASES, updated)
        return updated if written else None

    async def claim_stop(self, owner: str, name: str, *, now: float | None = None) -> bool:
        return await self._claim(_STOPPING, _STOP_LEASES, owner, name, now)

    async def stop_held_for_s(self, owner: str, name: str, *, now: float | None = None) -> float:
        return await self._lease_left(_STOP_LEASES, owner, name, now)

    async def release_stop(self, owner: str, name: str) -> None:
        await self.redis.hdel(_STOP_LEASES, self._field(owner, name))

    async def stop_settled(self, owner: str, name: str) -> None:
        await self._remove(_STOPPING, _STOP_LEASES, owner, name)

    # -- all of them ------------------------------------------------------------------------

    async def keep_alive(self) -> None:
        """Renew this worker's key, for its leases to count, until cancelled; a Redis blip
        is retried at the next beat (the key outlives three of them)."""
        while True:
            with contextlib.suppress(Exception):
                await self.redis.set(_ALIVE_PREFIX + self.holder, "1", ex=ALIVE_TTL_S)
            await asyncio.sleep(ALIVE_TTL_S / 3)

    async def open_keys(self) -> list[tuple[str, str]]:
        """(owner, name) of every environment some worker owes an outcome: the fields alone,
        for the reconciler's resync, which reads each record when it reconciles it."""
        async with self.redis.pipeline(transaction=False) as pipeline:
            for records in (_STARTING, _DELETING, _STOPPING):
                pipeline.hkeys(records)
            fields = await pipeline.execute()
        return sorted({_split(_text(f)) for of_one in fields for f in of_one})

    async def _progress(
        self,
        records: str,
        leases: str,
        record: Intent,
        *,
        view: EnvironmentView | None = None,
        request: RequestView | None = None,
    ) -> bool:
        return bool(
            await self._progress_script(
                keys=[
                    records,
                    leases,
                    environment_keys(record.owner, record.name).view,
                    _request_key(record.request_id),
                ],
                args=[
                    self._field(record.owner, record.name),
                    record.model_dump_json(),
                    "" if view is None else view.model_dump_json(),
                    "" if request is None else request.model_dump_json(),
                    time.time(),
                    REQUEST_TTL_S,
                    record.request_id,
                ],
            )
        )

    async def _lease_left(self, leases: str, owner: str, name: str, now: float | None) -> float:
        moment = time.time() if now is None else now
        left_ms = await self._lease_left_script(
            keys=[leases], args=[self._field(owner, name), moment]
        )
        return int(left_ms) / 1000

    async def _claim(
        self, records: str, leases: str, owner: str, name: str, now: float | None
    ) -> bool:
        moment = time.time() if now is None else now
        return bool(
            await self._claim_script(
                keys=[records, leases],
                args=[
                    self._field(owner, name),
                    moment,
                    moment + SETTLE_LEASE_S,
                    self.holder,
                    ALIVE_TTL_S,
                ],
            )
        )

    async def _remove(self, records: str, leases: str, owner: str, name: str) -> None:
        field = self._field(owner, name)
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.hdel(records, field)
            pipeline.hdel(leases, field)
            await pipeline.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _split(field: str) -> tuple[str, str]:
    owner, _, name = field.partition("/")
    return owner, name
