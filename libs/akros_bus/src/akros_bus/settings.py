"""Settings every service shares for the event backbone; services extend this class."""

import os
import socket
import uuid

from pydantic import Field, RedisDsn
from pydantic_settings import BaseSettings, SettingsConfigDict


def unique_consumer_name() -> str:
    """host (the pod name in Kubernetes) + pid + a random suffix: unique per process, so
    replicas never share a consumer and a restarted process never inherits a dead one's
    pending list by accident (those are reclaimed explicitly instead)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


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
