"""An environment's lifetime: how far an extension moves its expiry."""

from datetime import datetime, timedelta


def extended_expiry(expires_at: datetime, now: datetime, by_s: float, limit_s: float) -> datetime:
    """The expiry after extending by ``by_s`` seconds: from the current expiry, or from now
    once it has passed, and never more than ``limit_s`` ahead of now, so that extensions do not
    stack up into an environment that never expires."""
    extended = max(expires_at, now) + timedelta(seconds=by_s)
    return min(extended, now + timedelta(seconds=limit_s))
