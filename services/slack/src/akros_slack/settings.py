"""The Slack app's one settings class: every AKROS_* variable it reads, validated at start.

Tokens and the signing secret are ``SecretStr``: their repr is masked, so neither logs nor
tracebacks ever show them.
"""

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from akros_bus import BusSettings
from akros_intake.cluster_reads import ClusterReadSettings
from akros_msgs.names import UserId
from akros_policy import LifetimeSettings, PolicyFileSettings

SLACK_API_URL = "https://slack.com/api/"


class SlackMode(StrEnum):
    """How Slack reaches the app: over a WebSocket the app opens (no public endpoint, the
    cluster sits behind a VPN), or by signed HTTP requests to ``slack_port``."""

    SOCKET = "socket"
    HTTP = "http"


class SlackSettings(BusSettings, PolicyFileSettings, LifetimeSettings, ClusterReadSettings):
    """The backbone settings (AKROS_REDIS_URL, AKROS_LOG_LEVEL, ...) plus the app's own.

    The catalog and quota files are the gateway's and the worker's (same variable names), so a
    request from Slack is checked against exactly the same configuration as one over HTTP.
    """

    model_config = SettingsConfigDict(env_prefix="AKROS_", extra="ignore", frozen=True)

    service_name: str = "slack"
    slack_mode: SlackMode = SlackMode.SOCKET
    slack_bot_token: SecretStr = Field(description="The bot token (xoxb-...)")
    slack_app_token: SecretStr | None = Field(
        default=None, description="App-level token (xapp-...) with connections:write; socket mode"
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Verifies the signature of every request; HTTP mode"
    )
    slack_host: str = Field(default="127.0.0.1", description="Address the HTTP mode binds")
    slack_port: int = Field(default=3000, ge=1, le=65535)
    slack_path: str = Field(default="/slack/events", pattern=r"^/")
    slack_api_url: str = Field(
        default=SLACK_API_URL,
        description="Base URL of the Slack Web API; tests point it at a local stand-in",
    )
    slack_users: dict[str, UserId] = Field(
        default_factory=dict,
        description='Slack user id -> platform user, as JSON: {"U0123ABC": "alice"}',
    )
    slack_users_file: Path | None = Field(
        default=None, description="YAML mapping of Slack user id -> platform user, merged in"
    )
    slack_admins: frozenset[str] = Field(
        default=frozenset(), description='Slack user ids acting as admins, as JSON: ["U0123ABC"]'
    )
    slack_channels: frozenset[str] = Field(
        default=frozenset(),
        description="Channel ids where /akros is accepted; empty: everywhere",
    )
    keep_hours: float = Field(
        default=72, gt=0, le=24 * 90, description="How long 'keep' exempts from under-use nudges"
    )

    @model_validator(mode="after")
    def _mode_has_its_credential(self) -> Self:
        if self.slack_mode is SlackMode.SOCKET and self.slack_app_token is None:
            raise ValueError("socket mode needs AKROS_SLACK_APP_TOKEN (xapp-...)")
        if self.slack_mode is SlackMode.HTTP and self.slack_signing_secret is None:
            raise ValueError("HTTP mode needs AKROS_SLACK_SIGNING_SECRET")
        return self
