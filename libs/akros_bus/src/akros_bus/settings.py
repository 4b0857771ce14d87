"""Settings every service shares for the event backbone; services extend this class."""

import os
import socket
import uuid
from typing import TypeVar

from pydantic import Field, RedisDsn, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


def unique_consumer_name() -> str:
    """host (the pod name in Kubernetes) + pid + a random suffix: unique per process, so
    replicas never share a consumer and a restarted process never inherits a dead one's
    pending list by accident (those are reclaimed explicitly instead)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class BusSettings(BaseSettings):
    """Read from AKROS_* environment variables; invalid values stop the service at start."""

    model_config = SettingsConfigDict(env_prefix="AKROS_", extra="ignore", frozen=True)

    service_name: str = Field(default="akros", description="Names the service in logs")
    redis_url: RedisDsn = Field(default=RedisDsn("redis://127.0.0.1:6379/0"))
    consumer_name: str = Field(default_factory=unique_consumer_name, min_length=1)
    redis_max_connections: int = Field(
        default=1024,
        ge=8,
        description="Connection pool size; each message in flight may hold a connection",
    )
    read_count: int = Field(default=100, ge=1, le=10_000, description="Entries per read")
    poll_interval_ms: int = Field(default=100, ge=1, le=60_000, description="Blocking read time")
    reclaim_idle_ms: int = Field(
        default=30_000,
        ge=100,
        description="A message pending this long (its consumer died or hangs) is taken over",
    )
    reclaim_interval_ms: int = Field(default=1_000, ge=10, description="How often to look")
    max_deliveries: int = Field(
        default=5, ge=1, le=1_000, description="Deliveries before a message is dead-lettered"
    )
    graceful_timeout_s: float = Field(
        default=15.0, gt=0, description="On shutdown, how long to let in-flight messages finish"
    )
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=0, ge=0, le=65535, description="0 disables the endpoint")


def settings_problems(settings_class: type[BaseSettings], error: ValidationError) -> str:
    """What is wrong with the environment, one line per variable, named as it is set
    (AKROS_STORAGE_CLASS, not storage_class), with the setting's description."""
    prefix = str(settings_class.model_config.get("env_prefix", ""))
    lines = [f"{settings_class.__name__}: invalid or missing settings"]
    for problem in error.errors():
        field_name = str(problem["loc"][0]) if problem["loc"] else ""
        variable = (prefix + field_name).upper()
        info = settings_class.model_fields.get(field_name)
        about = f" ({info.description})" if info is not None and info.description else ""
        lines.append(f"  {variable}: {problem['msg']}{about}")
    return "\n".join(lines)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """The service's settings from the environment, or exit at once saying which variable is
    wrong: a traceback from deep in pydantic names the field, not what to set."""
    try:
        return settings_class()
    except ValidationError as error:
        raise SystemExit(settings_problems(settings_class, error)) from None
