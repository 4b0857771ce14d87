"""Applying environment commands: create, delete, delete a kept volume, and settle starts."""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, assert_never

from pydantic import ValidationError

from akros_bus import Bus, get_logger
from akros_k8s_worker.decisions import cluster_holding, never_fits
from akros_k8s_worker.index import EnvironmentIndex
from akros_k8s_worker.lanes import Lanes
from akros_k8s_worker.objects import (
    EnvironmentObjects,
    EnvironmentPlatform,
    Manifest,
    environment_objects,
    environment_url,
)
from akros_k8s_worker.outcomes import (
    CommandRefusedError,
    apply_or_refuse,
    settle_request,
    unreadable_command,
)
from akros_k8s_worker.reconcile import Stage, StageTimeouts
from akros_k8s_worker.reconciler import StartReconciler
from akros_k8s_worker.volumes import volume_nodes
from akros_kube import AlreadyExistsError, Cluster
from akros_msgs import (
    SYSTEM_ACTOR,
    CommandFailed,
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    EnvironmentCommand,
    EnvironmentDeleted,
    EnvironmentReady,
    EnvironmentStarting,
    FailureCode,
    Message,
    VolumeDeleted,
)
from akros_msgs.streams import ENVIRONMENT_COMMANDS
from akros_policy import Catalog, QuotaPolicy, check_quota, may_act_on
from akros_policy.naming import (
    ANNOTATION_REQUEST_ID,
    LABEL_ENV,
    environment_object_name,
)
from akros_policy.placement import claim_volume_name
from akros_readmodel import (
    EnvironmentStatus,
    EnvironmentView,
    ReadModel,
    RequestState,
    StartBook,
    StartRecord,
    VolumeView,
    pending_environment,
    utc_now,
)

_log = get_logger("akros.environments")
_MAX_REASON = 2000  # CommandFailed.reason's limit
_WORKLOAD_KINDS = ("NetworkPolicy", "Ingress", "Service", "Deployment")


