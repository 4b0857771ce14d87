"""The HTTP API's request and response bodies, and how read-model views become them.

Request fields reuse the command's own field definitions (types, limits, descriptions), so the
API and the contract cannot drift apart; the command re-validates everything on construction.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from akros_msgs import CreateEnvironment, EnvironmentExpiring, Resources, Role, UnderusedEnvironment
from akros_msgs.commands import MAX_GPUS_PER_REQUEST
from akros_msgs.names import ResourceName, UserId
from akros_msgs.quantity import PositiveCpu, PositiveMemory, format_cpu, format_memory
from akros_policy import Holding, Quota
from akros_policy.cluster_events import ClusterEvent, in_words
from akros_readmodel import (
    ClusterView,
    EnvironmentStatus,
    EnvironmentView,
    NodeView,
    RequestState,
    RequestView,
    ServiceView,
    UsagePoint,
    VolumeView,
)

_COMMAND = CreateEnvironment.model_fields


def _from_profile(field: str, otherwise: str) -> Any:
    """The command's description of a field that a resource profile may supply instead. Only
    the description: the command's constraints would refuse the field's None."""
    return Field(description=f"{_COMMAND[field].description}. Default: the profile's; {otherwise}.")


class ExtendEnvironmentBody(BaseModel):
    """POST /v1/environments/{name}/extend."""

    model_config = ConfigDict(extra="forbid")

    hours: float | None = Field(
        default=None,
        gt=0,
        description="How far to move the expiry; by default, and at most, the platform's "
        "extension (AKROS_EXTEND_BY_S), and never more than that ahead of now",
    )


class ResizeEnvironmentBody(BaseModel):
    """PATCH /v1/environments/{name}: the resources to change; the others stay as they are."""

    model_config = ConfigDict(extra="forbid")

    cpu: PositiveCpu | None = Field(default=None, description="CPU to reserve, e.g. '4'")
    memory: PositiveMemory | None = Field(default=None, description="Memory, e.g. '16Gi'")
    gpus: int | None = Field(default=None, ge=0, le=MAX_GPUS_PER_REQUEST)
    dedicated_cores: bool | None = None


class CreateEnvironmentBody(BaseModel):
    """POST /v1/environments."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[ResourceName, Field(description="Unique among the owner's environments")]
    image: Annotated[str, _COMMAND["image"]]
    profile: Annotated[
        ResourceName | None,
        Field(
            description="A resource profile of the catalog (GET /v1/catalog): it supplies cpu, "
            "memory, gpus and dedicated_cores, and any of those given here override its value. "
            "The environment is labelled with the profile; a profile the catalog marks "
            "underuse_exempt spares it under-use nudges, and then cpu, memory and gpus may be "
            "lowered, not raised."
        ),
    ] = None
    cpu: Annotated[PositiveCpu | None, _from_profile("cpu", "required without a profile")] = None
    memory: Annotated[
        PositiveMemory | None, _from_profile("memory", "required without a profile")
    ] = None
    gpus: Annotated[
        Annotated[int, Field(ge=0, le=MAX_GPUS_PER_REQUEST)] | None,
        _from_profile("gpus", "0 without one"),
    ] = None
    gpu_model: Annotated[str | None, _COMMAND["gpu_model"]]
    dedicated_cores: Annotated[
        bool | None, _from_profile("dedicated_cores", "false without one")
    ] = None
    volume_size: Annotated[PositiveMemory, _COMMAND["volume_size"]]
    expires_at: Annotated[AwareDatetime | None, _COMMAND["expires_at"]]
    owner: UserId | None = Field(
        default=None, description="Admins only: create the environment for this user"
    )


class ResourcesOut(BaseModel):
    cpu: str = Field(description="CPU, e.g. '4' or '500m'")
    memory: str = Field(description="Memory, e.g. '16Gi'")
    gpus: int

    @classmethod
    def of(cls, resources: Resources) -> "ResourcesOut":
        return cls(
            cpu=format_cpu(resources.cpu_millis),
            memory=format_memory(resources.memory_bytes),
            gpus=resources.gpus,
        )


class Accepted(BaseModel):
    """A command was accepted; follow its progress at GET /v1/requests/{request_id}."""

    request_id: str
    status: RequestState


class Environment(BaseModel):
    owner: str
    name: str
    status: EnvironmentStatus
    image: str
    resources: ResourcesOut
    dedicated_cores: bool
    gpu_model: str | None
    volume_size: str
    url: str | None = Field(description="Where it answers, once ready")
    node: str | None
    reason: str | None = Field(description="Why it failed, if it did")
    request_id: str = Field(description="The request that created it")
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, view: EnvironmentView) -> "Environment":
        return cls(
            **view.model_dump(exclude={"resources"}), resources=ResourcesOut.of(view.resources)
        )


class EnvironmentList(BaseModel):
    environments: list[Environment]


