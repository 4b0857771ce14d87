"""What the Slack app remembers in Redis, under "akros:slack:": where each request's message
is (so its outcome can replace it), which notifications were sent (so a redelivery does not
send a second DM), and the create that finishes a shrink once the delete is done."""

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

_PREFIX = "akros:slack"
REMEMBER_S = 7 * 24 * 3600


class MessageRef(BaseModel):
    """A posted message: its conversation and timestamp, as chat.update needs them."""

    model_config = ConfigDict(frozen=True)

    channel: str
    ts: str


@dataclass(frozen=True)
class SlackStore:
    redis: Redis

    async def remember_message(self, request_id: str, ref: MessageRef) -> None:
        await self.redis.set(f"{_PREFIX}:msg:{request_id}", ref.model_dump_json(), ex=REMEMBER_S)

    async def message(self, request_id: str) -> MessageRef | None:
        raw = await self.redis.get(f"{_PREFIX}:msg:{request_id}")
        return None if raw is None else MessageRef.model_validate_json(raw)

    async def claim_notification(self, message_id: str) -> bool:
        """True for the first delivery of a notification, False for every repeat."""
        key = f"{_PREFIX}:notified:{message_id}"
        return bool(await self.redis.set(key, "1", nx=True, ex=REMEMBER_S))

    async def release_notification(self, message_id: str) -> None:
        """The DM could not be sent: let the redelivery try again."""
        await self.redis.delete(f"{_PREFIX}:notified:{message_id}")
