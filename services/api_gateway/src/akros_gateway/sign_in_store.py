"""The Redis side of signing in to environments' URLs: the signing key when no Secret gives
one, and each sign-in ticket's single use."""

import secrets

from pydantic import SecretStr
from redis.asyncio import Redis

_SECRET = "akros:auth:sign-in-secret"  # noqa: S105 -- the name of the Redis key, not a secret
_USED_TICKET = "akros:auth:used-ticket:"


async def sign_in_secret(redis: Redis, configured: SecretStr | None) -> tuple[bytes, bool]:
    """The key tickets and sessions are signed with, and whether it came from the settings.

    Without a configured key, the first gateway to start makes one and every replica reads
    the same (SET NX), so a session minted by one replica opens through another.
    """
    if configured is not None:
        return configured.get_secret_value().encode(), True
    await redis.set(_SECRET, secrets.token_urlsafe(48), nx=True)
    stored = await redis.get(_SECRET)
    if stored is None:
        raise RuntimeError(f"{_SECRET} vanished right after it was set")
    return (stored if isinstance(stored, bytes) else stored.encode()), False


async def use_ticket(redis: Redis, nonce: str, ttl_s: float) -> bool:
    """Mark a sign-in ticket used; False if it was used before (a replayed sign-in URL).
    The mark lives as long as the ticket could, so it never outlives its purpose."""
    first = await redis.set(_USED_TICKET + nonce, "1", nx=True, px=max(1, int(ttl_s * 1000)))
    return bool(first)
