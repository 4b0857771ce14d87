"""Applying scale commands: set a Deployment's replicas through its scale subresource.

Patching the same count twice changes nothing (Cluster.scale patches only a difference), so
a redelivered command is harmless. A command older than one already applied to the same
Deployment is skipped, so a late redelivery never undoes a newer decision.
"""

from dataclasses import dataclass, field
from datetime import datetime

from akros_bus import Bus, get_logger
from akros_kube import Cluster, ForbiddenError, InvalidError, NotFoundError
from akros_msgs import CommandFailed, DeploymentScaled, FailureCode, ScaleDeployment

_log = get_logger("akros.scaling")


@dataclass
class ScalingService:
    cluster: Cluster
    bus: Bus
    _newest_applied: dict[tuple[str, str], datetime] = field(default_factory=dict)

    async def handle(self, command: ScaleDeployment) -> None:
        key = (command.namespace, command.deployment)
        newest = self._newest_applied.get(key)
        if newest is not None and command.occurred_at < newest:
            _log.info("skipping a scale command older than one applied", deployment=key[1])
            return
        try:
            previous = await self.cluster.scale(
                command.namespace, command.deployment, command.replicas
            )
        except (NotFoundError, InvalidError, ForbiddenError) as error:
            await self.bus.publish(_failure(command, error))
            return
        self._newest_applied[key] = command.occurred_at
        if previous != command.replicas:
            _log.info(
                "deployment scaled",
                namespace=command.namespace,
                deployment=command.deployment,
                replicas=command.replicas,
                previous=previous,
                reason=command.reason,
            )
        await self.bus.publish(
            DeploymentScaled(
                request_id=command.request_id,
                actor=command.actor,
                namespace=command.namespace,
                deployment=command.deployment,
                replicas=command.replicas,
                previous_replicas=previous,
            )
        )


def _failure(command: ScaleDeployment, error: Exception) -> CommandFailed:
    target = f"{command.namespace}/{command.deployment}"
    if isinstance(error, NotFoundError):
        code, reason = FailureCode.NOT_FOUND, f"There is no Deployment {target} to scale."
    elif isinstance(error, ForbiddenError):
        code, reason = FailureCode.FORBIDDEN, f"The cluster refused to scale {target}: {error}"
    else:
        code, reason = FailureCode.INVALID, f"The cluster refused to scale {target}: {error}"
    return CommandFailed(
        request_id=command.request_id,
        actor=command.actor,
        command_type=command.type,
        code=code,
        reason=reason,
        name=target,
    )
