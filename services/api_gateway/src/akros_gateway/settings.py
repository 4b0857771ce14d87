"""The gateway's one settings class: every AKROS_* variable it reads, validated at start."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from akros_bus import BusSettings
from akros_intake.cluster_reads import ClusterReadSettings
from akros_intake.intake import DEFAULT_ACCEPT_CONCURRENCY
from akros_policy import EnvironmentDomainSettings, LifetimeSettings, PolicyFileSettings

ONE_MIB = 1024 * 1024


class GatewaySettings(
    BusSettings,
    PolicyFileSettings,
    LifetimeSettings,
    ClusterReadSettings,
    EnvironmentDomainSettings,
):
    """The backbone settings (AKROS_REDIS_URL, AKROS_LOG_LEVEL, ...) plus the gateway's own.

    The catalog and quota files are shared with the k8s_worker (same variable names), so the
    worker re-checks a request against exactly the configuration the gateway checked it with.
    """

    model_config = SettingsConfigDict(env_prefix="AKROS_", extra="ignore", frozen=True)

    service_name: str = "api-gateway"
    gateway_host: str = Field(default="127.0.0.1", description="Address uvicorn binds")
    gateway_port: int = Field(default=8080, ge=1, le=65535)
    bootstrap_admin_token_file: Path | None = Field(
        default=None,
        description="Where to write a first admin token when no admin token exists",
    )
    accept_concurrency: int = Field(
        default=DEFAULT_ACCEPT_CONCURRENCY,
        ge=1,
        le=256,
        description="Requests accepted at once, first come first served (others queue)",
    )
    max_body_bytes: int = Field(default=ONE_MIB, ge=1, description="Larger bodies get 413")
    allow_host_path: bool = Field(
        default=False,
        description="Admins may mount host paths into services (as the k8s_worker's setting)",
    )
    sign_in_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="The key environments' sign-in tickets and session cookies are signed "
        "with (from a Secret; every replica the same). Unset: one is made once and kept in "
        "Redis, which suits a single machine, not a cluster where Redis is reachable by more "
        "than the gateway",
    )
    sign_in_ticket_ttl_s: float = Field(
        default=60,
        gt=0,
        le=600,
        description="How long a sign-in URL from POST /v1/environments/{name}/open stays "
        "valid (it is used once)",
    )
    environment_session_ttl_s: float = Field(
        default=8 * 3600,
        gt=0,
        le=7 * 86_400,
        description="How long a browser stays signed in to an environment's URL",
    )
