"""The read model's Redis adapter. Keys live under "akros:rm:"; each view is one JSON string,
with a set per owner as the index, so listing a user's environments is one SMEMBERS and one
MGET whatever the cluster's size."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import WatchError

from akros_msgs import FailureCode, Notification, Resources
from akros_msgs.streams import NOTIFICATIONS
from akros_policy import Holding
from akros_readmodel.views import (
    ClusterView,
    EnvironmentView,
    RequestState,
    RequestView,
    ServiceView,
    UsagePoint,
    VolumeView,
    utc_now,
)

REQUEST_TTL_S = 7 * 24 * 3600
_PREFIX = "akros:rm"
_OWNERS = f"{_PREFIX}:owners"
_SERVICES = f"{_PREFIX}:svcs"
CLUSTER_KEY = f"{_PREFIX}:cluster"
"""The cluster's nodes (a ClusterView as JSON), written by the monitor."""
_LATEST_USAGE = f"{_PREFIX}:usage-latest"
"""A hash: "owner/name" -> the environment's newest UsagePoint."""
NOTIFICATIONS_KEPT = 50
V = TypeVar("V", bound=BaseModel)


class LockTimeoutError(TimeoutError):
    """Someone else held the lock for longer than we were willing to wait."""


def _env_key(owner: str, name: str) -> str:
    return f"{_PREFIX}:env:{owner}:{name}"


def _env_index(owner: str) -> str:
    return f"{_PREFIX}:envs:{owner}"


class EnvironmentKeys(NamedTuple):
    """Where an environment's view lives: for a script that writes a view in one step with
    other keys (the worker's start record). ``put_environment`` writes these three."""

    view: str
    """The view, as JSON."""
    owner_index: str
    """A set of the owner's environment names."""
    owners: str
    """A set of the owners who have any."""


def environment_keys(owner: str, name: str) -> EnvironmentKeys:
    return EnvironmentKeys(_env_key(owner, name), _env_index(owner), _OWNERS)


def _volume_key(owner: str, name: str) -> str:
    return f"{_PREFIX}:vol:{owner}:{name}"


def _volume_index(owner: str) -> str:
    return f"{_PREFIX}:vols:{owner}"


def _service_key(name: str) -> str:
    return f"{_PREFIX}:svc:{name}"


def _usage_key(owner: str, name: str) -> str:
    return f"{_PREFIX}:usage:{owner}:{name}"


def _notifications_key(owner: str) -> str:
    return f"{_PREFIX}:notifications:{owner}"


def underuse_exemption_key(owner: str, name: str) -> str:
    """Set while an environment's owner asked to keep it: the monitor sends no under-use
    notification for it until the key expires."""
    return f"{_PREFIX}:underuse-exempt:{owner}:{name}"


def _expiry_warning_key(owner: str, name: str, expires_at: float) -> str:
    return f"{_PREFIX}:expiry-warned:{owner}:{name}:{int(expires_at)}"


def _request_key(request_id: str) -> str:
    return f"{_PREFIX}:req:{request_id}"


def holding_of(environments: Sequence[EnvironmentView]) -> Holding:
    """What a user holds, from their environments' views: failed ones hold nothing, stopped
    ones count as environments but hold no resources."""
    return Holding(
        resources=sum((env.resources for env in environments if env.holds_resources), Resources()),
        environments=sum(1 for env in environments if env.counts),
    )


