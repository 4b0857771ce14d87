"""Accepting environment commands, shared by every front door (HTTP gateway, Slack app)."""

from akros_intake.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    QuotaExceededError,
    RefusedError,
    UnavailableError,
)
from akros_intake.intake import (
    Accepted,
    Intake,
    check_image,
    check_profile,
    is_same_request,
    pending_request,
    require_access,
    with_profile,
)

__all__ = [
    "Accepted",
    "ConflictError",
    "ForbiddenError",
    "Intake",
    "InvalidError",
    "NotFoundError",
    "QuotaExceededError",
    "RefusedError",
    "UnavailableError",
    "check_image",
    "check_profile",
    "is_same_request",
    "pending_request",
    "require_access",
    "with_profile",
]
