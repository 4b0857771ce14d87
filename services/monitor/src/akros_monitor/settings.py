"""The monitor's settings: AKROS_* environment variables, checked at start."""

from pathlib import Path

from pydantic import Field

from akros_bus import BusSettings
from akros_policy import CatalogFileSettings


class MonitorSettings(BusSettings, CatalogFileSettings):
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
    cluster_view_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="The read model's cluster view (GET /v1/cluster) is written with a "
        "published change at most this often; a later change waits out the interval",
    )
    usage_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Pod metrics and GPU utilisation are sampled this often (one request each)",
    )
    gpu_exporter_namespace: str = Field(
        default="gpu-operator",
        min_length=1,
        description="Where NVIDIA's GPU operator runs its dcgm-exporter DaemonSet",
    )
    gpu_exporter_selector: str = Field(
        default="app=nvidia-dcgm-exporter",
        min_length=1,
        description="The label selector of the dcgm-exporter pods (one per GPU node)",
    )
    gpu_exporter_port: int = Field(
        default=9400, gt=0, lt=65536, description="The exporters' metrics port"
    )
    gpu_exporter_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="An exporter that has not answered a scrape by then counts as silent: "
        "its node's GPU use is unknown for the cycle",
    )
    usage_batch_size: int = Field(
        default=1000,
        gt=0,
        description="Samples per WorkloadUsage message; a cycle publishes them in one round trip",
    )
    underuse_threshold: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="An environment using less than this fraction of its CPU request (and of "
        "its GPUs, where their utilisation is known) is under-used",
    )
    underuse_grace_s: float = Field(
        default=4 * 3600.0,
        ge=0,
        description="How long under-use must last before its owner is notified",
    )
    underuse_minimum_age_s: float = Field(
        default=15 * 60.0,
        ge=0,
        description="Samples of an environment younger than this are ignored (starting looks idle)",
    )
    underuse_cool_down_s: float = Field(
        default=24 * 3600.0,
        ge=0,
        description="After a notification, the next for the same streak waits at least this long",
    )
    monitor_metrics_port: int = Field(
        default=9102,
        ge=0,
        le=65535,
        description="Port of the monitor's Prometheus /metrics; 0 turns it off",
    )
    monitor_metrics_host: str = Field(
        default="127.0.0.1", description="Address /metrics listens on (0.0.0.0 in a pod)"
    )
    usage_history_step_s: float = Field(
        default=300.0,
        gt=0,
        description="Usage history keeps one point (the means) per environment per step",
    )
    usage_history_days: float = Field(
        default=7.0, gt=0, le=90, description="How far back the usage history reaches"
    )

    @property
    def usage_history_points(self) -> int:
        return max(1, int(self.usage_history_days * 86400 / self.usage_history_step_s))
