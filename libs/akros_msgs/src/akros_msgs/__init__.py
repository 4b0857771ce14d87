"""The Akros message contract: every command and event, the envelope and the streams."""

from akros_msgs.commands import CreateEnvironment, DeleteEnvironment, DeleteVolume, ScaleDeployment
from akros_msgs.envelope import (
    SCHEMA_VERSION,
    SYSTEM_ACTOR,
    Actor,
    Message,
    Role,
    Source,
    new_request_id,
)
from akros_msgs.events import (
    CapacityChanged,
    CommandFailed,
    DeploymentScaled,
    EnvironmentDeleted,
    EnvironmentReady,
    FailureCode,
    MessageDeadLettered,
    NodeCapacity,
    ResourceUse,
    UnderusedEnvironment,
    UsageSample,
    VolumeDeleted,
    WorkloadUsage,
)
from akros_msgs.resources import Resources
from akros_msgs.services import DeleteService, DeployService, ServiceDeleted, ServiceDeployed
from akros_msgs.streams import ALL_STREAMS, Groups, Stream, stream_of

__all__ = [
    "ALL_STREAMS",
    "SCHEMA_VERSION",
    "SYSTEM_ACTOR",
    "Actor",
    "CapacityChanged",
    "CommandFailed",
    "CreateEnvironment",
    "DeleteEnvironment",
    "DeleteService",
    "DeleteVolume",
    "DeployService",
    "DeploymentScaled",
    "EnvironmentDeleted",
    "EnvironmentReady",
    "FailureCode",
    "Groups",
    "Message",
    "MessageDeadLettered",
    "NodeCapacity",
    "ResourceUse",
    "Resources",
    "Role",
    "ScaleDeployment",
    "ServiceDeleted",
    "ServiceDeployed",
    "Source",
    "Stream",
    "UnderusedEnvironment",
    "UsageSample",
    "VolumeDeleted",
    "WorkloadUsage",
    "new_request_id",
    "stream_of",
]
