"""Commands: imperative requests that the k8s_worker applies to the cluster.

Every command is idempotent under its ``request_id`` and the names it carries: applying the
same command twice converges on the same objects.
"""

from typing import Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from akros_msgs.envelope import Message
from akros_msgs.names import ObjectName, ResourceName, UserId
from akros_msgs.quantity import PositiveCpu, PositiveMemory, cpu_millicores
from akros_msgs.resources import Resources

MAX_GPUS_PER_REQUEST = 64


class CreateEnvironment(Message):
    """Create a research environment for ``owner``: a workload on a catalog image with reserved
    resources, a volume that keeps the work, a Service and a URL."""

    type: Literal["create_environment"] = "create_environment"
    owner: UserId
    name: ResourceName
    image: str = Field(
        min_length=1,
        max_length=63,
        description="A key of the image catalog (GET /v1/catalog), not a free image reference",
    )
    cpu: PositiveCpu = Field(description="CPU to reserve, e.g. '4' or '500m'")
    memory: PositiveMemory = Field(description="Memory to reserve, e.g. '16Gi'")
    gpus: int = Field(default=0, ge=0, le=MAX_GPUS_PER_REQUEST, description="Whole GPUs")
    gpu_model: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Required GPU model (node label nvidia.com/gpu.product), if any",
    )
    dedicated_cores: bool = Field(
        default=False,
        description="Pin whole cores: integer CPU with requests equal to limits (Guaranteed QoS)",
    )
    volume_size: PositiveMemory = Field(default="20Gi", description="Size of the work volume")
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="When the environment is stopped (never deleted) unless extended; the "
        "owner is told ahead of it",
    )
    profile: ResourceName | None = Field(
        default=None,
        description="The catalog resource profile (GET /v1/catalog) the resources came from, "
        "if any; the workload is labelled with it, and a profile the catalog marks "
        "underuse_exempt spares it under-use nudges",
    )

    @model_validator(mode="after")
    def _dedicated_cores_are_whole(self) -> Self:
        if self.dedicated_cores and cpu_millicores(self.cpu) % 1000:
            raise ValueError("cpu: dedicated cores need a whole number of CPUs, e.g. '4'")
        if self.gpu_model and not self.gpus:
            raise ValueError("gpu_model: a GPU model was given but gpus is 0")
        return self

    @property
    def resources(self) -> Resources:
        return Resources.of(self.cpu, self.memory, self.gpus)


class DeleteEnvironment(Message):
    """Delete an environment. Its volume is kept unless ``purge_volume`` is set."""

    type: Literal["delete_environment"] = "delete_environment"
    owner: UserId
    name: ResourceName
    purge_volume: bool = False


class StopEnvironment(Message):
    """Stop an environment: its workload is scaled to zero, and its definition, volume, URL
    and name are kept. A stopped environment holds no CPU, memory or GPUs, and still counts
    toward its owner's number of environments; StartEnvironment brings it back."""

    type: Literal["stop_environment"] = "stop_environment"
    owner: UserId
    name: ResourceName
    reason: str = Field(
        default="",
        max_length=500,
        description="Why, for the owner, when it is not their own request (expiry, idle stop)",
    )


class StartEnvironment(Message):
    """Start a stopped environment again, with the same volume, URL and name; reported like a
    create (its stages, then EnvironmentReady or CommandFailed)."""

    type: Literal["start_environment"] = "start_environment"
    owner: UserId
    name: ResourceName


class ExtendEnvironment(Message):
    """Move an environment's expiry to ``expires_at`` (the front door bounds it by policy)."""

    type: Literal["extend_environment"] = "extend_environment"
    owner: UserId
    name: ResourceName
    expires_at: AwareDatetime


class ResizeEnvironment(Message):
    """Give an environment new resources, keeping its volume, URL and name: a running one is
    restarted with them (reported like a start: its stages, then EnvironmentReady), a stopped
    one keeps them for its next start (EnvironmentResized)."""

    type: Literal["resize_environment"] = "resize_environment"
    owner: UserId
    name: ResourceName
    cpu: PositiveCpu
    memory: PositiveMemory
    gpus: int = Field(default=0, ge=0, le=MAX_GPUS_PER_REQUEST)
    dedicated_cores: bool = False

    @model_validator(mode="after")
    def _dedicated_cores_are_whole(self) -> Self:
        if self.dedicated_cores and cpu_millicores(self.cpu) % 1000:
            raise ValueError("cpu: dedicated cores need a whole number of CPUs, e.g. '4'")
        return self

    @property
    def resources(self) -> Resources:
        return Resources.of(self.cpu, self.memory, self.gpus)


class DeleteVolume(Message):
    """Delete a kept work volume; refused while an environment still uses it."""

    type: Literal["delete_volume"] = "delete_volume"
    owner: UserId
    name: ResourceName


class ScaleDeployment(Message):
    """Set a Deployment's replica count through its scale subresource."""

    type: Literal["scale_deployment"] = "scale_deployment"
    namespace: ObjectName
    deployment: ObjectName
    replicas: int = Field(ge=0, le=10_000)
    reason: str = Field(default="", max_length=500, description="Why, for logs and events")