class RequestStatus(BaseModel):
    request_id: str
    status: RequestState = Field(description="pending, applied or failed")
    command_type: str
    owner: str | None
    name: str | None
    code: str | None = Field(description="Why it failed, for programs")
    reason: str | None = Field(description="Why it failed, for people")
    stage: str | None = Field(
        default=None,
        description="An environment create's stage: scheduling, attaching volume, pulling "
        "image, starting, ready",
    )
    progress: str | None = Field(
        default=None, description="What the environment's start waits for now, for people"
    )
    accepted_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: RequestView) -> "RequestStatus":
        return cls(
            request_id=view.request_id,
            status=view.state,
            command_type=view.command_type,
            owner=view.owner,
            name=view.name,
            code=view.code.value if view.code else None,
            reason=view.reason,
            stage=view.stage,
            progress=view.progress,
            accepted_at=view.accepted_at,
            updated_at=view.updated_at,
        )


class Volume(BaseModel):
    owner: str
    name: str
    size: str
    in_use: bool
    created_at: datetime

    @classmethod
    def of(cls, view: VolumeView) -> "Volume":
        return cls(**view.model_dump())


class VolumeList(BaseModel):
    volumes: list[Volume]


class QuotaOut(BaseModel):
    resources: ResourcesOut
    environments: int

    @classmethod
    def of(cls, quota: Quota | Holding) -> "QuotaOut":
        return cls(resources=ResourcesOut.of(quota.resources), environments=quota.environments)


class Me(BaseModel):
    user: str
    role: Role
    quota: QuotaOut = Field(description="The most you may hold at once")
    holding: QuotaOut = Field(description="What your environments hold now")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    redis: bool


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: UserId
    role: Literal[Role.RESEARCHER, Role.ADMIN] = Role.RESEARCHER


class TokenInfo(BaseModel):
    prefix: str = Field(description="The token's first characters; revoke it by these")
    user: str
    role: Role
    created_at: datetime


class IssuedTokenOut(TokenInfo):
    token: str = Field(description="Shown once: store it now, only its digest is kept")


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class Revoked(BaseModel):
    revoked: int


class ServiceList(BaseModel):
    services: list[ServiceView]


class ClusterOut(BaseModel):
    """The cluster's nodes as last observed; empty until the first observation."""

    nodes: list[NodeView]
    observed_at: datetime | None = Field(description="When the nodes were observed")

    @classmethod
    def of(cls, view: ClusterView | None) -> "ClusterOut":
        if view is None:
            return cls(nodes=[], observed_at=None)
        return cls(nodes=view.nodes, observed_at=view.observed_at)


class EnvironmentUsage(BaseModel):
    owner: UserId
    name: str
    points: list[UsagePoint] = Field(description="Oldest first, one per history step")


class UserUsage(BaseModel):
    """One user's environments added up, each at its latest history point."""

    user: UserId
    environments: int
    cpu_requested_millis: int
    cpu_used_millis: int
    memory_requested_bytes: int
    memory_used_bytes: int
    gpus: int


class UsageByUser(BaseModel):
    users: list[UserUsage]


class NotificationList(BaseModel):
    notifications: list[
        Annotated[UnderusedEnvironment | EnvironmentExpiring, Field(discriminator="type")]
    ] = Field(description="Newest first: under-used environments, environments about to expire")


class ClusterEventOut(BaseModel):
    """One thing the cluster said about one of an environment's objects."""

    at: str = Field(description="When it last happened (RFC 3339)")
    object: str = Field(description="What it is about, as kind/name: 'Pod/alice-nb-5d9f-x2x4q'")
    reason: str = Field(description="The cluster's reason, as `kubectl get events` shows it")
    message: str = Field(description="The cluster's message, as `kubectl get events` shows it")
    words: str = Field(description="The same in words a researcher understands")
    warning: bool = Field(description="The cluster reported it as a Warning")
    count: int = Field(description="How often it happened")

    @classmethod
    def of(cls, event: ClusterEvent) -> "ClusterEventOut":
        return cls(
            at=event.at,
            object=f"{event.object_kind}/{event.object_name}",
            reason=event.reason,
            message=event.message,
            words=in_words(event.reason, event.message),
            warning=event.warning,
            count=event.count,
        )


class EnvironmentEvents(BaseModel):
    owner: UserId
    name: str
    status: EnvironmentStatus
    why_pending: str | None = Field(
        description="While it is pending: the newest thing the cluster said that explains "
        "the wait (scheduling, image pulls, crashes, preemption), in words; null otherwise"
    )
    events: list[ClusterEventOut] = Field(description="Oldest first")


class SignInUrl(BaseModel):
    """POST /v1/environments/{name}/open: a URL that opens the environment signed in."""

    url: str = Field(
        description="The environment's URL with a sign-in ticket: open it in a browser once, "
        "before `expires_at`; it sets a session cookie for that host alone"
    )
    expires_at: AwareDatetime = Field(description="When the URL stops working if not opened")
