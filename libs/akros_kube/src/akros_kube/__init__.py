"""The services' one door to the Kubernetes API (DESIGN.md section 6.3).

Only this package imports the Kubernetes client; services get plain dicts and the errors below.
"""

from akros_kube.cluster import (
    LISTING,
    SYNCED,
    AlreadyExistsError,
    Cluster,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    KubeError,
    NoClusterConfigError,
    NotFoundError,
    RetryPolicy,
    TransientError,
    error_for_status,
    resource_path,
    with_retries,
)

__all__ = [
    "LISTING",
    "SYNCED",
    "AlreadyExistsError",
    "Cluster",
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "InvalidError",
    "KubeError",
    "NoClusterConfigError",
    "NotFoundError",
    "RetryPolicy",
    "TransientError",
    "error_for_status",
    "resource_path",
    "with_retries",
]
