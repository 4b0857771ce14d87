"""Environment commands and the effects of their reconcile.

A command is checked here (who may act, the image, whether it can ever fit, the quota, the
name), recorded as what the reconciler owes (akros_readmodel.lifecycle) and its key queued
first; everything it asks of the cluster happens in the reconciler (reconciler.py), through
the effects below: write the objects (or scale a stopped environment back up), report the
stages and the outcome, scale the workload to zero and report it stopped, delete the
workload and the claim, report the deletion."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

from pydantic import ValidationError

from akros_bus import Bus, get_logger
from akros_k8s_worker.decisions import cluster_holding, deployment_requests, is_stopped, never_fits
from akros_k8s_worker.index import EnvironmentIndex
from akros_k8s_worker.objects import (
    ANNOTATION_EXPIRES_AT,
    GPU_PRODUCT_LABEL,
    EnvironmentObjects,
    EnvironmentPlatform,
    Manifest,
    environment_objects,
    environment_url,
)
from akros_k8s_worker.outcomes import (
    CommandRefusedError,
    apply_or_refuse,
    unreadable_command,
)
from akros_k8s_worker.reconcile import Stage, StageTimeouts
from akros_k8s_worker.reconciler import LifecycleReconciler
from akros_k8s_worker.volumes import volume_nodes
from akros_kube import AlreadyExistsError, Cluster, ConflictError, NotFoundError
from akros_msgs import (
    SYSTEM_ACTOR,
    CommandFailed,
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    EnvironmentCommand,
    EnvironmentDeleted,
    EnvironmentExpiring,
    EnvironmentExtended,
    EnvironmentReady,
    EnvironmentResized,
    EnvironmentStarting,
    EnvironmentStopped,
    ExtendEnvironment,
    FailureCode,
    Message,
    ResizeEnvironment,
    Resources,
    StartEnvironment,
    StopEnvironment,
    VolumeDeleted,
)
from akros_msgs.streams import ENVIRONMENT_COMMANDS
from akros_policy import Catalog, QuotaPolicy, check_quota, may_act_on
from akros_policy.naming import (
    ANNOTATION_REQUEST_ID,
    LABEL_ENV,
    LABEL_PROFILE,
    environment_object_name,
    foreign_object_reason,
)
from akros_policy.placement import claim_volume_name
from akros_readmodel import (
    DeletionRecord,
    EnvironmentStatus,
    EnvironmentView,
    Expected,
    LifecycleBook,
    ReadModel,
    RequestState,
    StartRecord,
    StopExpected,
    StopRecord,
    VolumeView,
    pending_environment,
    resuming_environment,
    utc_now,
)

_log = get_logger("akros.environments")


def _definition(deployment: Manifest) -> dict[str, object]:
    """The view's fields of what a Deployment reserves: resources, dedicated cores (a CPU
    limit, container_resources), GPU model (the node selector)."""
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    container: Manifest = next(iter(pod.get("containers") or []), {})
    limits = (container.get("resources") or {}).get("limits") or {}
    return {
        "resources": deployment_requests(deployment),
        "dedicated_cores": "cpu" in limits,
        "gpu_model": (pod.get("nodeSelector") or {}).get(GPU_PRODUCT_LABEL),
    }


def _start_command_type(record: StartRecord) -> str:
    if record.resume:
        return "start_environment"
    return "resize_environment" if record.restart else "create_environment"


def _expiry(deployment: Manifest) -> datetime | None:
    """The expiry on an environment's Deployment (ANNOTATION_EXPIRES_AT), if it has one."""
    raw = ((deployment.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_EXPIRES_AT)
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


_MAX_REASON = 2000  # CommandFailed.reason's limit
_WORKLOAD_KINDS = ("NetworkPolicy", "Ingress", "Service", "Deployment")


@dataclass
class EnvironmentService:
    cluster: Cluster
    bus: Bus
    read_model: ReadModel
    book: LifecycleBook
    catalog: Catalog
    quotas: QuotaPolicy
    platform: EnvironmentPlatform
    timeouts: StageTimeouts
    index: EnvironmentIndex
    node_cache_s: float = 5.0
    resync_s: float = 5.0
    expiry_warning_s: float = 3600.0
    extend_by_s: float = 86_400.0
    """The expiry an environment started again after its own is given (from then)."""
    reconciler: LifecycleReconciler = field(init=False)
    _nodes: tuple[float, list[Manifest]] | None = None
    # The objects a create's checks built, with its request id, for its reconcile's writes
    # (built once, not three times, on a busy worker); rebuilt from the record when absent
    # or another request's. One entry per environment at most.
    _built: dict[tuple[str, str], tuple[str, EnvironmentObjects]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reconciler = LifecycleReconciler(
            book=self.book,
            timeouts=self.timeouts,
            effects=self,
            resync_s=self.resync_s,
            expiry_warning_s=self.expiry_warning_s,
        )

    # -- commands ---------------------------------------------------------------------------

    async def handle(self, command: EnvironmentCommand) -> None:
        """Apply one command; refusals become CommandFailed, transient errors propagate so the
        bus redelivers the command."""
        await apply_or_refuse(
            self._apply_command(command), lambda code, reason: self._failed(command, code, reason)
        )

    async def on_dead_letter(self, body: bytes, reason: str, _malformed: bool) -> None:
        """A dead-lettered command's request still ends, as failed, so nobody waits for an
        outcome that will never come: one whose deliveries ran out, and one this worker cannot
        read whose envelope names the request (a type it does not know, from a newer gateway:
        the gateway validates every command it publishes against its own contract)."""
        try:
            command = ENVIRONMENT_COMMANDS.parse(body)
        except ValidationError:
            if unreadable := unreadable_command(body):
                await self._publish_failure(
                    unreadable.request_id,
                    unreadable.actor,
                    unreadable.command_type,
                    FailureCode.INVALID,
                    f"The platform could not read it ({reason})."[:_MAX_REASON],
                    owner=None,
                    name=unreadable.name,
                )
            return
        if isinstance(command, CreateEnvironment):
            # Its start must not be reported again when its deadline passes.
            await self.book.settled(command.owner, command.name)
        await self._failed(
            command,
            FailureCode.INTERNAL,
            f"The platform could not apply it ({reason})."[:_MAX_REASON],
        )

    async def _apply_command(self, command: EnvironmentCommand) -> None:
        match command:
            case CreateEnvironment():
                await self.create(command)
            case DeleteEnvironment():
                await self.delete(command)
            case DeleteVolume():
                await self.delete_volume(command)
            case StopEnvironment():
                await self.stop(command)
            case StartEnvironment():
                await self.start(command)
            case ExtendEnvironment():
                await self.extend(command)
            case ResizeEnvironment():
                await self.resize(command)
            case _:
                assert_never(command)

    async def create(self, command: CreateEnvironment) -> None:
        """Check, then record the start for the reconciler and queue it first.

        The quota check against the cluster and counting the new Deployment in the index
        happen with no await between them, so no other command of this worker can check in
        between: two concurrent creates cannot together exceed the quota. (A Redis lock
        around them would add nothing: another replica's index cannot see this count, only
        the Deployment once it exists. Across replicas, the gateway's accept, serialised per
        owner against the read model's pending views, is what keeps concurrent requests
        within the quota.)"""
        picked_up = time.time()
        async with self.reconciler.queue.pressing() as first_write_next:
            await self._create(command, picked_up, first_write_next)

    async def _create(
        self, command: CreateEnvironment, picked_up: float, first_write_next: Callable[[], None]
    ) -> None:
        objects = await self._admit(command)
        await self.index.synced.wait()
        self._check_room(command)
        replaced = self.index.remember(objects.deployment)
        try:
            # Recorded before anything is applied, with the pending view, in one step: from
            # here the reconciler owes the start an outcome, whatever crashes (a redelivered
            # command records it again; the resync finds one whose queue died).
            record = StartRecord(
                owner=command.owner,
                name=command.name,
                request_id=command.request_id,
                actor=command.actor,
                stage=Stage.SCHEDULING.value,
                stage_since=picked_up,
                started_at=picked_up,
                spec=command,
            )
            expected = await self.book.expect(
                record,
                # Created when the gateway accepted it, whichever delivery writes it.
                pending_environment(command, created_at=command.occurred_at),
            )
        except BaseException:
            # Not created after all (a redelivery or a retry counts it again); a
            # redelivered create's existing Deployment keeps counting.
            self.index.withdraw(objects.deployment, replaced)
            raise
        if expected is Expected.BEING_DELETED:
            self.index.withdraw(objects.deployment, replaced)
            raise CommandRefusedError(
                FailureCode.CONFLICT,
                f"Your environment '{command.name}' is still being deleted; try again once "
                "it is gone.",
            )
        if expected is Expected.RECORDED:
            # (ALREADY_READY: a redelivered command for an environment that is up.)
            self._built[(command.owner, command.name)] = (command.request_id, objects)
            await self.reconciler.reconcile_command(record, first_write_next)

    async def _admit(self, command: CreateEnvironment) -> EnvironmentObjects:
        """The checks that need neither the index nor Redis, and the objects to apply."""
        self._check_actor(command, command.owner)
        image = self.catalog.images.get(command.image)
        if image is None:
            choices = ", ".join(sorted(self.catalog.images))
            raise CommandRefusedError(
                FailureCode.INVALID,
                f"There is no image '{command.image}'; choose one of {choices}.",
            )
        nodes, volume = await asyncio.gather(self._node_list(), self._kept_volume(command))
        pinned_to = volume_nodes(volume, nodes)
        if reason := never_fits(command.resources, command.gpu_model, nodes, pinned_to):
            raise CommandRefusedError(FailureCode.UNSCHEDULABLE, reason[0].upper() + reason[1:])
        return environment_objects(command, image, self.platform)

    def _check_room(self, command: CreateEnvironment) -> None:
        """The name is free and the quota has room, against the cluster (see ``create``)."""
        deployments = self.index.owned_by(command.owner)
        self._check_not_taken(command, deployments)
        decision = check_quota(
            cluster_holding(deployments, excluding=command.name),
            command.resources,
            self.quotas.for_user(command.owner),
        )
        if not decision.allowed:
            raise CommandRefusedError(FailureCode.QUOTA_EXCEEDED, decision.reason)

    async def _kept_volume(self, command: CreateEnvironment) -> Manifest | None:
        """The volume a kept claim of this environment is bound to, if there is one.

        Asked of the cluster only when the read model records a kept volume of that name: a
        Redis read, where two API reads on every create put 100-create bursts' time to the
        first write up by tens of ms on kubesim (bench/env_pipeline.py).
        """
        if await self.read_model.volume(command.owner, command.name) is None:
            return None
        return await self._claimed_volume(command.owner, command.name)

    async def _node_list(self) -> list[Manifest]:
        """The cluster's nodes, reused for ``node_cache_s``: nodes come and go rarely, and a
        stale list only affects the fail-fast check, never what the scheduler decides."""
        now = time.monotonic()
        if self._nodes is None or now - self._nodes[0] > self.node_cache_s:
            nodes, _ = await self.cluster.list("Node")
            self._nodes = (now, nodes)
        return self._nodes[1]

    def _check_actor(self, command: Message, owner: str) -> None:
        if not may_act_on(command.actor, owner):
            raise CommandRefusedError(
                FailureCode.FORBIDDEN, f"{command.actor.user_id} may not act on {owner}'s things."
            )

    def _check_not_taken(self, command: CreateEnvironment, deployments: list[Manifest]) -> None:
        for deployment in deployments:
            metadata = deployment.get("metadata") or {}
            if (metadata.get("labels") or {}).get(LABEL_ENV) != command.name:
                continue
            if (metadata.get("annotations") or {}).get(ANNOTATION_REQUEST_ID) != command.request_id:
                raise CommandRefusedError(
                    FailureCode.CONFLICT,
                    f"You already have an environment named '{command.name}'.",
                )

    # -- the reconciler's effects (reconciler.LifecycleEffects) -----------------------------

    async def write_claim(self, record: StartRecord) -> None:
        if record.resume:
            await self._scale_up(record)
            return
        objects = self._objects(record, keep=True)
        if objects is not None:
            self._log_first_write(record)
            await self._write_claim(record, objects)

    async def apply_objects(self, record: StartRecord, claim_written: bool) -> None:
        """Create each object or bring an existing one to the desired state: the claim
        first, the Deployment last, so its pod never runs before the Service, Ingress and
        NetworkPolicy exist (a running pod means a working URL and an isolated
        environment). Every step is idempotent: a retry after a failure, or another
        replica doing the same, converges. A resume's objects exist: its Deployment is
        scaled back up."""
        if record.resume:
            if not claim_written:
                await self._scale_up(record)
            return
        objects = self._objects(record, keep=False)
        if objects is None:
            return
        if not claim_written:
            self._log_first_write(record)
            await self._write_claim(record, objects)
        queue = self.reconciler.queue
        for manifest in (
            objects.service,
            objects.ingress,
            objects.network_policy,
            objects.deployment,
        ):
            # Each write waits for the commands on their way to their first, and for its
            # turn (workqueue.py): four writes' responses would each take a turn of the loop
            # in front of them.
            async with queue.background():
                await self._create_or_patch(manifest, record.owner, record.name)
        # A kept volume of this name is in use again (the claim was reattached).
        await self.read_model.remove_volume(record.owner, record.name)
        _log.info("environment applied", owner=record.owner, name=record.name)

    def _objects(self, record: StartRecord, *, keep: bool) -> EnvironmentObjects | None:
        """The start's objects: those its command built (kept for a later write when
        ``keep``), else built from its spec."""
        key = (record.owner, record.name)
        built = self._built.get(key) if keep else self._built.pop(key, None)
        if built is not None and built[0] == record.request_id:
            return built[1]
        command = record.spec
        if command is None:
            return None
        image = self.catalog.images.get(command.image)
        if image is None:
            raise CommandRefusedError(
                FailureCode.INVALID, f"The image '{command.image}' is no longer in the catalog."
            )
        return environment_objects(command, image, self.platform)

    @staticmethod
    def _log_first_write(record: StartRecord) -> None:
        """bench/env_pipeline.py measures the platform's overhead by this line."""
        if record.spec is None:
            return
        now = time.time()
        _log.info(
            "applying environment",
            owner=record.owner,
            name=record.name,
            since_accepted_ms=round((now - record.spec.occurred_at.timestamp()) * 1000, 2),
            queued_ms=round((now - record.started_at) * 1000, 2),
        )

    async def _write_claim(self, record: StartRecord, objects: EnvironmentObjects) -> None:
        """Create the claim; an existing one is a kept volume being reattached, unless its
        labels say it is not this environment's (it is never adopted, whatever its name) or
        it is still being deleted (a purge whose claim a Terminating pod still holds):
        reusing it would leave the new environment without a volume once it goes."""
        try:
            await self.cluster.create(objects.volume_claim)
        except AlreadyExistsError:
            metadata = objects.volume_claim["metadata"]
            claim = await self._own(
                "PersistentVolumeClaim", metadata["name"], record.owner, record.name
            )
            if claim is not None and (claim.get("metadata") or {}).get("deletionTimestamp"):
                raise CommandRefusedError(
                    FailureCode.CONFLICT,
                    "The volume of that name is still being deleted; try again in a minute.",
                ) from None

    async def _create_or_patch(self, manifest: Manifest, owner: str, env: str) -> None:
        """The Deployment is replaced whole when it exists: a merge patch would keep what the
        desired object leaves out (a GPU request or a CPU limit that a resize removes). An
        existing object is written only if its labels say it is this environment's, and only
        as it was read (its resourceVersion): one swapped in meanwhile is a conflict, retried
        and checked again, never overwritten."""
        try:
            await self.cluster.create(manifest)
            return
        except AlreadyExistsError:
            pass
        metadata = manifest["metadata"]
        existing = await self._own(manifest["kind"], metadata["name"], owner, env)
        if existing is None:
            raise ConflictError(f"{manifest['kind']} {metadata['name']} went while written")
        version = (existing.get("metadata") or {}).get("resourceVersion")
        guarded = {**manifest, "metadata": {**metadata, "resourceVersion": version}}
        if manifest["kind"] == "Deployment":
            await self.cluster.replace(guarded)
        else:
            await self.cluster.patch(guarded)

    async def _own(self, kind: str, name: str, owner: str, env: str) -> Manifest | None:
        """The object ``kind`` ``name`` if it is environment ``env`` of ``owner``'s, None if
        there is none; refused (CONFLICT, nothing written) if its labels say it is another's
        (akros_policy.naming.foreign_object_reason)."""
        existing = await self.cluster.find(kind, name, self.platform.namespace)
        if existing is not None:
            existing = {"kind": kind, **existing}
        if reason := foreign_object_reason(existing, owner, env):
            _log.warning(
                "foreign object left alone",
                kind=kind,
                name=name,
                owner=owner,
                env=env,
                labels=(existing or {}).get("metadata", {}).get("labels"),
            )
            raise CommandRefusedError(FailureCode.CONFLICT, reason)
        return existing

    async def _find_own(self, kind: str, name: str, owner: str, env: str) -> Manifest | None:
        """``_own``, with another's object taken as none (it is logged and left alone)."""
        try:
            return await self._own(kind, name, owner, env)
        except CommandRefusedError:
            return None

    async def _delete_own(self, kind: str, name: str, owner: str, env: str) -> None:
        """Delete ``kind`` ``name`` if it is this environment's (the very object whose labels
        were read: a uid precondition); another's is left alone and logged, so that a failed
        start or a deletion never removes what is not its own."""
        existing = await self._find_own(kind, name, owner, env)
        if existing is not None:
            uid = (existing.get("metadata") or {}).get("uid")
            await self.cluster.delete(kind, name, self.platform.namespace, uid=uid)

    async def delete_workload(self, record: DeletionRecord) -> None:
        await self._delete_workload(record.owner, record.name)

    async def delete_claim(self, record: DeletionRecord) -> None:
        name = environment_object_name(record.owner, record.name)
        await self._delete_own("PersistentVolumeClaim", name, record.owner, record.name)

    async def report_deleted(self, record: DeletionRecord, kept_claim: Manifest | None) -> None:
        owner, name = record.owner, record.name
        if record.volume_only:
            await self.read_model.remove_volume(owner, name)
            await self._applied(
                record.request_id,
                VolumeDeleted(
                    request_id=record.request_id, actor=record.actor, owner=owner, name=name
                ),
            )
            return
        if kept_claim is not None:
            await self._record_kept_volume(owner, name, kept_claim)
        else:
            await self.read_model.remove_volume(owner, name)
        await self.read_model.remove_environment(owner, name)
        await self._applied(
            record.request_id,
            EnvironmentDeleted(
                request_id=record.request_id,
                actor=record.actor,
                owner=owner,
                name=name,
                volume_kept=kept_claim is not None,
            ),
        )

    async def report_deletion_failed(
        self, record: DeletionRecord, code: FailureCode, reason: str
    ) -> None:
        """What was deleted stays deleted (the workload; the claim goes once nothing holds
        it), so the views of it go too; the request says what is left."""
        await self.read_model.remove_volume(record.owner, record.name)
        if not record.volume_only:
            await self.read_model.remove_environment(record.owner, record.name)
        await self._publish_failure(
            record.request_id,
            record.actor,
            "delete_volume" if record.volume_only else "delete_environment",
            code,
            reason,
            owner=record.owner,
            name=record.name,
        )

    # -- deleting -----------------------------------------------------------------------------

    async def delete(self, command: DeleteEnvironment) -> None:
        """Record the deletion for the reconciler (dropping any start of the name: nobody
        waits for it now) and queue it first."""
        self._check_actor(command, command.owner)
        await self._expect_deletion(command, purge_volume=command.purge_volume)

    async def _expect_deletion(
        self, command: DeleteEnvironment | DeleteVolume, *, purge_volume: bool
    ) -> None:
        superseded = await self.book.expect_deletion(
            DeletionRecord(
                owner=command.owner,
                name=command.name,
                request_id=command.request_id,
                actor=command.actor,
                requested_at=time.time(),
                purge_volume=purge_volume,
                volume_only=isinstance(command, DeleteVolume),
            )
        )
        if superseded is None:
            raise CommandRefusedError(
                FailureCode.CONFLICT, f"'{command.name}' is being deleted already."
            )
        self.reconciler.command_touched(command.owner, command.name)
        for request_id in superseded:
            await self._end_superseded(request_id, command)

    async def _end_superseded(
        self, request_id: str, deletion: DeleteEnvironment | DeleteVolume
    ) -> None:
        """A start or stop that the deletion dropped before its outcome: its request ends
        here, as failed, so nobody waits for it."""
        request = await self.read_model.request(request_id)
        if request is None or request.state is not RequestState.PENDING:
            return
        await self._publish_failure(
            request_id,
            deletion.actor,
            request.command_type,
            FailureCode.CONFLICT,
            f"'{deletion.name}' was deleted before this was done.",
            owner=deletion.owner,
            name=deletion.name,
        )

    async def _delete_workload(self, owner: str, env: str) -> None:
        """Everything of an environment but its volume."""
        name = environment_object_name(owner, env)
        for kind in _WORKLOAD_KINDS:
            await self._delete_own(kind, name, owner, env)
        self.index.forget(name, owner)

    async def _record_kept_volume(self, owner: str, name: str, claim: Manifest) -> None:
        requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
        await self.read_model.put_volume(
            VolumeView(owner=owner, name=name, size=str(requests.get("storage", "")), in_use=False)
        )

    async def delete_volume(self, command: DeleteVolume) -> None:
        self._check_actor(command, command.owner)
        name = environment_object_name(command.owner, command.name)
        owner, env = command.owner, command.name
        if await self._find_own("Deployment", name, owner, env) is not None:
            raise CommandRefusedError(
                FailureCode.CONFLICT,
                f"The volume '{command.name}' is in use by your environment of that name; "
                "delete the environment first.",
            )
        claim = await self._find_own("PersistentVolumeClaim", name, owner, env)
        if claim is None and await self.read_model.volume(command.owner, command.name) is None:
            raise CommandRefusedError(
                FailureCode.NOT_FOUND, f"There is no volume '{command.name}'."
            )
        await self._expect_deletion(command, purge_volume=True)

    # -- stopping and starting again ------------------------------------------------------

    async def stop(self, command: StopEnvironment) -> None:
        """Record the stop for the reconciler and queue it first."""
        self._check_actor(command, command.owner)
        expected = await self.book.expect_stop(
            StopRecord(
                owner=command.owner,
                name=command.name,
                request_id=command.request_id,
                actor=command.actor,
                requested_at=time.time(),
                reason=command.reason,
            )
        )
        refusals = {
            StopExpected.BEING_DELETED: f"'{command.name}' is being deleted.",
            StopExpected.STARTING: f"'{command.name}' is still starting; stop it once it is ready.",
            StopExpected.ANOTHER_STOP: f"'{command.name}' is being stopped already.",
        }
        if expected in refusals:
            raise CommandRefusedError(FailureCode.CONFLICT, refusals[expected])
        # The front door marks its own stops; the platform's (an idle stop) come straight here.
        view = await self.read_model.environment(command.owner, command.name)
        if view is not None and view.status is EnvironmentStatus.READY:
            await self._mark_stopping(view, command.request_id)
        self.reconciler.command_touched(command.owner, command.name)

    async def start(self, command: StartEnvironment) -> None:
        """Check a stopped environment still fits (the quota, its volume's node), then record
        its start for the reconciler, which scales it back up (``_scale_up``) and reports it
        like a create. Counted in the index at once, as a create is (see ``create``)."""
        picked_up = time.time()
        self._check_actor(command, command.owner)
        async with self.reconciler.queue.pressing() as first_write_next:
            await self._start(command, picked_up, first_write_next)

    async def _start(
        self, command: StartEnvironment, picked_up: float, first_write_next: Callable[[], None]
    ) -> None:
        owner, env = command.owner, command.name
        view, deployment = await self._existing(owner, env)
        annotations = (deployment.get("metadata") or {}).get("annotations") or {}
        if not is_stopped(deployment) and annotations.get(ANNOTATION_REQUEST_ID) != (
            command.request_id
        ):
            raise CommandRefusedError(FailureCode.CONFLICT, f"'{env}' is running already.")
        await self._check_fits_again(owner, env, deployment_requests(deployment), view.gpu_model)
        running = {**deployment, "spec": {**(deployment.get("spec") or {}), "replicas": 1}}
        expiry = _expiry(deployment)
        new_expiry = None
        if expiry is not None and expiry.timestamp() <= picked_up:
            # Started again after its expiry: it would be stopped again at once.
            new_expiry = utc_now() + timedelta(seconds=self.extend_by_s)
        replaced = self.index.remember(running)
        record = StartRecord(
            owner=owner,
            name=env,
            request_id=command.request_id,
            actor=command.actor,
            stage=Stage.SCHEDULING.value,
            stage_since=picked_up,
            started_at=picked_up,
            resume=True,
            new_expiry=new_expiry,
        )
        pending = resuming_environment(view, record.request_id)
        if new_expiry is not None:
            pending = pending.model_copy(update={"expires_at": new_expiry})
        if await self._expect_restart(record, pending, running, replaced) is Expected.RECORDED:
            await self.reconciler.reconcile_command(record, first_write_next)

    async def _existing(self, owner: str, env: str) -> tuple[EnvironmentView, Manifest]:
        """An environment's view and its Deployment (as the index has it), or NOT_FOUND."""
        view = await self.read_model.environment(owner, env)
        await self.index.synced.wait()
        deployment = self.index.deployment(owner, environment_object_name(owner, env))
        if view is None or deployment is None:
            raise CommandRefusedError(FailureCode.NOT_FOUND, f"There is no environment '{env}'.")
        if reason := foreign_object_reason({"kind": "Deployment", **deployment}, owner, env):
            raise CommandRefusedError(FailureCode.CONFLICT, reason)
        return view, deployment

    async def resize(self, command: ResizeEnvironment) -> None:
        """A stopped environment gets the new resources on its Deployment (still at zero); a
        running one is restarted with them through the reconciler, reported like a start."""
        picked_up = time.time()
        self._check_actor(command, command.owner)
        async with self.reconciler.queue.pressing() as first_write_next:
            await self._resize(command, picked_up, first_write_next)

    async def _resize(
        self, command: ResizeEnvironment, picked_up: float, first_write_next: Callable[[], None]
    ) -> None:
        owner, env = command.owner, command.name
        view, deployment = await self._existing(owner, env)
        image = self.catalog.images.get(view.image)
        if image is None:
            raise CommandRefusedError(
                FailureCode.INVALID, f"The image '{view.image}' is no longer in the catalog."
            )
        gpu_model = view.gpu_model if command.gpus else None
        spec = CreateEnvironment(
            request_id=command.request_id,
            actor=command.actor,
            owner=owner,
            name=env,
            image=view.image,
            cpu=command.cpu,
            memory=command.memory,
            gpus=command.gpus,
            gpu_model=gpu_model,
            dedicated_cores=command.dedicated_cores,
            volume_size=view.volume_size,
            expires_at=view.expires_at,
            profile=self._profile_kept(deployment, command.resources),
            occurred_at=command.occurred_at,
        )
        objects = environment_objects(spec, image, self.platform)
        resized = {
            "resources": command.resources,
            "dedicated_cores": command.dedicated_cores,
            "gpu_model": gpu_model,
        }
        if is_stopped(deployment):
            objects.deployment["spec"]["replicas"] = 0
            await self.cluster.replace(objects.deployment)
            await self.read_model.put_environment(
                view.model_copy(update={**resized, "updated_at": utc_now()})
            )
            await self._applied(
                command.request_id,
                EnvironmentResized(
                    request_id=command.request_id,
                    actor=command.actor,
                    owner=owner,
                    name=env,
                    resources=command.resources,
                ),
            )
            return
        await self._check_fits_again(owner, env, command.resources, gpu_model)
        replaced = self.index.remember(objects.deployment)
        record = StartRecord(
            owner=owner,
            name=env,
            request_id=command.request_id,
            actor=command.actor,
            stage=Stage.SCHEDULING.value,
            stage_since=picked_up,
            started_at=picked_up,
            spec=spec,
            restart=True,
        )
        pending = resuming_environment(view, record.request_id).model_copy(update=resized)
        expected = await self._expect_restart(record, pending, objects.deployment, replaced)
        if expected is Expected.RECORDED:
            self._built[(owner, env)] = (command.request_id, objects)
            await self.reconciler.reconcile_command(record, first_write_next)

    def _profile_kept(self, deployment: Manifest, resources: Resources) -> str | None:
        """The Deployment's profile, unless the profile is exempt from under-use nudges and
        the new resources go beyond it: an exemption covers only what the admins sized it for,
        so such a resize takes the environment out of the profile (nudged as any other)."""
        labels = (deployment.get("metadata") or {}).get("labels") or {}
        key = labels.get(LABEL_PROFILE)
        profile = self.catalog.profiles.get(key) if key else None
        if profile is None:
            return None
        ceiling = Resources.of(profile.cpu, profile.memory, profile.gpus)
        if profile.underuse_exempt and not resources.fits_within(ceiling):
            return None
        return str(key)

    async def _check_fits_again(
        self, owner: str, env: str, resources: Resources, gpu_model: str | None
    ) -> None:
        """An existing environment started again (a resume, a resize) against the nodes (its
        volume's node, when local) and the owner's quota, as the cluster has them."""
        nodes = await self._node_list()
        pinned_to = volume_nodes(await self._claimed_volume(owner, env), nodes)
        if reason := never_fits(resources, gpu_model, nodes, pinned_to):
            raise CommandRefusedError(FailureCode.UNSCHEDULABLE, reason[0].upper() + reason[1:])
        decision = check_quota(
            cluster_holding(self.index.owned_by(owner), excluding=env),
            resources,
            self.quotas.for_user(owner),
        )
        if not decision.allowed:
            raise CommandRefusedError(FailureCode.QUOTA_EXCEEDED, decision.reason)

    async def _expect_restart(
        self,
        record: StartRecord,
        pending: EnvironmentView,
        counted: Manifest,
        replaced: Manifest | None,
    ) -> Expected:
        """Record the start of an existing environment; ``counted`` (in the index, replacing
        ``replaced``) is withdrawn when it is not recorded."""
        try:
            expected = await self.book.expect(record, pending)
        except BaseException:
            self.index.withdraw(counted, replaced)
            raise
        if expected in {Expected.BEING_DELETED, Expected.BEING_STOPPED}:
            self.index.withdraw(counted, replaced)
            doing = "deleted" if expected is Expected.BEING_DELETED else "stopped"
            raise CommandRefusedError(
                FailureCode.CONFLICT,
                f"'{record.name}' is still being {doing}; try again once it is.",
            )
        return expected

    async def _claimed_volume(self, owner: str, env: str) -> Manifest | None:
        """The volume the environment's claim is bound to, if it is bound."""
        name = environment_object_name(owner, env)
        claim = await self._find_own("PersistentVolumeClaim", name, owner, env)
        volume_name = None if claim is None else claim_volume_name(claim)
        return (
            None
            if volume_name is None
            else await self.cluster.find("PersistentVolume", volume_name)
        )

    async def _scale_up(self, record: StartRecord) -> None:
        """One replica again, its pods carrying this request's id: the readiness the plan
        waits for is that of this start's pod, never of one left from before the stop."""
        await self._own_deployment(record.owner, record.name)
        request = {ANNOTATION_REQUEST_ID: record.request_id}
        annotations = dict(request)
        if record.new_expiry is not None:
            annotations[ANNOTATION_EXPIRES_AT] = record.new_expiry.isoformat()
        await self.cluster.patch(
            self._deployment_patch(
                record.owner,
                record.name,
                annotations,
                {"replicas": 1, "template": {"metadata": {"annotations": request}}},
            )
        )

    async def _own_deployment(self, owner: str, env: str) -> Manifest:
        """The environment's Deployment, before it is patched: NOT_FOUND if there is none,
        refused if the one of its name is not its own (``_own``)."""
        deployment = await self._own("Deployment", environment_object_name(owner, env), owner, env)
        if deployment is None:
            raise CommandRefusedError(FailureCode.NOT_FOUND, f"There is no environment '{env}'.")
        return deployment

    def _deployment_patch(
        self, owner: str, env: str, annotations: dict[str, str], spec: Manifest | None = None
    ) -> Manifest:
        """A strategic-merge patch of the environment's Deployment: its own annotations (not
        its pods', which would roll them), and ``spec`` if given."""
        patch: Manifest = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": environment_object_name(owner, env),
                "namespace": self.platform.namespace,
                "annotations": annotations,
            },
        }
        if spec is not None:
            patch["spec"] = spec
        return patch

    # -- expiry -------------------------------------------------------------------------------

    def expiry_of(self, owner: str, name: str) -> float | None:
        deployment = self.index.deployment(owner, environment_object_name(owner, name))
        if deployment is None or is_stopped(deployment):
            return None
        expiry = _expiry(deployment)
        return None if expiry is None else expiry.timestamp()

    async def expiry_warned_at(self, owner: str, name: str, expires_at: float) -> float | None:
        return await self.read_model.expiry_warned_at(owner, name, expires_at)

    async def warn_expiry(self, owner: str, name: str, expires_at: float, stops_at: float) -> None:
        # The claim outlives the stop it announces by the warning's time.
        keep_s = round(stops_at - time.time() + self.expiry_warning_s)
        if not await self.read_model.claim_expiry_warning(owner, name, expires_at, keep_s=keep_s):
            return
        warning = EnvironmentExpiring(
            request_id=f"expiring:{int(expires_at)}:{uuid.uuid4().hex[:16]}",
            actor=SYSTEM_ACTOR,
            owner=owner,
            name=name,
            expires_at=datetime.fromtimestamp(expires_at, UTC),
            stops_at=datetime.fromtimestamp(stops_at, UTC),
            extend_by_s=max(1, round(self.extend_by_s)),
        )
        try:
            await self.bus.publish(warning)
            # The owner's notifications (GET /v1/notifications), beside the Slack DM.
            await self.read_model.add_notifications([warning])
        except BaseException:
            await self.read_model.release_expiry_warning(owner, name, expires_at)
            raise
        _log.info("environment expiring", owner=owner, name=name, expires_at=expires_at)

    async def stop_expired(self, owner: str, name: str, expires_at: float) -> bool:
        """A ready environment past its expiry is stopped as its owner's stop would be, its
        view saying so at once; the stop is the platform's (SYSTEM_ACTOR), with the reason
        for the owner."""
        view = await self.read_model.environment(owner, name)
        if view is None or view.status is not EnvironmentStatus.READY:
            return False
        when = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="minutes")
        record = StopRecord(
            owner=owner,
            name=name,
            request_id=f"expiry:{int(expires_at)}:{uuid.uuid4().hex[:16]}",
            actor=SYSTEM_ACTOR,
            requested_at=time.time(),
            reason=f"It reached its expiry ({when}) and was stopped; its volume is kept. "
            f"Start it again with `akros env start {name}` or from Slack.",
        )
        if await self.book.expect_stop(record) is not StopExpected.RECORDED:
            return False
        await self._mark_stopping(view, record.request_id)
        _log.info("environment expired; stopping it", owner=owner, name=name)
        return True

    async def extend(self, command: ExtendEnvironment) -> None:
        """Move the expiry on the Deployment (where the reconciler's timer reads it) and in
        the view."""
        self._check_actor(command, command.owner)
        annotations = {ANNOTATION_EXPIRES_AT: command.expires_at.isoformat()}
        await self._own_deployment(command.owner, command.name)
        try:
            await self.cluster.patch(
                self._deployment_patch(command.owner, command.name, annotations)
            )
        except NotFoundError:
            raise CommandRefusedError(
                FailureCode.NOT_FOUND, f"There is no environment '{command.name}'."
            ) from None
        view = await self.read_model.environment(command.owner, command.name)
        if view is not None:
            await self.read_model.put_environment(
                view.model_copy(update={"expires_at": command.expires_at, "updated_at": utc_now()})
            )
        await self._applied(
            command.request_id,
            EnvironmentExtended(
                request_id=command.request_id,
                actor=command.actor,
                owner=command.owner,
                name=command.name,
                expires_at=command.expires_at,
            ),
        )

    async def scale_to_zero(self, record: StopRecord) -> None:
        await self._scale_to_zero(record.owner, record.name)

    async def _scale_to_zero(self, owner: str, env: str) -> None:
        name = environment_object_name(owner, env)
        # Another's Deployment of the name is left alone: nothing of this one runs there.
        if await self._find_own("Deployment", name, owner, env) is None:
            return
        with contextlib.suppress(NotFoundError):  # nothing runs: there is nothing to stop
            await self.cluster.scale(self.platform.namespace, name, 0)

    async def report_stopped(self, record: StopRecord) -> None:
        view = await self.read_model.environment(record.owner, record.name)
        if view is not None:
            await self._mark_stopped(view, record.reason or None)
        await self._applied(
            record.request_id,
            EnvironmentStopped(
                request_id=record.request_id,
                actor=record.actor,
                owner=record.owner,
                name=record.name,
                reason=record.reason,
            ),
        )
        _log.info("environment stopped", owner=record.owner, name=record.name)

    async def report_stop_failed(self, record: StopRecord, code: FailureCode, reason: str) -> None:
        """Stopped as far as the platform goes (scaled to zero); the request says what is
        left: a pod that is still going."""
        view = await self.read_model.environment(record.owner, record.name)
        if view is not None:
            await self._mark_stopped(view, reason)
        await self._publish_failure(
            record.request_id,
            record.actor,
            "stop_environment",
            code,
            reason,
            owner=record.owner,
            name=record.name,
        )

    async def _mark_stopping(self, view: EnvironmentView, request_id: str) -> None:
        await self.read_model.put_environment(
            view.model_copy(
                update={
                    "status": EnvironmentStatus.STOPPING,
                    "request_id": request_id,
                    "updated_at": utc_now(),
                }
            )
        )

    async def _mark_stopped(self, view: EnvironmentView, reason: str | None) -> None:
        await self.read_model.put_environment(
            view.model_copy(
                update={
                    "status": EnvironmentStatus.STOPPED,
                    "node": None,
                    "stage": None,
                    "progress": None,
                    "reason": reason,
                    "updated_at": utc_now(),
                }
            )
        )

    # -- starts' outcomes (reconciler.LifecycleEffects) ------------------------------------

    async def announce_stage(self, record: StartRecord) -> None:
        await self.bus.publish(
            EnvironmentStarting(
                request_id=record.request_id,
                actor=record.actor,
                owner=record.owner,
                name=record.name,
                stage=record.stage,
                progress=record.detail[:_MAX_REASON],
            )
        )

    async def report_ready(self, record: StartRecord, node: str) -> None:
        view = await self.read_model.environment(record.owner, record.name)
        if view is None:
            return  # deleted meanwhile
        url = environment_url(record.owner, record.name, self.platform.domain)
        await self.read_model.put_environment(
            view.model_copy(
                update={
                    "status": EnvironmentStatus.READY,
                    "url": url,
                    "node": node,
                    "reason": None,
                    "stage": Stage.READY.value,
                    "progress": None,
                    "updated_at": utc_now(),
                }
            )
        )
        await self.read_model.settle_request(
            record.request_id, RequestState.APPLIED, stage=Stage.READY.value
        )
        await self.bus.publish(
            EnvironmentReady(
                request_id=record.request_id,
                actor=record.actor,
                owner=record.owner,
                name=record.name,
                url=url,
                node=node,
                resources=view.resources,
            )
        )
        _log.info("environment ready", owner=record.owner, name=record.name, node=node)

    async def report_start_failed(
        self, record: StartRecord, code: FailureCode, reason: str
    ) -> None:
        """The workload is removed (it would hold resources or pull forever); the volume and a
        failed view stay, so the person sees why and can delete or retry. A resume that
        fails is stopped again, keeping everything, and says why."""
        self._built.pop((record.owner, record.name), None)
        view = await self.read_model.environment(record.owner, record.name)
        if record.resume or record.restart:
            await self._scale_to_zero(record.owner, record.name)
            if view is not None:
                await self._mark_stopped(view, f"It could not start: {reason}")
        else:
            await self._delete_workload(record.owner, record.name)
            if view is not None:
                await self._mark_failed(view, reason)
        await self._publish_failure(
            record.request_id,
            record.actor,
            _start_command_type(record),
            code,
            reason,
            owner=record.owner,
            name=record.name,
        )

    async def _restore_view(
        self, command: StopEnvironment | StartEnvironment | ResizeEnvironment
    ) -> None:
        """A refused stop, start or resize leaves the environment as its Deployment still is
        (nothing was written): ready or stopped, with the resources it has. The front door
        had marked it stopping or pending, with the command's resources for a resize."""
        view = await self.read_model.environment(command.owner, command.name)
        if view is None or view.request_id != command.request_id:
            return
        deployment = self.index.deployment(
            command.owner, environment_object_name(command.owner, command.name)
        )
        if deployment is None:
            return
        changes: dict[str, object] = {
            "status": EnvironmentStatus.STOPPED
            if is_stopped(deployment)
            else EnvironmentStatus.READY,
            "updated_at": utc_now(),
        }
        if isinstance(command, ResizeEnvironment):
            changes.update(_definition(deployment))
        await self.read_model.put_environment(view.model_copy(update=changes))

    async def _mark_failed(self, view: EnvironmentView, reason: str) -> None:
        await self.read_model.put_environment(
            view.model_copy(
                update={
                    "status": EnvironmentStatus.FAILED,
                    "reason": reason,
                    "updated_at": utc_now(),
                }
            )
        )

    # -- outcomes ----------------------------------------------------------------------------

    async def _applied(self, request_id: str, event: Message) -> None:
        await self.read_model.settle_request(request_id, RequestState.APPLIED)
        await self.bus.publish(event)

    async def _failed(self, command: Message, code: FailureCode, reason: str) -> None:
        owner = getattr(command, "owner", None)
        name = getattr(command, "name", None)
        if isinstance(command, CreateEnvironment) and code is not FailureCode.CONFLICT:
            view = await self.read_model.environment(command.owner, command.name)
            if view is not None and view.request_id == command.request_id:
                await self._mark_failed(view, reason)
        if isinstance(command, StopEnvironment | StartEnvironment | ResizeEnvironment):
            await self._restore_view(command)
        await self._publish_failure(
            command.request_id,
            command.actor,
            str(getattr(command, "type", type(command).__name__)),
            code,
            reason,
            owner=owner,
            name=name,
        )
        _log.info("command refused", code=code.value, reason=reason)

    async def _publish_failure(
        self,
        request_id: str,
        actor: Any,
        command_type: str,
        code: FailureCode,
        reason: str,
        *,
        owner: str | None,
        name: str | None,
    ) -> None:
        await self.read_model.settle_request(
            request_id, RequestState.FAILED, code=code, reason=reason
        )
        await self.bus.publish(
            CommandFailed(
                request_id=request_id,
                actor=actor or SYSTEM_ACTOR,
                command_type=command_type,
                code=code,
                reason=reason,
                owner=owner,
                name=name,
            )
        )
