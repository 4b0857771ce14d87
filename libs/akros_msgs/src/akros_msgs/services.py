"""The in-house service spec that admins deploy from JSON, and its commands and events."""

from enum import StrEnum
from itertools import pairwise
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from akros_msgs.envelope import Message
from akros_msgs.names import ObjectName, ResourceName
from akros_msgs.quantity import CpuQuantity, MemoryQuantity, PositiveCpu, PositiveMemory

_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# An image reference: [registry[:port]/]path[:tag][@digest], without whitespace.
_IMAGE = r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$"


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Words of a variable's name that say its value is a credential (DATABASE_PASSWORD,
# GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY, OPENAI_API_KEY): such a value must come from a Secret.
_SECRET_WORDS = frozenset({"PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIALS", "APIKEY"})
_KEY_QUALIFIERS = frozenset({"API", "ACCESS", "PRIVATE", "SIGNING", "ENCRYPTION"})


def names_a_credential(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential."""
    words = name.upper().split("_")
    pairs = pairwise(words)
    return bool(_SECRET_WORDS.intersection(words)) or any(
        first in _KEY_QUALIFIERS and second == "KEY" for first, second in pairs
    )


class SecretKeyRef(_Spec):
    """One key of a Secret in the services' namespace, created there by an admin."""

    name: ObjectName
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


class EnvVar(_Spec):
    """A variable of the service's container: a plain ``value``, or a ``secret`` key's.

    A credential is never a plain value: the spec is kept in the read model and shown on
    the dashboard, and a Secret is where the cluster keeps what must not be shown."""

    name: str = Field(pattern=_ENV_NAME, max_length=128)
    value: str = Field(default="", max_length=32_768)
    secret: SecretKeyRef | None = None

    @model_validator(mode="after")
    def _credentials_from_secrets(self) -> Self:
        if self.secret is not None and self.value:
            raise ValueError(f"{self.name}: give a value or a secret, not both")
        if self.secret is None and self.value and names_a_credential(self.name):
            raise ValueError(
                f"{self.name} names a credential: put it in a Secret in the services' "
                f'namespace and give "secret": {{"name": ..., "key": ...}} instead of its value'
            )
        return self


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"


class ServicePort(_Spec):
    port: int = Field(ge=1, le=65535, description="The port the Service exposes")
    target_port: int | None = Field(
        default=None, ge=1, le=65535, description="The container's port; defaults to ``port``"
    )
    name: str | None = Field(default=None, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=15)
    protocol: Protocol = Protocol.TCP


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ServiceResources(_Spec):
    cpu: PositiveCpu = "500m"
    memory: PositiveMemory = "512Mi"
    gpus: int = Field(default=0, ge=0, le=64)
    cpu_limit: CpuQuantity | None = None
    memory_limit: MemoryQuantity | None = None


class Toleration(_Spec):
    key: str | None = Field(default=None, max_length=253)
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class HttpGet(_Spec):
    path: str = Field(default="/", pattern=r"^/", max_length=2048)
    port: int = Field(ge=1, le=65535)


class Probe(_Spec):
    """Exactly one of http_get, tcp_port or command."""

    http_get: HttpGet | None = None
    tcp_port: int | None = Field(default=None, ge=1, le=65535)
    command: list[str] | None = Field(default=None, min_length=1)
    initial_delay_seconds: int = Field(default=0, ge=0, le=3600)
    period_seconds: int = Field(default=10, ge=1, le=3600)
    failure_threshold: int = Field(default=3, ge=1, le=100)

    @model_validator(mode="after")
    def _exactly_one_handler(self) -> Self:
        handlers = [h for h in (self.http_get, self.tcp_port, self.command) if h is not None]
        if len(handlers) != 1:
            raise ValueError("a probe needs exactly one of http_get, tcp_port or command")
        return self


class VolumeSource(StrEnum):
    PVC = "pvc"
    CONFIG_MAP = "config_map"
    SECRET = "secret"  # noqa: S105 -- a kind of volume, not a password
    EMPTY_DIR = "empty_dir"
    HOST_PATH = "host_path"


class Volume(_Spec):
    """A volume mounted into the service's container.

    ``source`` names what backs it; ``ref`` is the claim, ConfigMap or Secret name, or the host
    path. Host paths are allowed only for admins and only where the platform enables them.
    """

    name: ResourceName
    mount_path: str = Field(pattern=r"^/", max_length=4096)
    read_only: bool = False
    source: VolumeSource
    ref: str | None = Field(default=None, max_length=4096)
    size_limit: MemoryQuantity | None = None

    @model_validator(mode="after")
    def _ref_matches_source(self) -> Self:
        if self.source is VolumeSource.EMPTY_DIR:
            if self.ref is not None:
                raise ValueError("ref: an empty_dir volume takes no ref")
        elif not self.ref:
            raise ValueError(f"ref: a {self.source.value} volume needs a ref")
        elif self.source is VolumeSource.HOST_PATH and not self.ref.startswith("/"):
            raise ValueError("ref: a host path must be absolute")
        return self


class Autoscaling(_Spec):
    """A HorizontalPodAutoscaler (autoscaling/v2) on CPU and/or memory utilisation."""

    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    cpu_utilisation: int | None = Field(default=None, ge=1, le=1000, description="Percent")
    memory_utilisation: int | None = Field(default=None, ge=1, le=1000, description="Percent")

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas must be at least min_replicas")
        if self.cpu_utilisation is None and self.memory_utilisation is None:
            raise ValueError("autoscaling needs cpu_utilisation or memory_utilisation")
        return self


class ServiceSpec(_Spec):
    """Everything needed to run an in-house service: Deployment, Service and optional HPA."""

    name: ResourceName
    image: str = Field(pattern=_IMAGE, max_length=512)
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    ports: list[ServicePort] = Field(default_factory=list)
    service_type: ServiceType = ServiceType.CLUSTER_IP
    resources: ServiceResources = ServiceResources()
    replicas: int = Field(default=1, ge=0, le=1000)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    volumes: list[Volume] = Field(default_factory=list)
    autoscaling: Autoscaling | None = None

    # Field validators, so an error names the list ("ports") rather than the whole spec.
    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[ServicePort]) -> list[ServicePort]:
        numbers = [p.port for p in ports]
        if len(numbers) != len(set(numbers)):
            raise ValueError("two ports have the same number")
        names = [p.name for p in ports if p.name]
        if len(names) != len(set(names)):
            raise ValueError("two ports have the same name")
        return ports

    @field_validator("volumes")
    @classmethod
    def _unique_volumes(cls, volumes: list[Volume]) -> list[Volume]:
        if len({v.name for v in volumes}) != len(volumes):
            raise ValueError("two volumes have the same name")
        return volumes

    @field_validator("env")
    @classmethod
    def _unique_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        if len({e.name for e in env}) != len(env):
            raise ValueError("two variables have the same name")
        return env

    @property
    def uses_host_path(self) -> bool:
        return any(v.source is VolumeSource.HOST_PATH for v in self.volumes)


class DeployService(Message):
    """Create or update an in-house service to match ``spec``."""

    type: Literal["deploy_service"] = "deploy_service"
    spec: ServiceSpec


class DeleteService(Message):
    """Delete an in-house service's Deployment, Service and HPA."""

    type: Literal["delete_service"] = "delete_service"
    name: ResourceName


class ServiceDeployed(Message):
    """An in-house service's objects match its spec."""

    type: Literal["service_deployed"] = "service_deployed"
    name: ResourceName
    replicas: int = Field(ge=0)
    autoscaled: bool


class ServiceDeleted(Message):
    """An in-house service's objects are gone."""

    type: Literal["service_deleted"] = "service_deleted"
    name: ResourceName
