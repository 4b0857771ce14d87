"""The streams of the event backbone, which messages each carries, and who consumes them.

This catalogue is the one place that binds message types to stream names; producers look up
the stream of a message here and consumers build their parser from it.

Each stream is typed with the union of what it carries (``Stream[EnvironmentCommand]``), so a
consumer's handler receives that union and dispatches over it with ``match`` and an
``assert_never`` default: a type added to a stream that some consumer does not handle fails
type-checking there. A stream of one type hands its handler that type; a second type fails
the handler's registration instead (the handler cannot take it).
"""

import operator
from dataclasses import dataclass, field
from functools import cached_property, reduce
from typing import Annotated, Any, Generic, TypeAlias, TypeVar

from pydantic import Field, TypeAdapter

from akros_msgs.commands import (
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    ExtendEnvironment,
    ResizeEnvironment,
    ScaleDeployment,
    StartEnvironment,
    StopEnvironment,
)
from akros_msgs.envelope import Message
from akros_msgs.events import (
    CapacityChanged,
    CommandFailed,
    DeploymentScaled,
    EnvironmentDeleted,
    EnvironmentExpiring,
    EnvironmentExtended,
    EnvironmentReady,
    EnvironmentResized,
    EnvironmentStarting,
    EnvironmentStopped,
    MessageDeadLettered,
    UnderusedEnvironment,
    VolumeDeleted,
    WorkloadUsage,
)
from akros_msgs.services import DeleteService, DeployService, ServiceDeleted, ServiceDeployed

M = TypeVar("M", bound=Message)

EnvironmentCommand: TypeAlias = (
    CreateEnvironment
    | DeleteEnvironment
    | DeleteVolume
    | StopEnvironment
    | StartEnvironment
    | ExtendEnvironment
    | ResizeEnvironment
)
Notification: TypeAlias = UnderusedEnvironment | EnvironmentExpiring
ServiceCommand: TypeAlias = DeployService | DeleteService
CommandResult: TypeAlias = (
    EnvironmentReady
    | EnvironmentStarting
    | EnvironmentStopped
    | EnvironmentExtended
    | EnvironmentResized
    | EnvironmentDeleted
    | VolumeDeleted
    | DeploymentScaled
    | ServiceDeployed
    | ServiceDeleted
    | CommandFailed
)


class Groups:
    """Consumer-group names: one group per consuming service, shared by its replicas."""

    K8S_WORKER = "k8s-worker"
    POLLER = "poller"
    SLACK = "slack"


@dataclass(frozen=True)
class Stream(Generic[M]):
    """A Redis stream and the message types it carries; ``M`` is their union."""

    name: str
    description: str
    messages: tuple[type[M], ...]
    consumer_groups: tuple[str, ...] = field(default=())
    max_length: int = 100_000

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        """Validates any message of this stream, picked by its ``type`` field."""
        if len(self.messages) == 1:
            return TypeAdapter(self.messages[0])
        union: Any = reduce(operator.or_, self.messages)
        return TypeAdapter(Annotated[union, Field(discriminator="type")])

    @cached_property
    def type_names(self) -> frozenset[str]:
        """The ``type`` of each message this stream carries."""
        return frozenset(str(m.model_fields["type"].default) for m in self.messages)

    def parse(self, payload: bytes | str) -> M:
        """The message in ``payload`` (JSON), or pydantic.ValidationError naming the field."""
        message: M = self.adapter.validate_json(payload)
        return message

    def parse_python(self, payload: object) -> M:
        message: M = self.adapter.validate_python(payload)
        return message


ENVIRONMENT_COMMANDS: Stream[EnvironmentCommand] = Stream(
    name="akros.commands.environments",
    description="Create, stop, start, extend, resize and delete research environments, and "
    "delete their kept volumes.",
    messages=(
        CreateEnvironment,
        DeleteEnvironment,
        DeleteVolume,
        StopEnvironment,
        StartEnvironment,
        ExtendEnvironment,
        ResizeEnvironment,
    ),
    consumer_groups=(Groups.K8S_WORKER,),
)
SERVICE_COMMANDS: Stream[ServiceCommand] = Stream(
    name="akros.commands.services",
    description="Deploy, update and delete in-house services from a JSON spec.",
    messages=(DeployService, DeleteService),
    consumer_groups=(Groups.K8S_WORKER,),
)
SCALE_COMMANDS: Stream[ScaleDeployment] = Stream(
    name="akros.commands.scale",
    description="Set a Deployment's replica count (auto-inference sizing).",
    messages=(ScaleDeployment,),
    consumer_groups=(Groups.K8S_WORKER,),
)
RESULTS: Stream[CommandResult] = Stream(
    name="akros.events.results",
    description="Outcomes of commands: applied or failed, with the reason; and the stages "
    "of an environment's start on its way to one.",
    messages=(
        EnvironmentReady,
        EnvironmentStarting,
        EnvironmentStopped,
        EnvironmentExtended,
        EnvironmentResized,
        EnvironmentDeleted,
        VolumeDeleted,
        DeploymentScaled,
        ServiceDeployed,
        ServiceDeleted,
        CommandFailed,
    ),
    consumer_groups=(Groups.SLACK,),
)
CAPACITY: Stream[CapacityChanged] = Stream(
    name="akros.events.capacity",
    description="Cluster capacity and its use, on every change and at least every few seconds.",
    messages=(CapacityChanged,),
    consumer_groups=(Groups.POLLER,),
    max_length=10_000,
)
USAGE: Stream[WorkloadUsage] = Stream(
    name="akros.events.usage",
    description="Batches of per-workload usage samples.",
    messages=(WorkloadUsage,),
    max_length=10_000,
)
NOTIFICATIONS: Stream[Notification] = Stream(
    name="akros.events.notifications",
    description="Notifications for people: under-used environments, environments about to expire.",
    messages=(UnderusedEnvironment, EnvironmentExpiring),
    consumer_groups=(Groups.SLACK,),
)
DEAD_LETTERS: Stream[MessageDeadLettered] = Stream(
    name="akros.deadletter",
    description="Messages no consumer could process, with the reason and delivery count.",
    messages=(MessageDeadLettered,),
)

ALL_STREAMS: tuple[Stream[Any], ...] = (
    ENVIRONMENT_COMMANDS,
    SERVICE_COMMANDS,
    SCALE_COMMANDS,
    RESULTS,
    CAPACITY,
    USAGE,
    NOTIFICATIONS,
    DEAD_LETTERS,
)

_STREAM_OF: dict[type[Message], Stream[Any]] = {m: s for s in ALL_STREAMS for m in s.messages}


def stream_of(message: Message | type[Message]) -> Stream[Any]:
    """The stream a message type is published on."""
    kind = message if isinstance(message, type) else type(message)
    return _STREAM_OF[kind]
