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
    body = json.dumps(document).encode()
    with pytest.raises(ValidationError) as refused:
        stream.parse(body)
    return rejection_reason(stream, body, refused.value)


def test_a_type_a_stream_of_several_does_not_carry_is_named_with_what_it_carries() -> None:
    assert _reason(ENVIRONMENT_COMMANDS, {"type": "resize_environment", **ENVELOPE}) == (
        "unknown message type 'resize_environment' on stream 'akros.commands.environments' "
        "(it carries: create_environment, delete_environment, delete_volume)"
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


def test_an_entry_with_no_type_or_no_json_is_malformed() -> None:
    assert _reason(ENVIRONMENT_COMMANDS, ENVELOPE).startswith("malformed message:")
    with pytest.raises(ValidationError) as refused:
        CAPACITY.parse(b"not json")
    assert rejection_reason(CAPACITY, b"not json", refused.value).startswith("malformed")
