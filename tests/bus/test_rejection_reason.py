"""Why an entry was refused, as the dead letter says it: a type the stream does not carry is
named with the stream and what it does carry; anything else names the bad fields."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from akros_bus.bus import rejection_reason
from akros_msgs import Stream
from akros_msgs.streams import CAPACITY, ENVIRONMENT_COMMANDS

ENVELOPE = {"request_id": "r-1", "actor": {"user_id": "alice", "source": "http", "role": "admin"}}


def _reason(stream: Stream[Any], document: object) -> str:
    return _reason_of_body(stream, json.dumps(document).encode())


def _reason_of_body(stream: Stream[Any], body: bytes) -> str:
    with pytest.raises(ValidationError) as refused:
        stream.parse(body)
    return rejection_reason(stream, refused.value)


def test_a_type_a_stream_of_several_does_not_carry_is_named_with_what_it_carries() -> None:
    assert _reason(ENVIRONMENT_COMMANDS, {"type": "snapshot_environment", **ENVELOPE}) == (
        "unknown message type 'snapshot_environment' on stream 'akros.commands.environments' "
        "(it carries: create_environment, delete_environment, delete_volume, extend_environment, "
        "resize_environment, start_environment, stop_environment)"
    )


def test_a_type_a_stream_of_one_does_not_carry_is_named_too() -> None:
    assert _reason(CAPACITY, {"type": "capacity_forecast", **ENVELOPE}) == (
        "unknown message type 'capacity_forecast' on stream 'akros.events.capacity' "
        "(it carries: capacity_changed)"
    )


def test_a_type_that_is_no_string_is_unknown_and_a_huge_one_is_cut_short() -> None:
    assert _reason(CAPACITY, {"type": 7}).startswith("unknown message type 7 on stream")
    huge = _reason(CAPACITY, {"type": "x" * 100_000})
    assert huge.startswith("unknown message type 'xxx")
    assert len(huge) < 300


def test_a_known_type_with_bad_fields_names_the_fields() -> None:
    reason = _reason(ENVIRONMENT_COMMANDS, {"type": "delete_volume", **ENVELOPE})
    assert reason.startswith("malformed message: delete_volume.owner: Field required")


@pytest.mark.parametrize("body", [b"not json", b"[" * 10_000, b'{"type": ' * 10_000])
def test_an_entry_with_no_type_or_no_json_is_malformed(body: bytes) -> None:
    assert _reason(ENVIRONMENT_COMMANDS, ENVELOPE).startswith("malformed message:")
    for stream in (ENVIRONMENT_COMMANDS, CAPACITY):
        assert _reason_of_body(stream, body).startswith("malformed message:")
