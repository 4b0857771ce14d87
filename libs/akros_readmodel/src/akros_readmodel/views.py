"""What the read model holds: one JSON document per environment, volume and request."""

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from akros_msgs import CreateEnvironment, FailureCode, Resources
from akros_msgs.names import ResourceName, UserId
from akros_msgs.services import ServiceSpec


def utc_now() -> datetime:
    return datetime.now(UTC)


class EnvironmentStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    STOPPING = "stopping"
    STOPPED = "stopped"


class EnvironmentView(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: UserId
    name: ResourceName
    status: EnvironmentStatus
    image: str
    resources: Resources
    dedicated_cores: bool = False
    gpu_model: str | None = None
    volume_size: str
    url: str | None = None
    node: str | None = None
    reason: str | None = Field(default=None, description="Why it failed or was stopped, for people")
    stage: str | None = Field(
        default=None,
        description="Where its start is: scheduling, attaching volume, pulling image, "
        "starting, ready",
    )
    progress: str | None = Field(default=None, description="What its start waits for now")
    request_id: str
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)
    expires_at: AwareDatetime | None = None

    @property
    def counts(self) -> bool:
        """Counts toward the owner's number of environments: everything but a failed one
        (its workload is gone; only its view and volume stay, to say why)."""
        return self.status is not EnvironmentStatus.FAILED

    @property
    def holds_resources(self) -> bool:
        """Its CPU, memory and GPUs count against the quota: a stopped environment's do not
        (it has no pod), a stopping one's do until its pod is gone."""
        return self.counts and self.status is not EnvironmentStatus.STOPPED


def pending_environment(
    command: CreateEnvironment, created_at: datetime | None = None
) -> EnvironmentView:
    """The view of an environment whose create is on its way (created now by default)."""
    return EnvironmentView(
        owner=command.owner,
        name=command.name,
        status=EnvironmentStatus.PENDING,
        image=command.image,
        resources=command.resources,
        dedicated_cores=command.dedicated_cores,
        gpu_model=command.gpu_model,
        volume_size=command.volume_size,
        request_id=command.request_id,
        created_at=created_at or utc_now(),
        expires_at=command.expires_at,
    )


def resuming_environment(view: EnvironmentView, request_id: str) -> EnvironmentView:
    """The view of a stopped environment whose start (request ``request_id``) is on its way:
    pending again, as a create is, keeping its URL, creation time and resources."""
    return view.model_copy(
        update={
            "status": EnvironmentStatus.PENDING,
            "request_id": request_id,
            "reason": None,
            "node": None,
            "stage": None,
            "progress": None,
            "updated_at": utc_now(),
        }
    )


class RequestState(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    FAILED = "failed"


class RequestView(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    state: RequestState
    command_type: str
    actor: UserId
    owner: UserId | None = None
    name: str | None = None
    code: FailureCode | None = None
    reason: str | None = None
    stage: str | None = Field(
        default=None,
        description="An environment create's stage: scheduling, attaching volume, pulling "
        "image, starting, ready",
    )
    progress: str | None = Field(default=None, description="What the start waits for now")
    accepted_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)


class VolumeView(BaseModel):
    """A work volume that outlived its environment, kept until deleted explicitly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: UserId
    name: ResourceName
    size: str
    in_use: bool = Field(description="An environment of the same name is using it")
    created_at: AwareDatetime = Field(default_factory=utc_now)


class ServiceStatus(StrEnum):
    PENDING = "pending"
    DEPLOYED = "deployed"
    FAILED = "failed"
    DELETING = "deleting"


class AutoscalerState(BaseModel):
    """What the service's HorizontalPodAutoscaler reports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_replicas: int
    max_replicas: int
    current_replicas: int = 0
    desired_replicas: int = 0
    cpu_utilisation: int | None = Field(default=None, description="Percent of requests, now")
    memory_utilisation: int | None = Field(default=None, description="Percent of requests, now")
    able_to_scale: bool | None = None
    scaling_limited: bool | None = Field(default=None, description="Held at min or max")


class ServiceView(BaseModel):
    """An in-house service: the spec last asked for, and how its Deployment is doing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ResourceName
    spec: ServiceSpec
    status: ServiceStatus
    request_id: str = Field(description="The request that last changed it")
    reason: str | None = Field(default=None, description="Why the last request failed")
    replicas: int = 0
    ready_replicas: int = 0
    updated_replicas: int = 0
    autoscaler: AutoscalerState | None = None
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)


class NodeView(BaseModel):
    """One node: what it offers, what pods reserve on it, and what they use now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ready: bool
    allocatable: Resources
    requested: Resources
    used: Resources | None = Field(default=None, description="From metrics.k8s.io, if served")
    pods: int = 0


class ClusterView(BaseModel):
    """The cluster's nodes as last observed (key ``akros:rm:cluster``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: list[NodeView]
    observed_at: AwareDatetime = Field(default_factory=utc_now)


class UsagePoint(BaseModel):
    """An environment's mean use over one history step, against what it requested."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime = Field(description="The end of the step the means cover")
    cpu_requested_millis: int = Field(ge=0)
    cpu_used_millis: int = Field(ge=0)
    memory_requested_bytes: int = Field(ge=0)
    memory_used_bytes: int = Field(ge=0)
    gpus: int = Field(ge=0)
    gpu_utilisation: float | None = Field(default=None, ge=0, le=1)
