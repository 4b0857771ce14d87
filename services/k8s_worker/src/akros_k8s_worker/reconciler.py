"""The executor of the start reconciler: watches fill caches and queue keys; workers take a
key, `plan` what to do from the start record and the caches, and do it.

The watches never wait for Redis: an event updates a cache in memory and adds its
environment's key to the queue, nothing more. So Redis away, or the API refusing a write,
delays the keys being reconciled (each retried after its back-off), never the watch, and no
event is lost: a reconcile reads the latest state, not the event that queued it.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from akros_bus import get_logger
from akros_k8s_worker.lanes import Lanes
from akros_k8s_worker.reconcile import (
    Desired,
    FailStart,
    MarkReady,
    Observed,
    PodState,
    RecordStage,
    RequeueAfter,
    Stage,
    StageTimeouts,
    observe_claim,
    observe_pod,
    plan,
)
from akros_k8s_worker.workqueue import WorkQueue
from akros_kube import LISTING, SYNCED
from akros_msgs import FailureCode
from akros_policy.naming import LABEL_ENV, LABEL_OWNER
from akros_readmodel import SETTLE_LEASE_S, StartBook, StartRecord

_log = get_logger("akros.reconciler")
Key = tuple[str, str]  # (owner, environment)
Manifest = dict[str, Any]
DEFAULT_WORKERS = 8
DEFAULT_RESYNC_S = 5.0


def key_of(manifest: Manifest) -> Key | None:
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    owner, name = labels.get(LABEL_OWNER), labels.get(LABEL_ENV)
    return (owner, name) if owner and name else None


def _name_of(manifest: Manifest) -> str | None:
    return str((manifest.get("metadata") or {}).get("name", "")) or None


K = TypeVar("K")


@dataclass
class _Cache(Generic[K]):
    """Objects of one kind by key (an environment's, or the object's own name), kept by a
    watch (a relist replaces it whole)."""

    key_of: Callable[[Manifest], K | None]
    by_key: dict[K, dict[str, Manifest]] = field(default_factory=dict)
    _listing: dict[K, dict[str, Manifest]] | None = None
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    def observe(self, event: str, manifest: Manifest) -> set[K]:
        """Apply one watch event; the keys whose objects changed."""
        if event == LISTING:
            self._listing = {}
            return set()
        if event == SYNCED:
            before, self.by_key, self._listing = self.by_key, self._listing or {}, None
            self.synced.set()
            return set(before) | set(self.by_key)
        key = self.key_of(manifest)
        if key is None:
            return set()
        name = str((manifest.get("metadata") or {}).get("name", ""))
        target = self._listing if self._listing is not None else self.by_key
        if event == "DELETED" and self._listing is None:
            objects = target.get(key, {})
            objects.pop(name, None)
            if not objects:
                target.pop(key, None)
        else:
            target.setdefault(key, {})[name] = manifest
        return {key}

    def of(self, key: K) -> list[Manifest]:
        return list(self.by_key.get(key, {}).values())


@dataclass
class StartReconciler:
    starts: StartBook
    timeouts: StageTimeouts
    report_ready: Callable[[StartRecord, str], Awaitable[None]]
    report_failed: Callable[[StartRecord, FailureCode, str], Awaitable[None]]
    announce_stage: Callable[[StartRecord], Awaitable[None]]
    lanes: Lanes
    workers: int = DEFAULT_WORKERS
    resync_s: float = DEFAULT_RESYNC_S
    queue: WorkQueue[Key] = field(default_factory=WorkQueue)
    pods: _Cache[Key] = field(default_factory=lambda: _Cache(key_of))
    claims: _Cache[Key] = field(default_factory=lambda: _Cache(key_of))
    storage_classes: _Cache[str] = field(default_factory=lambda: _Cache(_name_of))
    _claim_changes: dict[Key, asyncio.Event] = field(default_factory=dict)

    # -- feeding the queue ----------------------------------------------------------------

    def on_pod_event(self, event: str, pod: Manifest) -> None:
        for key in self.pods.observe(event, pod):
            self.queue.add(key)

    def on_claim_event(self, event: str, claim: Manifest) -> None:
        for key in self.claims.observe(event, claim):
            self.queue.add(key)
            if (changed := self._claim_changes.pop(key, None)) is not None:
                changed.set()

    def on_storage_class_event(self, event: str, storage_class: Manifest) -> None:
        # No key to queue: a class made for a Pending claim binds it, and the claim's
        # event queues its environment.
        self.storage_classes.observe(event, storage_class)

    def command_touched(self, owner: str, name: str) -> None:
        """A command changed what this environment should be: reconcile it first."""
        self.queue.add((owner, name), urgent=True)

    async def claim_gone(self, owner: str, name: str, timeout_s: float) -> bool:
        """Wait (by the claim watch, not by polling) until the environment has no claim."""
        key = (owner, name)
        deadline = time.monotonic() + timeout_s
        await self.claims.synced.wait()
        while self.claims.of(key):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            changed = self._claim_changes.setdefault(key, asyncio.Event())
            try:
                await asyncio.wait_for(changed.wait(), left)
            except TimeoutError:
                return False
        return True

    # -- working ----------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(self._resync(), *(self._work() for _ in range(self.workers)))

    async def _resync(self) -> None:
        """Queue now and then every open start this worker is not following already (no
        timer, not queued): one another replica recorded and whose timers died with it, or
        one recorded while this worker was down."""
        while True:
            try:
                for key in await self.starts.open_starts():
                    if not self.queue.tracks(key):
                        self.queue.add(key)
            except Exception as error:
                _log.warning("could not read the starts to resync", error=repr(error))
            await asyncio.sleep(self.resync_s)

    async def _work(self) -> None:
        await self.pods.synced.wait()
        await self.claims.synced.wait()
        await self.storage_classes.synced.wait()
        while True:
            key = await self.queue.get()
            try:
                async with self.lanes.background():
                    await self.reconcile(key)
            except Exception as error:
                delay = self.queue.failed(key)
                _log.warning(
                    "reconcile failed; retrying",
                    key="/".join(key),
                    after_s=delay,
                    error=repr(error),
                )
            else:
                self.queue.succeeded(key)
            finally:
                self.queue.done(key)

    def observed(self, key: Key) -> Observed:
        pods: tuple[PodState, ...] = tuple(observe_pod(p) for p in self.pods.of(key))
        claims = self.claims.of(key)
        classes = frozenset(self.storage_classes.by_key)
        return Observed(pods=pods, claim=observe_claim(claims[0], classes) if claims else None)

    async def reconcile(self, key: Key) -> None:
        owner, name = key
        record = await self.starts.get(owner, name)
        if record is None:
            self.queue.forget_timer(key)
            return
        desired = Desired(
            request_id=record.request_id,
            stage=_stage(record.stage),
            stage_since=record.stage_since,
            detail=record.detail,
            started_at=record.started_at,
        )
        now = time.time()
        for action in plan(desired, self.observed(key), now, self.timeouts):
            match action:
                case RecordStage():
                    since = now if action.stage.value != record.stage else record.stage_since
                    recorded = await self.starts.record_stage(
                        record, action.stage.value, action.detail, since
                    )
                    if recorded is None:
                        return  # settled meanwhile (or another replica is reporting it)
                    record = recorded
                    await self.announce_stage(record)
                case MarkReady():
                    if await self._claim(key):
                        await self.report_ready(record, action.node)
                        await self.starts.settled(owner, name)
                case FailStart():
                    if await self._claim(key):
                        await self.report_failed(record, action.code, action.reason)
                        await self.starts.settled(owner, name)
                case RequeueAfter():
                    self.queue.add_after(key, action.seconds)

    async def _claim(self, key: Key) -> bool:
        """The right to report, once across replicas (then report, then ``settled``);
        when another has it, look again once its lease may have run out (it died)."""
        if await self.starts.claim(*key):
            return True
        self.queue.add_after(key, SETTLE_LEASE_S)
        return False


def _stage(value: str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        return Stage.SCHEDULING
