"""Applying in-house service commands: deploy (create or update) and delete, and keeping the
read model's view of each service's Deployment and autoscaler current."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import assert_never

from akros_bus import Bus, get_logger
from akros_k8s_worker.objects import Manifest
from akros_k8s_worker.outcomes import (
    CommandRefusedError,
    apply_or_refuse,
    unreadable_command,
)
from akros_k8s_worker.service_objects import (
    ServicePlatform,
    is_current,
    replacement,
    service_objects,
)
from akros_kube import LISTING, SYNCED, AlreadyExistsError, Cluster
from akros_msgs import Actor, CommandFailed, FailureCode, Message, ServiceCommand
from akros_msgs.services import DeleteService, DeployService, ServiceDeleted, ServiceDeployed
from akros_policy import host_path_problem, may_manage_services
from akros_policy.naming import LABEL_SERVICE, SERVICES_SELECTOR
from akros_readmodel import (
    AutoscalerState,
    ReadModel,
    RequestState,
    ServiceStatus,
    ServiceView,
    utc_now,
)

_log = get_logger("akros.services")
_MAX_REASON = 2000  # CommandFailed.reason's limit


def deployment_counts(deployment: Manifest) -> dict[str, int]:
    """The replica counts of a Deployment's status, as the view's fields."""
    status = deployment.get("status") or {}
    return {
        "replicas": int((deployment.get("spec") or {}).get("replicas") or 0),
        "ready_replicas": int(status.get("readyReplicas") or 0),
        "updated_replicas": int(status.get("updatedReplicas") or 0),
    }


def autoscaler_state(autoscaler: Manifest) -> AutoscalerState:
    """What a HorizontalPodAutoscaler (autoscaling/v2) reports, as the view's summary."""
    spec = autoscaler.get("spec") or {}
    status = autoscaler.get("status") or {}
    utilisation: dict[str, int] = {}
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        average = (resource.get("current") or {}).get("averageUtilization")
        if average is not None:
            utilisation[str(resource.get("name"))] = int(average)
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}

    def condition(name: str) -> bool | None:
        return None if name not in conditions else conditions[name] == "True"

    return AutoscalerState(
        min_replicas=int(spec.get("minReplicas") or 1),
        max_replicas=int(spec.get("maxReplicas") or 1),
        current_replicas=int(status.get("currentReplicas") or 0),
        desired_replicas=int(status.get("desiredReplicas") or 0),
        cpu_utilisation=utilisation.get("cpu"),
        memory_utilisation=utilisation.get("memory"),
        able_to_scale=condition("AbleToScale"),
        scaling_limited=condition("ScalingLimited"),
    )


