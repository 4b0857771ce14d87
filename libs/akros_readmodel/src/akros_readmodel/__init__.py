"""The read model in Redis: environments, volumes and request outcomes."""

from akros_readmodel.store import (
    CLUSTER_KEY,
    LockTimeoutError,
    ReadModel,
    holding_of,
    underuse_exemption_key,
)
from akros_readmodel.views import (
    AutoscalerState,
    ClusterView,
    EnvironmentStatus,
    EnvironmentView,
    NodeView,
    RequestState,
    RequestView,
    ServiceStatus,
    ServiceView,
    UsagePoint,
    VolumeView,
    utc_now,
)

__all__ = [
    "CLUSTER_KEY",
    "AutoscalerState",
    "ClusterView",
    "EnvironmentStatus",
    "EnvironmentView",
    "LockTimeoutError",
    "NodeView",
    "ReadModel",
    "RequestState",
    "RequestView",
    "ServiceStatus",
    "ServiceView",
    "UsagePoint",
    "VolumeView",
    "holding_of",
    "underuse_exemption_key",
    "utc_now",
]
