"""Bearer tokens: issued to a user with a role, stored only as digests in Redis.

Tokens are 32 random bytes from ``secrets``. With that much entropy nobody can guess a token
from its digest, so a fast, unsalted SHA-256 is an adequate hash: salting and slow hashes
(bcrypt, argon2) exist to protect low-entropy passwords against dictionary attacks, which do
not apply here, and a plain digest lets a request find its token in one HGET.
"""

import hashlib
import os
import secrets
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from akros_msgs import Role
from akros_msgs.names import UserId
from akros_readmodel import utc_now

TOKEN_PREFIX = "akros_"  # noqa: S105 -- marks our tokens, not a secret
# The first characters after the prefix identify a token in listings and revocations. They
# reveal 6 of its 32 random bytes, leaving 208 bits nobody can guess.
SHOWN_CHARACTERS = 8
BOOTSTRAP_ADMIN = "admin"

_TOKENS = "akros:auth:tokens"
_BOOTSTRAP_LOCK = "akros:auth:bootstrap-lock"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def shown_part(token: str) -> str:
    """The part of a token that may be displayed: "akros_" and its first characters."""
    return token[: len(TOKEN_PREFIX) + SHOWN_CHARACTERS]


class TokenRecord(BaseModel):
    """What the gateway knows about a token: never the token itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: UserId
    role: Role
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    created_at: AwareDatetime = Field(default_factory=utc_now)


class IssuedToken(BaseModel):
    model_config = ConfigDict(frozen=True)

    token: str = Field(description="Shown once; only its digest is stored")
    record: TokenRecord


class TokenStore:
    """The Redis adapter for tokens: one hash, digest -> record."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def issue(self, user: str, role: Role) -> IssuedToken:
        if role is Role.SYSTEM:
            raise ValueError("tokens are for people: the role is researcher or admin")
        token = new_token()
        record = TokenRecord(user=user, role=role, prefix=shown_part(token))
        await self.redis.hset(_TOKENS, token_digest(token), record.model_dump_json())
        return IssuedToken(token=token, record=record)

    async def lookup(self, token: str) -> TokenRecord | None:
        raw = await self.redis.hget(_TOKENS, token_digest(token))
        return None if raw is None else TokenRecord.model_validate_json(raw)

    async def records(self) -> dict[str, TokenRecord]:
        """Every token's record by digest, oldest first."""
        raw = await self.redis.hgetall(_TOKENS)
        records = {_text(d): TokenRecord.model_validate_json(r) for d, r in raw.items()}
        return dict(sorted(records.items(), key=lambda item: item[1].created_at))

    async def revoke(self, *, user: str | None = None, prefix: str | None = None) -> int:
        """Revoke every token of ``user``, or the one whose shown part is ``prefix`` (as
        listed); returns how many were revoked."""
        if (user is None) == (prefix is None):
            raise ValueError("revoke by user or by prefix, not both or neither")
        doomed = [
            digest
            for digest, record in (await self.records()).items()
            if record.user == user or record.prefix == prefix
        ]
        if not doomed:
            return 0
        removed: int = await self.redis.hdel(_TOKENS, *doomed)
        return removed

    async def has_admin(self) -> bool:
        return any(r.role is Role.ADMIN for r in (await self.records()).values())

    async def bootstrap_admin(self, path: Path) -> IssuedToken | None:
        """When no admin token exists, issue one and write it to ``path`` (mode 0600).

        A short Redis lock keeps two replicas starting together from issuing two.
        """
        if not await self.redis.set(_BOOTSTRAP_LOCK, "1", nx=True, px=10_000):
            return None
        try:
            if await self.has_admin():
                return None
            issued = await self.issue(BOOTSTRAP_ADMIN, Role.ADMIN)
            write_secret(path, issued.token + "\n")
            return issued
        finally:
            await self.redis.delete(_BOOTSTRAP_LOCK)


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, created with that mode from the start
    so that it is never readable by others, even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # O_CREAT's mode does not apply to a file that already existed: tighten it before writing.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