@dataclass
class EnvironmentService:
    cluster: Cluster
    bus: Bus
    read_model: ReadModel
    starts: StartBook
    catalog: Catalog
    quotas: QuotaPolicy
    platform: EnvironmentPlatform
    timeouts: StageTimeouts
    index: EnvironmentIndex
    node_cache_s: float = 5.0
    purge_wait_s: float = 120.0
    lanes: Lanes = field(default_factory=Lanes)
    resync_s: float = 5.0
    reconciler: StartReconciler = field(init=False)
    _nodes: tuple[float, list[Manifest]] | None = None

    def __post_init__(self) -> None:
        self.reconciler = StartReconciler(
            starts=self.starts,
            timeouts=self.timeouts,
            report_ready=self._ready,
            report_failed=self._start_failed,
            announce_stage=self._announce_stage,
            lanes=self.lanes,
            resync_s=self.resync_s,
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
            await self.starts.settled(command.owner, command.name)
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
            case _:
                assert_never(command)

    async def create(self, command: CreateEnvironment) -> None:
        """Check, record, then apply: the claim first, the Deployment last.

        Everything up to the first write runs in the urgent lane (see lanes.py), the rest in
        the background. The Deployment comes last so its pod never runs before the Service,
        Ingress and NetworkPolicy exist: a running pod means a working URL and an isolated
        environment.

        The quota check against the cluster and counting the new Deployment in the index
        happen with no await between them, so no other command of this worker can check in
        between: two concurrent creates cannot together exceed the quota. (A Redis lock
        around them would add nothing: another replica's index cannot see this count, only
        the Deployment once it exists. Across replicas, the gateway's accept, serialised per
        owner against the read model's pending views, is what keeps concurrent requests
        within the quota.)"""
        picked_up = time.time()
        remembered = False
        replaced: Manifest | None = None
        claim_written: asyncio.Task[None] | None = None
        try:
            async with self.lanes.urgent() as first_write_next:
                objects = await self._admit(command)
                await self.index.synced.wait()
                self._check_room(command)
                replaced = self.index.remember(objects.deployment)
                remembered = True
                # Recorded before anything is applied: the pod may run before apply returns,
                # and a crash in between must still end in a reported outcome (the
                # redelivered command converges; the reconciler's resync finds the rest).
                recorded = await self.starts.expect(
                    StartRecord(
                        owner=command.owner,
                        name=command.name,
                        request_id=command.request_id,
                        actor=command.actor,
                        stage=Stage.SCHEDULING.value,
                        stage_since=picked_up,
                        started_at=picked_up,
                    ),
                    # Created when the gateway accepted it, whichever delivery writes it.
                    pending_environment(command, created_at=command.occurred_at),
                )
                already_ready = not recorded
                accepted_at = command.occurred_at.timestamp()
                _log.info(
                    "applying environment",
                    owner=command.owner,
                    name=command.name,
                    since_accepted_ms=round((time.time() - accepted_at) * 1000, 2),
                    queued_ms=round((picked_up - accepted_at) * 1000, 2),
                )
                first_write_next()
                claim_written = asyncio.create_task(self._write_claim(objects))
            await self._apply(objects, claim_written)
        except BaseException:
            if claim_written is not None and not claim_written.done():
                claim_written.cancel()
            if remembered:
                # Not created after all (a redelivery or a retry counts it again); a
                # redelivered create's existing Deployment keeps counting.
                self.index.withdraw(objects.deployment, replaced)
            raise
        async with self.lanes.background():
            # A kept volume of this name is in use again (the claim was reattached).
            await self.read_model.remove_volume(command.owner, command.name)
        if already_ready:
            return  # a redelivered command for an environment that is up: nothing to report
        _log.info("environment applied", owner=command.owner, name=command.name)
        # Its pod may be running already (a redelivered command) and send no new event.
        self.reconciler.command_touched(command.owner, command.name)

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
        name = environment_object_name(command.owner, command.name)
        claim = await self.cluster.find("PersistentVolumeClaim", name, self.platform.namespace)
        volume_name = None if claim is None else claim_volume_name(claim)
        if volume_name is None:
            return None
        return await self.cluster.find("PersistentVolume", volume_name)

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

    async def _write_claim(self, objects: EnvironmentObjects) -> None:
        """Create the claim; an existing one is a kept volume being reattached, unless it is
        still being deleted (a purge whose claim a Terminating pod still holds): reusing it
        would leave the new environment without a volume once it goes."""
        try:
            await self.cluster.create(objects.volume_claim)
        except AlreadyExistsError:
            metadata = objects.volume_claim["metadata"]
            claim = await self.cluster.find(
                "PersistentVolumeClaim", metadata["name"], metadata["namespace"]
            )
            if claim is not None and (claim.get("metadata") or {}).get("deletionTimestamp"):
                raise CommandRefusedError(
                    FailureCode.CONFLICT,
                    "The volume of that name is still being deleted; try again in a minute.",
                ) from None

    async def _apply(
        self, objects: EnvironmentObjects, claim_written: "asyncio.Task[None]"
    ) -> None:
        """After the claim, create each object or bring an existing one to the desired state,
        the Deployment last."""
        await claim_written
        for manifest in (
            objects.service,
            objects.ingress,
            objects.network_policy,
            objects.deployment,
        ):
            async with self.lanes.background():
                await self._create_or_patch(manifest)

    async def _create_or_patch(self, manifest: Manifest) -> bool:
        """True when the object existed already (and was patched)."""
        try:
            await self.cluster.create(manifest)
        except AlreadyExistsError:
            await self.cluster.patch(manifest)
            return True
        return False

    async def delete(self, command: DeleteEnvironment) -> None:
        self._check_actor(command, command.owner)
        await self.starts.settled(command.owner, command.name)  # nobody waits for it now
        name = environment_object_name(command.owner, command.name)
        namespace = self.platform.namespace
        await self._delete_workload(command.owner, command.name)
        claim = await self.cluster.find("PersistentVolumeClaim", name, namespace)
        if claim is not None and command.purge_volume:
            await self.cluster.delete("PersistentVolumeClaim", name, namespace)
            # Reported deleted only once it is gone: the claim stays while the old pod
            # terminates (pvc-protection), and a re-create must not find it then.
            if not await self.reconciler.claim_gone(command.owner, command.name, self.purge_wait_s):
                raise CommandRefusedError(
                    FailureCode.TIMEOUT,
                    f"The environment is deleted, but its volume was still being deleted after "
                    f"{self.purge_wait_s:.0f}s; it will go once nothing uses it.",
                )
        volume_kept = claim is not None and not command.purge_volume
        if volume_kept and claim is not None:
            await self._record_kept_volume(command.owner, command.name, claim)
        elif claim is None or command.purge_volume:
            await self.read_model.remove_volume(command.owner, command.name)
        await self.read_model.remove_environment(command.owner, command.name)
        await self._applied(
            command,
            EnvironmentDeleted(
                request_id=command.request_id,
                actor=command.actor,
                owner=command.owner,
                name=command.name,
                volume_kept=volume_kept,
            ),
        )

    async def _delete_workload(self, owner: str, env: str) -> None:
        """Everything of an environment but its volume."""
        name = environment_object_name(owner, env)
        for kind in _WORKLOAD_KINDS:
            await self.cluster.delete(kind, name, self.platform.namespace)
        self.index.forget(name, owner)

    async def _record_kept_volume(self, owner: str, name: str, claim: Manifest) -> None:
        requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
        await self.read_model.put_volume(
            VolumeView(owner=owner, name=name, size=str(requests.get("storage", "")), in_use=False)
        )

    async def delete_volume(self, command: DeleteVolume) -> None:
        self._check_actor(command, command.owner)
        name = environment_object_name(command.owner, command.name)
        namespace = self.platform.namespace
        if await self.cluster.find("Deployment", name, namespace) is not None:
            raise CommandRefusedError(
                FailureCode.CONFLICT,
                f"The volume '{command.name}' is in use by your environment of that name; "
                "delete the environment first.",
            )
        deleted = await self.cluster.delete("PersistentVolumeClaim", name, namespace)
        known = await self.read_model.volume(command.owner, command.name)
        if not deleted and known is None:
            raise CommandRefusedError(
                FailureCode.NOT_FOUND, f"There is no volume '{command.name}'."
            )
        await self.read_model.remove_volume(command.owner, command.name)
        await self._applied(
            command,
            VolumeDeleted(
                request_id=command.request_id,
                actor=command.actor,
                owner=command.owner,
                name=command.name,
            ),
        )

    # -- starts (settled by the reconciler, reconciler.py) -------------------------------

    async def _announce_stage(self, record: StartRecord) -> None:
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

    async def _ready(self, record: StartRecord, node: str) -> None:
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
        await self._settle_request(record.request_id, RequestState.APPLIED, stage=Stage.READY)
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

    async def _start_failed(self, record: StartRecord, code: FailureCode, reason: str) -> None:
        """The workload is removed (it would hold resources or pull forever); the volume and a
        failed view stay, so the person sees why and can delete or retry."""
        await self._delete_workload(record.owner, record.name)
        view = await self.read_model.environment(record.owner, record.name)
        if view is not None:
            await self._mark_failed(view, reason)
        await self._publish_failure(
            record.request_id,
            record.actor,
            "create_environment",
            code,
            reason,
            owner=record.owner,
            name=record.name,
        )

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

    async def _applied(self, command: Message, event: Message) -> None:
        await self._settle_request(command.request_id, RequestState.APPLIED)
        await self.bus.publish(event)

    async def _failed(self, command: Message, code: FailureCode, reason: str) -> None:
        owner = getattr(command, "owner", None)
        name = getattr(command, "name", None)
        if isinstance(command, CreateEnvironment) and code is not FailureCode.CONFLICT:
            view = await self.read_model.environment(command.owner, command.name)
            if view is not None and view.request_id == command.request_id:
                await self._mark_failed(view, reason)
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
        await self._settle_request(request_id, RequestState.FAILED, code=code, reason=reason)
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

    async def _settle_request(
        self,
        request_id: str,
        state: RequestState,
        *,
        code: FailureCode | None = None,
        reason: str | None = None,
        stage: Stage | None = None,
    ) -> None:
        await settle_request(
            self.read_model,
            request_id,
            state,
            code=code,
            reason=reason,
            stage=None if stage is None else stage.value,
        )
