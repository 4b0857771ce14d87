"""The read model in Redis: environments, volumes and request outcomes."""

from akros_readmodel.starts import SETTLE_LEASE_S, StartBook, StartRecord
from akros_readmodel.store import (
    CLUSTER_KEY,
    EnvironmentKeys,
    LockTimeoutError,
    ReadModel,
    environment_keys,
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
    pending_environment,
    utc_now,
)

__all__ = [
    "CLUSTER_KEY",
    "SETTLE_LEASE_S",
    "AutoscalerState",
    "ClusterView",
    "EnvironmentKeys",
    "EnvironmentStatus",
    "EnvironmentView",
    "LockTimeoutError",
    "NodeView",
    "ReadModel",
    "RequestState",
    "RequestView",
    "ServiceStatus",
    "ServiceView",
    "StartBook",
    "StartRecord",
    "UsagePoint",
    "VolumeView",
    "environment_keys",
    "holding_of",
    "pending_environment",
    "underuse_exemption_key",
    "utc_now",
]