@dataclass
class ServiceDeployer:
    cluster: Cluster
    bus: Bus
    read_model: ReadModel
    platform: ServicePlatform
    host_paths_enabled: bool

    async def handle(self, command: ServiceCommand) -> None:
        """Apply one command; refusals become CommandFailed, transient errors propagate so the
        bus redelivers the command."""
        await apply_or_refuse(
            self._apply_command(command), lambda code, reason: self._failed(command, code, reason)
        )

    async def _apply_command(self, command: ServiceCommand) -> None:
        match command:
            case DeployService():
                await self.deploy(command)
            case DeleteService():
                await self.delete(command)
            case _:
                assert_never(command)

    def _check_actor(self, command: Message) -> None:
        if not may_manage_services(command.actor):
            raise CommandRefusedError(
                FailureCode.FORBIDDEN, f"{command.actor.user_id} may not manage services."
            )

    async def deploy(self, command: DeployService) -> None:
        spec = command.spec
        # Before the role check, so a researcher's host path is refused naming the field.
        problem = host_path_problem(spec, command.actor, host_paths_enabled=self.host_paths_enabled)
        if problem is not None:
            raise CommandRefusedError(
                FailureCode.FORBIDDEN, f"spec.{problem.field}: {problem.message}"
            )
        self._check_actor(command)
        objects = service_objects(spec, self.platform)
        autoscaled = objects.autoscaler is not None
        namespace = self.platform.namespace
        # The policy first, so pods never start with their declared ports closed; then in
        # this order so a Service never selects pods that are not yet defined, and the HPA
        # never targets a missing Deployment.
        if objects.network_policy is not None:
            await self._apply(objects.network_policy, autoscaled=autoscaled)
        else:
            await self.cluster.delete("NetworkPolicy", spec.name, namespace)
        deployment = await self._apply(objects.deployment, autoscaled=autoscaled)
        if objects.service is not None:
            await self._apply(objects.service, autoscaled=autoscaled)
        else:
            await self.cluster.delete("Service", spec.name, namespace)
        autoscaler: AutoscalerState | None = None
        if objects.autoscaler is not None:
            live = await self._apply(objects.autoscaler, autoscaled=autoscaled)
            autoscaler = autoscaler_state(live)
        else:
            await self.cluster.delete("HorizontalPodAutoscaler", spec.name, namespace)

        view = await self.read_model.service(spec.name)
        await self.read_model.put_service(
            ServiceView(
                name=spec.name,
                spec=spec,
                status=ServiceStatus.DEPLOYED,
                request_id=command.request_id,
                autoscaler=autoscaler,
                created_at=view.created_at if view else utc_now(),
                **deployment_counts(deployment),
            )
        )
        _log.info("service applied", name=spec.name, autoscaled=autoscaled)
        await self._applied(
            command,
            ServiceDeployed(
                request_id=command.request_id,
                actor=command.actor,
                name=spec.name,
                replicas=deployment_counts(deployment)["replicas"],
                autoscaled=autoscaled,
            ),
        )

    async def _apply(self, desired: Manifest, *, autoscaled: bool) -> Manifest:
        """Create the object, or replace it when it differs from ``desired``; an object that
        matches is left alone (an unchanged spec restarts nothing). Returns the live object."""
        metadata = desired["metadata"]
        live = await self.cluster.find(desired["kind"], metadata["name"], metadata["namespace"])
        if live is None:
            try:
                return await self.cluster.create(desired)
            except AlreadyExistsError:  # created meanwhile (a redelivery racing itself)
                live = await self.cluster.get(
                    desired["kind"], metadata["name"], metadata["namespace"]
                )
        if is_current(desired, live):
            return live
        return await self.cluster.replace(replacement(desired, live, autoscaled=autoscaled))

    async def delete(self, command: DeleteService) -> None:
        self._check_actor(command)
        namespace = self.platform.namespace
        for kind in ("HorizontalPodAutoscaler", "Service", "Deployment", "NetworkPolicy"):
            await self.cluster.delete(kind, command.name, namespace)
        await self.read_model.remove_service(command.name)
        _log.info("service deleted", name=command.name)
        await self._applied(
            command,
            ServiceDeleted(request_id=command.request_id, actor=command.actor, name=command.name),
        )

    # -- status from the cluster ------------------------------------------------------------

    async def watch_deployments(self) -> None:
        namespace = self.platform.namespace
        async for event, deployment in self.cluster.watch(
            "Deployment", namespace, SERVICES_SELECTOR
        ):
            await self._observe(self.on_deployment, event, deployment)

    async def watch_autoscalers(self) -> None:
        namespace = self.platform.namespace
        async for event, autoscaler in self.cluster.watch(
            "HorizontalPodAutoscaler", namespace, SERVICES_SELECTOR
        ):
            await self._observe(self.on_autoscaler, event, autoscaler)

    @staticmethod
    async def _observe(
        handler: Callable[[str, Manifest], Awaitable[None]], event: str, manifest: Manifest
    ) -> None:
        if event in {LISTING, SYNCED}:
            return
        try:
            await handler(event, manifest)
        except Exception:
            _log.exception("could not record a service's status")

    async def on_deployment(self, event: str, deployment: Manifest) -> None:
        """Copy a service Deployment's replica counts into its view."""
        name = _service_name(deployment)
        if event == "DELETED" or name is None:
            return
        await self.read_model.update_service(
            name, {**deployment_counts(deployment), "updated_at": utc_now()}
        )

    async def on_autoscaler(self, event: str, autoscaler: Manifest) -> None:
        """Copy a service HPA's state into its view (None once the HPA is gone)."""
        name = _service_name(autoscaler)
        if name is None:
            return
        state = None if event == "DELETED" else autoscaler_state(autoscaler)
        await self.read_model.update_service(name, {"autoscaler": state, "updated_at": utc_now()})

    # -- outcomes ----------------------------------------------------------------------------

    async def _applied(self, command: Message, event: Message) -> None:
        await self.read_model.settle_request(command.request_id, RequestState.APPLIED)
        await self.bus.publish(event)

    async def _failed(self, command: Message, code: FailureCode, reason: str) -> None:
        name = command.spec.name if isinstance(command, DeployService) else None
        if isinstance(command, DeleteService):
            name = command.name
        if name is not None:
            view = await self.read_model.service(name)
            if view is not None and view.request_id == command.request_id:
                await self.read_model.put_service(
                    view.model_copy(
                        update={
                            "status": ServiceStatus.FAILED,
                            "reason": reason,
                            "updated_at": utc_now(),
                        }
                    )
                )
        command_type = str(getattr(command, "type", type(command).__name__))
        await self._report_failure(
            command.request_id, command.actor, command_type, name, code, reason
        )

    async def on_dead_letter(self, body: bytes, reason: str, malformed: bool) -> None:
        """A service command was dead-lettered: it failed validation (an unknown field, a bad
        quantity, two ports with one number; the reason names the field) or its deliveries
        ran out. Its request still gets a CommandFailed when the entry says whose it was."""
        command = unreadable_command(body)
        if command is None:
            return
        await self._report_failure(
            command.request_id,
            command.actor,
            command.command_type,
            command.name,
            FailureCode.INVALID if malformed else FailureCode.INTERNAL,
            reason[:_MAX_REASON],
        )

    async def _report_failure(
        self,
        request_id: str,
        actor: Actor,
        command_type: str,
        name: str | None,
        code: FailureCode,
        reason: str,
    ) -> None:
        await self.read_model.settle_request(
            request_id, RequestState.FAILED, code=code, reason=reason
        )
        await self.bus.publish(
            CommandFailed(
                request_id=request_id,
                actor=actor,
                command_type=command_type,
                code=code,
                reason=reason,
                name=name,
            )
        )
        _log.info("service command refused", code=code.value, reason=reason)


def _service_name(manifest: Manifest) -> str | None:
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    name = labels.get(LABEL_SERVICE)
    return str(name) if name else None
