"""The AsyncAPI document of the message contract, generated with FastStream.

A documentation-only broker declares, for every stream of akros_msgs' catalogue, a publisher
carrying the stream's message models and one subscriber per consumer group. Run
``python -m akros_bus.asyncapi`` (``make asyncapi``) to regenerate docs/asyncapi.json; a test
fails when the committed document is stale.
"""

import json
import operator
import sys
from functools import reduce
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from faststream.specification import AsyncAPI

from akros_msgs import ALL_STREAMS, Message, Stream

TITLE = "Akros event backbone"
VERSION = "1"


def _union(stream: Stream[Any]) -> Any:
    return reduce(operator.or_, stream.messages)


def _declare(broker: RedisBroker, stream: Stream[Any]) -> None:
    broker.publisher(
        stream=stream.name,
        title=f"{stream.name}:publish",
        description=stream.description,
        schema=_union(stream),
    )
    for group in stream.consumer_groups:

        async def consume(message: Message) -> None:
            """Documentation only: the real consumers are in the services."""

        consume.__annotations__["message"] = _union(stream)
        broker.subscriber(
            stream=StreamSub(stream.name, group=group, consumer="documentation"),
            title=f"{stream.name}:{group}",
            description=f"Consumer group '{group}' of {stream.name}",
        )(consume)


def build_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a JSON-ready dict."""
    broker = RedisBroker("redis://redis:6379/0", description="Redis Streams, consumer groups")
    for stream in ALL_STREAMS:
        _declare(broker, stream)
    document: dict[str, Any] = json.loads(
        AsyncAPI(
            broker,
            title=TITLE,
            version=VERSION,
            description=(
                "Commands and events of the Akros research platform. Each stream entry holds "
                "one message as JSON in the field __data__; every message carries the envelope "
                "(message_id, request_id, actor, occurred_at, schema_version) and a type."
            ),
            schema_version="3.0.0",
        )
        .to_specification()
        .to_json()
    )
    return document


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
