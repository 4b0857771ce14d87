"""The monitor's settings: AKROS_* environment variables, checked at start."""

from pathlib import Path

from pydantic import Field

from akros_bus import BusSettings


class MonitorSettings(BusSettings):
    service_name: str = "monitor"
    kubeconfig: Path | None = Field(
        default=None, description="Kubeconfig file; unset: in-cluster config, then ~/.kube/config"
    )
    kube_proxy_from_environment: bool = Field(
        default=False, description="Reach the API server through HTTPS_PROXY/NO_PROXY"
    )
    capacity_min_interval_s: float = Field(
        default=0.1,
        gt=0,
        le=10,
        description="Changes closer together than this are coalesced into one CapacityChanged",
    )
    capacity_settle_s: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="After a change, wait this long for the rest of its burst (a preemption "
        "is a delete, a bind and a create) before publishing",
    )
    capacity_heartbeat_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="CapacityChanged is published at least this often, changed or not",
    )
