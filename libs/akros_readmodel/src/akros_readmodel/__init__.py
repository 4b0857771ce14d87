"""The read model in Redis: environments, volumes and request outcomes."""

from akros_readmodel.store import (
    LockTimeoutError,
    ReadModel,
    holding_of,
    underuse_exemption_key,
)
from akros_readmodel.views import (
    EnvironmentStatus,
    EnvironmentView,
    RequestState,
    RequestView,
    VolumeView,
    utc_now,
)

__all__ = [
    "EnvironmentStatus",
    "EnvironmentView",
    "LockTimeoutError",
    "ReadModel",
    "RequestState",
    "RequestView",
    "VolumeView",
    "holding_of",
    "underuse_exemption_key",
    "utc_now",
]
