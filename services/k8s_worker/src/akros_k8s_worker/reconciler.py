"""The executor of the environment lifecycle: commands record what is owed and queue their
environment's key first; watches fill caches and queue keys; requeue-after timers queue keys
at deadlines, expiries and retries. Workers take a key, `plan` what to do from its record (a
start, a stop or a deletion, akros_readmodel.lifecycle) and the caches, or `plan_expiry` from
a running environment's expiry, and do it through the effects.

The watches never wait for Redis: an event updates a cache in memory and adds its
environment's key to the queue, nothing more. So Redis away, or the API refusing a write,
delays the keys being reconciled (each retried after its back-off), never the watch, and no
event is lost: a reconcile reads the latest state, not the event that queued it.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from akros_bus import get_logger
from akros_k8s_worker.outcomes import refusal_of
from akros_k8s_worker.reconcile import (
    ApplyObjects,
    DeleteClaim,
    DeleteWorkload,
    Deletion,
    Desired,
    FailDeletion,
    FailStart,
    FailStop,
    MarkReady,
    Observed,
    PodState,
    RecordStage,
    ReportDeleted,
    ReportStopped,
    RequeueAfter,
    ScaleToZero,
    Stage,
    StageTimeouts,
    StopExpired,
    Stopping,
    WarnExpiry,
    observe_claim,
    observe_pod,
    plan,
    plan_expiry,
)
from akros_k8s_worker.workqueue import WorkQueue
from akros_kube import LISTING, SYNCED
from akros_msgs import FailureCode
from akros_policy.naming import LABEL_ENV, LABEL_OWNER
from akros_readmodel import DeletionRecord, Intent, LifecycleBook, StartRecord, StopRecord

_log = get_logger("akros.reconciler")
Key = tuple[str, str]  # (owner, environment)
Manifest = dict[str, Any]
# Reconciles in flight at once (controller-runtime's MaxConcurrentReconciles), of which at
# most OTHER_AT_ONCE for keys not a command's: the rest are always free for a command's
# key, so its first write never waits for a worker (bench/env_pipeline.py: with every worker
# busy with earlier creates' later writes, the next command's first write waited seconds).
DEFAULT_WORKERS = 12
OTHER_AT_ONCE = 8
DEFAULT_RESYNC_S = 5.0
DEFAULT_EXPIRY_WARNING_S = 3600.0
# Looking again this long after another worker's claim should have ended, not on the dot.
_AFTER_LEASE_S = 0.05


def key_of(manifest: Manifest) -> Key | None:
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    owner, name = labels.get(LABEL_OWNER), labels.get(LABEL_ENV)
    return (owner, name) if owner and name else None


def _name_of(manifest: Manifest) -> str | None:
    return str((manifest.get("metadata") or {}).get("name", "")) or None


def waits_for_calm(event: str, *, listing: bool) -> tuple[bool, bool]:
    """For a watch feeding a cache: whether a (re)list is under way after ``event``, and
    whether the event waits for the queue to be calm first. Events of a list do not wait:
    commands wait for the caches a list fills."""
    listing = event == LISTING or (listing and event != SYNCED)
    return listing, not listing and event != SYNCED


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


class LifecycleEffects(Protocol):
    """What the executor does to the cluster, the read model and the bus (environments.py)."""

    async def write_claim(self, record: StartRecord) -> None:
        """The start's first write: its volume claim (a kept one is reattached), or a
        resume's Deployment scaled back up. Raises CommandRefusedError for what must be
        reported, anything else to be retried."""

    async def apply_objects(self, record: StartRecord, claim_written: bool) -> None:
        """Create or patch every object of the start (the claim too unless
        ``claim_written``), the Deployment last, each once the queue is calm; raises as
        ``write_claim``."""

    async def announce_stage(self, record: StartRecord) -> None: ...

    async def report_ready(self, record: StartRecord, node: str) -> None: ...

    async def report_start_failed(
        self, record: StartRecord, code: FailureCode, reason: str
    ) -> None: ...

    async def delete_workload(self, record: DeletionRecord) -> None: ...

    async def delete_claim(self, record: DeletionRecord) -> None: ...

    async def report_deleted(self, record: DeletionRecord, kept_claim: Manifest | None) -> None:
        """Report the deletion; ``kept_claim`` is the claim that stays, if one does."""

    async def report_deletion_failed(
        self, record: DeletionRecord, code: FailureCode, reason: str
    ) -> None: ...

    async def scale_to_zero(self, record: StopRecord) -> None: ...

    async def report_stopped(self, record: StopRecord) -> None: ...

    async def report_stop_failed(
        self, record: StopRecord, code: FailureCode, reason: str
    ) -> None: ...

    def expiry_of(self, owner: str, name: str) -> float | None:
        """When the environment, if it runs, is to be stopped (epoch seconds), else None."""

    async def expiry_warned_at(self, owner: str, name: str, expires_at: float) -> float | None:
        """When the owner was told of this expiry (epoch seconds), or None: not yet."""

    async def warn_expiry(self, owner: str, name: str, expires_at: float, stops_at: float) -> None:
        """Tell the owner, once per expiry, that it is coming (the stop at ``stops_at``)."""

    async def stop_expired(self, owner: str, name: str, expires_at: float) -> bool:
        """Record the stop of an expired environment; False when nothing was recorded (it is
        starting, being stopped or deleted: looked at again once that is reported)."""


@dataclass
class LifecycleReconciler:
    book: LifecycleBook
    timeouts: StageTimeouts
    effects: LifecycleEffects
    workers: int = DEFAULT_WORKERS
    resync_s: float = DEFAULT_RESYNC_S
    expiry_warning_s: float = DEFAULT_EXPIRY_WARNING_S
    queue: WorkQueue[Key] = field(default_factory=lambda: WorkQueue(OTHER_AT_ONCE))
    pods: _Cache[Key] = field(default_factory=lambda: _Cache(key_of))
    claims: _Cache[Key] = field(default_factory=lambda: _Cache(key_of))
    storage_classes: _Cache[str] = field(default_factory=lambda: _Cache(_name_of))
    # What this worker has written of a start's objects, by key: the request, and whether
    # everything (else only the claim, a command's first write). A hint, not a record: lost
    # with the process, after which the objects are written again (each write is
    # idempotent), and never taken for another request of the same name. Keeping it in
    # Redis cost a round trip per create and bought nothing but the repeat of writes that
    # change nothing.
    _written: dict[Key, tuple[str, bool]] = field(default_factory=dict)
    # Commands' reconciles going on after their first write (reconcile_command): held here
    # so that they are not collected while they run.
    _going_on: set[asyncio.Task[None]] = field(default_factory=set)

    # -- feeding the queue ----------------------------------------------------------------

    def on_pod_event(self, event: str, pod: Manifest) -> None:
        for key in self.pods.observe(event, pod):
            self.queue.add(key)

    def on_claim_event(self, event: str, claim: Manifest) -> None:
        for key in self.claims.observe(event, claim):
            self.queue.add(key)

    def on_deployment_event(self, deployment: Manifest) -> None:
        """A Deployment's expiry is known from its watch (a create's, an extension's, a
        stop's scale): its key is queued for the expiry's timer. Deployments without an
        expiry queue nothing, so a create costs no extra reconcile."""
        key = key_of(deployment)
        if key is not None and self.effects.expiry_of(*key) is not None:
            self.queue.add(key)

    def on_storage_class_event(self, event: str, storage_class: Manifest) -> None:
        # No key to queue: a class made for a Pending claim binds it, and the claim's
        # event queues its environment.
        self.storage_classes.observe(event, storage_class)

    def command_touched(self, owner: str, name: str) -> None:
        """A command changed what this environment should be: reconcile it first."""
        self.queue.add((owner, name), urgent=True)

    async def reconcile_command(
        self, record: StartRecord, on_first_write: Callable[[], None]
    ) -> None:
        """A create's own reconcile of the start it just recorded, with that record (no
        worker to wait for, no read back), in the command's turn as far as its first write:
        that is when the command's slot is given up (workqueue.py) and this returns. The
        rest of the reconcile (the later writes, each once the queue is calm) goes on
        without the command, which is acknowledged meanwhile: the record, not the command,
        is what is owed, and a command held through all its writes was redelivered by every
        restart of a busy worker until its deliveries ran out. When a worker has the key
        already, or the caches are not filled yet, the key is queued first instead."""
        key = (record.owner, record.name)
        if not self._synced() or not self.queue.take(key, on_first_write):
            self.command_touched(*key)
            return
        await self._reconcile_to_first_write(key, record)

    async def _reconcile_to_first_write(self, key: Key, record: Intent | None = None) -> None:
        """Reconcile a command's key, taken from the queue, waiting only until its first
        write is next (or the reconcile ends): the rest goes on in a task of its own, which
        gives the key back. So neither a command nor a worker waits through the later
        writes, each of which waits for the queue to be calm: a worker held there could not
        take the next command's key, and the queue would not turn calm until it did."""
        first_write_next = asyncio.get_running_loop().create_future()

        def reached(_: object = None) -> None:
            if not first_write_next.done():
                first_write_next.set_result(None)

        self.queue.on_first_write(key, reached)
        reconcile = asyncio.create_task(self._reconcile_held(key, record))
        self._going_on.add(reconcile)
        reconcile.add_done_callback(self._going_on.discard)
        reconcile.add_done_callback(reached)
        await first_write_next

    # -- working ----------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(
            self.book.keep_alive(), self._resync(), *(self._work() for _ in range(self.workers))
        )

    async def _resync(self) -> None:
        """Queue now and then every open record this worker is not following already (no
        timer, not queued): one another replica recorded and whose timers died with it, one
        recorded while this worker was down, or one whose command's worker died after
        recording it."""
        while True:
            try:
                for key in await self.book.open_keys():
                    if not self.queue.tracks(key):
                        self.queue.add(key)
            except Exception as error:
                _log.warning("could not read the open records to resync", error=repr(error))
            await asyncio.sleep(self.resync_s)

    def _synced(self) -> bool:
        return all(
            cache.synced.is_set() for cache in (self.pods, self.claims, self.storage_classes)
        )

    async def _work(self) -> None:
        await self.pods.synced.wait()
        await self.claims.synced.wait()
        await self.storage_classes.synced.wait()
        while True:
            key = await self.queue.get()
            if self.queue.is_pressing(key):
                await self._reconcile_to_first_write(key)
            else:
                await self._reconcile_held(key)

    async def _reconcile_held(self, key: Key, record: Intent | None = None) -> None:
        """Reconcile a key taken from the queue, and give it back."""
        try:
            await self.reconcile(key, record)
        except Exception as error:
            delay = self.queue.failed(key)
            _log.warning(
                "reconcile failed; retrying", key="/".join(key), after_s=delay, error=repr(error)
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

    async def reconcile(self, key: Key, record: Intent | None = None) -> None:
        """Reconcile ``key`` from its record as the book has it, or as ``record`` (the one
        its command just wrote)."""
        if record is None:
            record = await self.book.intent(*key)
        if record is None or record.request_id != self._written.get(key, (None,))[0]:
            self._written.pop(key, None)
        if record is None:
            self.queue.forget_timer(key)
            await self._reconcile_expiry(key)
        elif isinstance(record, DeletionRecord):
            await self._reconcile_deletion(key, record)
        elif isinstance(record, StopRecord):
            await self._reconcile_stop(key, record)
        else:
            await self._reconcile_start(key, record)

    async def _reconcile_start(self, key: Key, record: StartRecord) -> None:
        now = time.time()
        desired = _desired(
            record, objects_written=self._written.get(key) == (record.request_id, True)
        )
        for action in plan(desired, self.observed(key), now, self.timeouts):
            match action:
                case ApplyObjects():
                    if await self._apply_objects(key, record):
                        await self._reconcile_start(key, record)  # its pods may be up already
                    return
                case RecordStage():
                    since = now if action.stage.value != record.stage else record.stage_since
                    recorded = await self.book.record_stage(
                        record, action.stage.value, action.detail, since
                    )
                    if recorded is None:
                        return  # settled meanwhile (or another replica is reporting it)
                    record = recorded
                    await self.effects.announce_stage(record)
                case MarkReady():
                    await self._report(key, record, self.effects.report_ready(record, action.node))
                case FailStart():
                    await self._fail_start(key, record, action.code, action.reason)
                case RequeueAfter():
                    self.queue.add_after(key, action.seconds)

    async def _apply_objects(self, key: Key, record: StartRecord) -> bool:
        """Write the objects; whether they are all written (else the start is failed here)."""
        try:
            if self.queue.is_pressing(key):
                # A command's: its first write in its own turn, the rest as the queue is
                # calm (``apply_objects`` waits for it before each write), so the next
                # command's first write does not wait behind them (workqueue.py).
                self.queue.first_write_next(key)
                await self.effects.write_claim(record)
                self._written[key] = (record.request_id, False)
            claim_written = self._written.get(key) == (record.request_id, False)
            await self.effects.apply_objects(record, claim_written)
            self._written[key] = (record.request_id, True)
        except Exception as error:
            if (refusal := refusal_of(error)) is not None:
                await self._fail_start(key, record, refusal.code, refusal.reason)
                return False
            # Kept as the start's detail, for the timeout's reason should the writes keep
            # failing; then retried after the queue's back-off.
            note = f"could not write its objects to the cluster yet ({error})"[:500]
            with contextlib.suppress(Exception):  # Redis may be what failed
                await self.book.record_stage(record, record.stage, note, record.stage_since)
            raise
        return True

    async def _fail_start(
        self, key: Key, record: StartRecord, code: FailureCode, reason: str
    ) -> None:
        await self._report(key, record, self.effects.report_start_failed(record, code, reason))

    async def _report(self, key: Key, record: Intent, report: Coroutine[Any, Any, None]) -> None:
        """Report once across replicas: claim, report, settle. When another worker has the
        claim, look again once it would have lost it by dying (its key's TTL); a report that
        fails (the API or Redis away) gives the claim up, so its retry need not wait."""
        book = self.book
        if isinstance(record, DeletionRecord):
            claim, held_for_s = book.claim_deletion, book.deletion_held_for_s
            release, settled = book.release_deletion, book.deletion_settled
        elif isinstance(record, StopRecord):
            claim, held_for_s = book.claim_stop, book.stop_held_for_s
            release, settled = book.release_stop, book.stop_settled
        else:
            claim, held_for_s, release, settled = (
                book.claim,
                book.held_for_s,
                book.release,
                book.settled,
            )
        if not await claim(*key):
            report.close()
            # Once its holder would have lost it by dying: no sooner (it may be reporting
            # still), no later (after a SIGKILL the next worker took one TTL, not two).
            self.queue.add_after(key, await held_for_s(*key) + _AFTER_LEASE_S)
            return
        try:
            await report
        except BaseException as error:
            _log.warning("could not report the outcome yet", key="/".join(key), error=repr(error))
            with contextlib.suppress(Exception):
                await release(*key)
            raise
        await settled(*key)
        self._written.pop(key, None)
        if self.effects.expiry_of(*key) is not None:
            self.queue.add(key)  # its expiry's timer: no other event may come

    async def _reconcile_deletion(self, key: Key, record: DeletionRecord) -> None:
        observed = self.observed(key)
        for action in plan(_deletion(record), observed, time.time(), self.timeouts):
            match action:
                case DeleteWorkload():
                    await self.effects.delete_workload(record)
                    updated = await self.book.record_workload_deleted(record)
                    if updated is not None:
                        await self._reconcile_deletion(key, updated)
                    return
                case DeleteClaim():
                    await self.effects.delete_claim(record)
                case ReportDeleted():
                    kept = self.claims.of(key)[0] if action.volume_kept else None
                    await self._report(key, record, self.effects.report_deleted(record, kept))
                case FailDeletion():
                    failed = self.effects.report_deletion_failed(record, action.code, action.reason)
                    await self._report(key, record, failed)
                case RequeueAfter():
                    self.queue.add_after(key, action.seconds)

    async def _reconcile_stop(self, key: Key, record: StopRecord) -> None:
        stopping = Stopping(record.request_id, record.requested_at, scaled=record.scaled)
        for action in plan(stopping, self.observed(key), time.time(), self.timeouts):
            match action:
                case ScaleToZero():
                    await self.effects.scale_to_zero(record)
                    updated = await self.book.record_scaled(record)
                    if updated is not None:
                        await self._reconcile_stop(key, updated)
                    return
                case ReportStopped():
                    await self._report(key, record, self.effects.report_stopped(record))
                case FailStop():
                    failed = self.effects.report_stop_failed(record, action.code, action.reason)
                    await self._report(key, record, failed)
                case RequeueAfter():
                    self.queue.add_after(key, action.seconds)

    async def _reconcile_expiry(self, key: Key) -> None:
        expires_at = self.effects.expiry_of(*key)
        if expires_at is None:
            return
        now = time.time()
        # Nobody is told before the warning's time, so there is nothing to read until then.
        warned = now >= expires_at - self.expiry_warning_s
        warned_at = await self.effects.expiry_warned_at(*key, expires_at) if warned else None
        for action in plan_expiry(expires_at, warned_at, self.expiry_warning_s, now):
            match action:
                case WarnExpiry(stops_at=stops_at):
                    await self.effects.warn_expiry(*key, expires_at, stops_at)
                case StopExpired():
                    if await self.effects.stop_expired(*key, expires_at):
                        await self.reconcile(key)
                case RequeueAfter():
                    self.queue.add_after(key, action.seconds)


def _desired(record: StartRecord, *, objects_written: bool) -> Desired:
    return Desired(
        request_id=record.request_id,
        stage=_stage(record.stage),
        stage_since=record.stage_since,
        detail=record.detail,
        started_at=record.started_at,
        objects_pending=(record.spec is not None or record.resume) and not objects_written,
    )


def _deletion(record: DeletionRecord) -> Deletion:
    return Deletion(
        request_id=record.request_id,
        requested_at=record.requested_at,
        purge_volume=record.purge_volume,
        volume_only=record.volume_only,
        workload_deleted=record.workload_deleted,
    )


def _stage(value: str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        return Stage.SCHEDULING
