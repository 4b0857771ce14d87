"""The committed AsyncAPI document is the one the contract generates."""

from pathlib import Path

from akros_bus.asyncapi import build_document, render
from akros_msgs import ALL_STREAMS

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_the_committed_asyncapi_document_is_current() -> None:
    assert DOCUMENT.read_text() == render(), "stale: run `make asyncapi` and commit the result"


def test_every_stream_and_consumer_group_is_documented() -> None:
    channels = build_document()["channels"]
    for stream in ALL_STREAMS:
        assert f"{stream.name}:publish" in channels
        for group in stream.consumer_groups:
            assert f"{stream.name}:{group}" in channels


def test_every_message_model_has_a_schema() -> None:
    schemas = build_document()["components"]["schemas"]
    for stream in ALL_STREAMS:
        for message in stream.messages:
            assert message.__name__ in schemas
