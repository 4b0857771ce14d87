"""The dashboard's one settings class: every AKROS_DASHBOARD_* variable it reads."""

from pydantic import AnyHttpUrl, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AKROS_DASHBOARD_", extra="ignore", frozen=True)

    gateway_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8080"), description="The gateway's base URL"
    )
    host: str = Field(default="127.0.0.1", description="Address the dashboard binds")
    port: int = Field(default=8501, ge=1, le=65535)
    request_timeout_s: float = Field(default=10.0, gt=0, description="One call to the gateway")
    follow_timeout_s: float = Field(
        default=60.0, gt=0, description="How long a deploy or delete is followed until applied"
    )