class ReadModel:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    # -- environments -----------------------------------------------------------------------

    async def put_environment(self, view: EnvironmentView) -> None:
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.set(_env_key(view.owner, view.name), view.model_dump_json())
            pipeline.sadd(_env_index(view.owner), view.name)
            pipeline.sadd(_OWNERS, view.owner)
            await pipeline.execute()

    async def environment(self, owner: str, name: str) -> EnvironmentView | None:
        return _load(EnvironmentView, await self.redis.get(_env_key(owner, name)))

    async def environments(self, owner: str | None = None) -> list[EnvironmentView]:
        """One owner's environments, or everybody's; sorted by owner, then name."""
        owners = [owner] if owner else sorted(_text(o) for o in await self.redis.smembers(_OWNERS))
        views: list[EnvironmentView] = []
        for each in owners:
            names = sorted(_text(n) for n in await self.redis.smembers(_env_index(each)))
            if names:
                raw = await self.redis.mget([_env_key(each, n) for n in names])
                views.extend(v for v in (_load(EnvironmentView, r) for r in raw) if v)
        return views

    async def remove_environment(self, owner: str, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.delete(_env_key(owner, name))
            pipeline.srem(_env_index(owner), name)
            await pipeline.execute()

    async def holding(self, owner: str) -> Holding:
        return holding_of(await self.environments(owner))

    # -- volumes ----------------------------------------------------------------------------

    async def put_volume(self, view: VolumeView) -> None:
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.set(_volume_key(view.owner, view.name), view.model_dump_json())
            pipeline.sadd(_volume_index(view.owner), view.name)
            await pipeline.execute()

    async def volume(self, owner: str, name: str) -> VolumeView | None:
        return _load(VolumeView, await self.redis.get(_volume_key(owner, name)))

    async def volumes(self, owner: str) -> list[VolumeView]:
        names = sorted(_text(n) for n in await self.redis.smembers(_volume_index(owner)))
        if not names:
            return []
        raw = await self.redis.mget([_volume_key(owner, n) for n in names])
        return [v for v in (_load(VolumeView, r) for r in raw) if v]

    async def remove_volume(self, owner: str, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.delete(_volume_key(owner, name))
            pipeline.srem(_volume_index(owner), name)
            await pipeline.execute()

    # -- in-house services ------------------------------------------------------------------

    async def put_service(self, view: ServiceView) -> None:
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.set(_service_key(view.name), view.model_dump_json())
            pipeline.sadd(_SERVICES, view.name)
            await pipeline.execute()

    async def update_service(self, name: str, changes: dict[str, Any]) -> ServiceView | None:
        """Change some fields of a service's view, if it exists, without losing a write made
        meanwhile."""
        return await self._update(ServiceView, _service_key(name), changes)

    async def _update(
        self, model: type[V], key: str, changes: Mapping[str, Any], *, ttl_s: int | None = None
    ) -> V | None:
        """Change some fields of the view at ``key``, if it exists, in one atomic step: an
        optimistic transaction, retried when the view changed under it, so no write made
        meanwhile is lost. The view is given ``ttl_s`` anew when set."""
        async with self.redis.pipeline(transaction=True) as pipeline:
            while True:
                try:
                    await pipeline.watch(key)
                    view = _load(model, await pipeline.get(key))
                    if view is None:
                        return None  # leaving the pipeline's block unwatches the key
                    updated = view.model_copy(update=changes)
                    pipeline.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    pipeline.set(key, updated.model_dump_json(), ex=ttl_s)
                    await pipeline.execute()
                    return updated
                except WatchError:
                    continue

    async def service(self, name: str) -> ServiceView | None:
        return _load(ServiceView, await self.redis.get(_service_key(name)))

    async def services(self) -> list[ServiceView]:
        names = sorted(_text(n) for n in await self.redis.smembers(_SERVICES))
        if not names:
            return []
        raw = await self.redis.mget([_service_key(n) for n in names])
        return [v for v in (_load(ServiceView, r) for r in raw) if v]

    async def remove_service(self, name: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.delete(_service_key(name))
            pipeline.srem(_SERVICES, name)
            await pipeline.execute()

    # -- the cluster ------------------------------------------------------------------------

    async def put_cluster(self, view: ClusterView) -> None:
        await self.redis.set(CLUSTER_KEY, view.model_dump_json())

    async def cluster(self) -> ClusterView | None:
        return _load(ClusterView, await self.redis.get(CLUSTER_KEY))

    # -- requests ---------------------------------------------------------------------------

    async def put_request(self, view: RequestView) -> None:
        await self.redis.set(
            _request_key(view.request_id), view.model_dump_json(), ex=REQUEST_TTL_S
        )

    async def add_request(self, view: RequestView) -> bool:
        """Record a new request; False (and nothing written) when its id is known already."""
        created = await self.redis.set(
            _request_key(view.request_id), view.model_dump_json(), ex=REQUEST_TTL_S, nx=True
        )
        return bool(created)

    async def request(self, request_id: str) -> RequestView | None:
        return _load(RequestView, await self.redis.get(_request_key(request_id)))

    async def settle_request(
        self,
        request_id: str,
        state: RequestState,
        *,
        code: FailureCode | None = None,
        reason: str | None = None,
        stage: str | None = None,
    ) -> RequestView | None:
        """Give a request its outcome, in one atomic step: its state, and the failure's code
        and reason (cleared when it was applied); a start's last ``stage``, its progress then
        cleared. None when there is no such request (one the gateway did not record, e.g.
        published by another tool, or past its TTL)."""
        changes: dict[str, object] = {
            "state": state,
            "code": code,
            "reason": reason,
            "updated_at": utc_now(),
        }
        if stage is not None:
            changes.update(stage=stage, progress=None)
        return await self._update(
            RequestView, _request_key(request_id), changes, ttl_s=REQUEST_TTL_S
        )

    # -- expiry warnings --------------------------------------------------------------------

    async def claim_expiry_warning(
        self, owner: str, name: str, expires_at: float, *, keep_s: int
    ) -> bool:
        """True for the first caller only, for this expiry (an extension's new one is warned
        of again): the owner is told once, whichever worker replica or retry asks. The claim
        holds when the owner was told (`expiry_warned_at`), and is kept for ``keep_s``, past
        the stop it announces."""
        key = _expiry_warning_key(owner, name, expires_at)
        return bool(await self.redis.set(key, repr(time.time()), nx=True, ex=max(keep_s, 1)))

    async def expiry_warned_at(self, owner: str, name: str, expires_at: float) -> float | None:
        """When the owner was told of this expiry (epoch seconds), or None: not yet."""
        told = await self.redis.get(_expiry_warning_key(owner, name, expires_at))
        return None if told is None else float(told)

    async def release_expiry_warning(self, owner: str, name: str, expires_at: float) -> None:
        """The warning could not be sent: the next reconcile may try again."""
        await self.redis.delete(_expiry_warning_key(owner, name, expires_at))

    # -- under-use exemptions --------------------------------------------------------------

    async def exempt_from_underuse(self, owner: str, name: str, *, seconds: int) -> None:
        """No under-use notification for this environment for ``seconds`` (the owner chose to
        keep it); the value says until when, for people reading Redis."""
        until = (utc_now() + timedelta(seconds=seconds)).isoformat(timespec="seconds")
        await self.redis.set(underuse_exemption_key(owner, name), until, ex=seconds)

    async def underuse_exempt(self, owner: str, name: str) -> bool:
        return bool(await self.redis.exists(underuse_exemption_key(owner, name)))

    async def underuse_exempt_among(
        self, environments: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of these (owner, name) environments are exempt, in one command (an MGET: a
        pipeline of thousands of EXISTS cost ~40 µs each in redis-py)."""
        if not environments:
            return set()
        found = await self.redis.mget([underuse_exemption_key(o, n) for o, n in environments])
        return {env for env, value in zip(environments, found, strict=True) if value is not None}

    # -- usage history and notifications ---------------------------------------------------

    async def record_usage(
        self, points: Mapping[tuple[str, str], UsagePoint], *, keep: int
    ) -> None:
        """Append each environment's point to its history (the newest ``keep`` stay) and make
        it the environment's latest, in one round trip."""
        if not points:
            return
        async with self.redis.pipeline(transaction=False) as pipeline:
            for (owner, name), point in points.items():
                key = _usage_key(owner, name)
                pipeline.rpush(key, point.model_dump_json())
                pipeline.ltrim(key, -keep, -1)
            pipeline.hset(
                _LATEST_USAGE,
                mapping={f"{o}/{n}": p.model_dump_json() for (o, n), p in points.items()},
            )
            await pipeline.execute()

    async def forget_usage(self, environments: Iterable[tuple[str, str]]) -> None:
        """Drop the history of environments that are gone."""
        gone = list(environments)
        if not gone:
            return
        async with self.redis.pipeline(transaction=False) as pipeline:
            pipeline.delete(*(_usage_key(owner, name) for owner, name in gone))
            pipeline.hdel(_LATEST_USAGE, *(f"{owner}/{name}" for owner, name in gone))
            await pipeline.execute()

    async def usage_history(self, owner: str, name: str) -> list[UsagePoint]:
        """Oldest first."""
        raw = await self.redis.lrange(_usage_key(owner, name), 0, -1)
        return [UsagePoint.model_validate_json(item) for item in raw]

    async def latest_usage(self) -> dict[tuple[str, str], UsagePoint]:
        raw = await self.redis.hgetall(_LATEST_USAGE)
        latest: dict[tuple[str, str], UsagePoint] = {}
        for field, value in raw.items():
            owner, _, name = _text(field).partition("/")
            latest[(owner, name)] = UsagePoint.model_validate_json(value)
        return latest

    async def add_notifications(self, notifications: Sequence[Notification]) -> None:
        """Keep each owner's newest ``NOTIFICATIONS_KEPT`` notifications: one push and one trim
        per owner, however many notifications each has."""
        if not notifications:
            return
        by_owner: dict[str, list[str]] = {}
        for notification in notifications:
            by_owner.setdefault(notification.owner, []).append(notification.model_dump_json())
        async with self.redis.pipeline(transaction=False) as pipeline:
            for owner, items in by_owner.items():
                key = _notifications_key(owner)
                pipeline.lpush(key, *items)
                pipeline.ltrim(key, 0, NOTIFICATIONS_KEPT - 1)
            await pipeline.execute()

    async def notifications(self, owner: str) -> list[Notification]:
        """Newest first: under-use nudges and expiry warnings."""
        raw = await self.redis.lrange(_notifications_key(owner), 0, -1)
        return [NOTIFICATIONS.parse(item) for item in raw]

    # -- per-owner serialisation ------------------------------------------------------------

    @asynccontextmanager
    async def owner_lock(
        self, owner: str, *, hold_s: float = 10.0, wait_s: float = 10.0
    ) -> AsyncIterator[None]:
        """Serialise check-then-act on one owner's quota across processes and replicas.

        The lock expires after ``hold_s`` so a crashed holder cannot block the owner forever.
        A holder keeps it for a few milliseconds, so a waiter looks again soon (after 1 ms,
        doubling up to 10 ms) rather than sleeping past most of the wait.
        """
        key = f"{_PREFIX}:lock:{owner}"
        token = uuid.uuid4().hex
        deadline = asyncio.get_running_loop().time() + wait_s
        pauses = lock_wait_pauses()
        while not await self.redis.set(key, token, nx=True, px=int(hold_s * 1000)):
            if asyncio.get_running_loop().time() > deadline:
                raise LockTimeoutError(f"the quota lock of {owner} stayed taken for {wait_s}s")
            await asyncio.sleep(next(pauses))
        try:
            yield
        finally:
            # Release only our own lock: it may have expired and been taken by someone else.
            await self.redis.eval(_RELEASE_IF_OURS, 1, key, token)


def lock_wait_pauses(first_s: float = 0.001, longest_s: float = 0.01) -> Iterator[float]:
    """How long a waiter for a taken owner lock sleeps before each new try."""
    pause_s = first_s
    while True:
        yield pause_s
        pause_s = min(pause_s * 2, longest_s)


_RELEASE_IF_OURS = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _load(model: type[V], raw: bytes | str | None) -> V | None:
    return None if raw is None else model.model_validate_json(raw)
