"""Events: facts that happened, published for any subscriber."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from akros_msgs.envelope import Message
from akros_msgs.names import ObjectName, ResourceName, UserId
from akros_msgs.resources import Resources


class EnvironmentReady(Message):
    """An environment's pod runs and its URL answers to the owner."""

    type: Literal["environment_ready"] = "environment_ready"
    owner: UserId
    name: ResourceName
    url: str
    node: str = Field(description="The node the environment runs on")
    resources: Resources


class EnvironmentStarting(Message):
    """An environment's start reached a new stage (scheduling, attaching volume, pulling
    image, starting) or now waits for something else; its request is still pending. Progress,
    not an outcome: EnvironmentReady or CommandFailed still ends the request."""

    type: Literal["environment_starting"] = "environment_starting"
    owner: UserId
    name: ResourceName
    stage: str = Field(max_length=40)
    progress: str = Field(default="", max_length=2000, description="What it waits for")


class EnvironmentDeleted(Message):
    """An environment is gone; ``volume_kept`` says whether its work volume survives."""

    type: Literal["environment_deleted"] = "environment_deleted"
    owner: UserId
    name: ResourceName
    volume_kept: bool


class EnvironmentStopped(Message):
    """An environment is stopped: no pod of it is left, and its volume, URL and name stay."""

    type: Literal["environment_stopped"] = "environment_stopped"
    owner: UserId
    name: ResourceName
    reason: str = Field(default="", max_length=500, description="Why, when not asked by its owner")


class EnvironmentExtended(Message):
    """An environment's expiry was moved to ``expires_at``."""

    type: Literal["environment_extended"] = "environment_extended"
    owner: UserId
    name: ResourceName
    expires_at: AwareDatetime


class EnvironmentResized(Message):
    """A stopped environment has new resources, for its next start."""

    type: Literal["environment_resized"] = "environment_resized"
    owner: UserId
    name: ResourceName
    resources: Resources


class EnvironmentExpiring(Message):
    """An environment will be stopped at ``stops_at`` unless its owner extends it (by up to
    ``extend_by_s`` at a time) or stops it first; its volume is kept either way."""

    type: Literal["environment_expiring"] = "environment_expiring"
    owner: UserId
    name: ResourceName
    expires_at: AwareDatetime
    stops_at: AwareDatetime | None = Field(
        default=None,
        description="When it will be stopped: the expiry, or later when the owner is told "
        "late (they always get the whole warning time). None (from older workers): at the "
        "expiry",
    )
    extend_by_s: int = Field(gt=0, description="How far one extension may move the expiry")


class VolumeDeleted(Message):
    """A kept work volume was deleted for good."""

    type: Literal["volume_deleted"] = "volume_deleted"
    owner: UserId
    name: ResourceName


class DeploymentScaled(Message):
    """A Deployment's replica count was set (or already had the wanted value)."""

    type: Literal["deployment_scaled"] = "deployment_scaled"
    namespace: ObjectName
    deployment: ObjectName
    replicas: int = Field(ge=0)
    previous_replicas: int = Field(ge=0)


class FailureCode(StrEnum):
    """Why a command failed, for programs; ``CommandFailed.reason`` says it for people."""

    INVALID = "invalid"
    QUOTA_EXCEEDED = "quota_exceeded"
    UNSCHEDULABLE = "unschedulable"
    IMAGE_PULL = "image_pull"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class CommandFailed(Message):
    """A command could not be applied; ``reason`` is written for the person who asked."""

    type: Literal["command_failed"] = "command_failed"
    command_type: str = Field(description="The ``type`` of the command that failed")
    code: FailureCode
    reason: str = Field(min_length=1, max_length=2000)
    owner: UserId | None = None
    name: str | None = Field(default=None, description="The object the command was about")


class ResourceUse(BaseModel):
    """Requested resources split by who requested them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    researchers: Resources = Resources()
    services: Resources = Resources()
    inference: Resources = Resources()
    other: Resources = Resources()

    @property
    def total(self) -> Resources:
        return self.researchers + self.services + self.inference + self.other


class NodeCapacity(BaseModel):
    """One node's allocatable resources and what is requested on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    allocatable: Resources
    requested: ResourceUse
    schedulable: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    pending_researchers: Resources = Field(
        default=Resources(),
        description=(
            "The part of the event's ``pending_researchers`` that only this node can take: "
            "the pods' bound volumes are stored on it (local storage)"
        ),
    )


class CapacityChanged(Message):
    """The cluster's capacity and its use, per node and in total, at ``observed_at``."""

    type: Literal["capacity_changed"] = "capacity_changed"
    observed_at: AwareDatetime
    nodes: list[NodeCapacity]
    allocatable: Resources
    requested: ResourceUse
    pending: Resources = Field(description="Requests of pods that cannot be scheduled")
    pending_researchers: Resources = Field(
        default=Resources(), description="The part of ``pending`` that researchers asked for"
    )


class UsageSample(BaseModel):
    """One workload's use against its requests over a sampling interval."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    workload: str
    owner: UserId | None = None
    environment: ResourceName | None = None
    requested: Resources
    cpu_used_millis: int = Field(ge=0)
    memory_used_bytes: int = Field(ge=0)
    gpu_utilisation: float | None = Field(
        default=None, ge=0, le=1, description="Mean GPU utilisation 0..1 where a source exists"
    )


class WorkloadUsage(Message):
    """A batch of usage samples taken at ``sampled_at``."""

    type: Literal["workload_usage"] = "workload_usage"
    sampled_at: AwareDatetime
    samples: list[UsageSample]


class UnderusedEnvironment(Message):
    """An environment used far less than it reserved for longer than the grace period."""

    type: Literal["underused_environment"] = "underused_environment"
    owner: UserId
    name: ResourceName
    since: datetime
    requested: Resources
    cpu_used_fraction: float = Field(ge=0)
    gpu_utilisation: float | None = Field(default=None, ge=0, le=1)
    threshold: float = Field(gt=0, le=1)


class MessageDeadLettered(Message):
    """A message that could not be processed, moved aside with why and how often it was tried."""

    type: Literal["message_dead_lettered"] = "message_dead_lettered"
    stream: str
    group: str
    entry_id: str = Field(description="The Redis stream entry id of the original message")
    reason: str
    delivery_count: int = Field(ge=0)
    original: dict[str, str] = Field(description="The original entry's fields, as text")
    errors: list[str] = Field(default_factory=list, description="The error of each attempt")
