"""The envelope every message carries: who asked, which request it belongs to, and when."""

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from akros_msgs.names import UserId

SCHEMA_VERSION: Literal[1] = 1


class Source(StrEnum):
    """Where a request entered the platform."""

    SLACK = "slack"
    HTTP = "http"
    SYSTEM = "system"


class Role(StrEnum):
    """What an actor may do: researchers act on their own environments, admins on all."""

    RESEARCHER = "researcher"
    ADMIN = "admin"
    SYSTEM = "system"


class Actor(BaseModel):
    """The authenticated identity on whose behalf a message was sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: UserId
    source: Source
    role: Role


SYSTEM_ACTOR = Actor(user_id="akros", source=Source.SYSTEM, role=Role.SYSTEM)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    """A fresh request id; callers that retry must reuse the id they were given."""
    return uuid4().hex


def request_id_of_key(user_id: str, idempotency_key: str) -> str:
    """The request id of a caller's own idempotency key: ``<user>:<digest of the key>``.

    Keys are the caller's, not global: another user sending the same key makes a request of
    their own rather than colliding with (or learning of) this one. A user id has no ':'
    and the digest is of fixed length, so no two (user, key) pairs share an id; 30 + 1 + 32
    characters fit the request id's 64."""
    digest = hashlib.blake2b(idempotency_key.encode(), digest_size=16).hexdigest()
    return f"{user_id}:{digest}"


class Message(BaseModel):
    """Base of every command and event: the envelope fields, then the message's own fields.

    ``type`` names the message and is the discriminator that picks the model when a stream
    carries several kinds. ``request_id`` ties every message of one user request together and
    is the idempotency key of commands. Unknown fields are rejected so that a typo in a producer
    fails loudly instead of being dropped.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    message_id: UUID = Field(default_factory=uuid4)
    request_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    actor: Actor
    occurred_at: AwareDatetime = Field(default_factory=_utc_now)
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)
