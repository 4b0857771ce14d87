"""How a message sits in a stream entry: field ``__data__`` holds the message's JSON.

Plain JSON rather than FastStream's binary framing, so that any program (redis-cli, another
language) can read the platform's events; everything that framing would carry (ids, request id,
timestamps) is in the envelope already.
"""

from typing import Any

from faststream.redis.parser.message import MessageFormat

DATA_FIELD = b"__data__"


class JsonMessageFormat(MessageFormat):
    """Stores the message body as it is; the body is the JSON of an akros_msgs model."""

    __slots__ = ()

    @classmethod
    async def encode(cls, *, message: Any, **_: Any) -> bytes:
        if isinstance(message, bytes):
            return message
        if isinstance(message, str):
            return message.encode()
        raise TypeError("publish akros_msgs messages through akros_bus.Bus.publish")

    @classmethod
    def parse(cls, data: bytes) -> tuple[bytes, dict[str, Any]]:
        return data, {}


def entry_as_text(fields: dict[bytes, bytes]) -> dict[str, str]:
    """A stream entry's fields as readable text, whatever bytes they held."""
    return {
        key.decode(errors="backslashreplace"): value.decode(errors="backslashreplace")
        for key, value in fields.items()
    }
