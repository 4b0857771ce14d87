"""Every message round-trips through JSON, and bad payloads fail naming the field."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from akros_msgs import (
    ALL_STREAMS,
    Actor,
    CapacityChanged,
    CommandFailed,
    CommandResult,
    CreateEnvironment,
    DeleteEnvironment,
    DeployService,
    EnvironmentCommand,
    FailureCode,
    Message,
    NodeCapacity,
    Resources,
    ResourceUse,
    Role,
    ScaleDeployment,
    ServiceCommand,
    Source,
    Stream,
    stream_of,
)
from akros_msgs.services import ServiceSpec
from akros_msgs.streams import ENVIRONMENT_COMMANDS, RESULTS, SERVICE_COMMANDS

ALICE = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)


def _create(**overrides: object) -> CreateEnvironment:
    fields: dict[str, object] = {
        "request_id": "req-1",
        "actor": ALICE,
        "owner": "alice",
        "name": "exp-1",
        "image": "pytorch",
        "cpu": "4",
        "memory": "16Gi",
    }
    fields.update(overrides)
    return CreateEnvironment.model_validate(fields)


def _error_locations(error: ValidationError) -> set[tuple[int | str, ...]]:
    return {tuple(e["loc"]) for e in error.errors()}


def _examples() -> list[Message]:
    capacity = Resources.of("64", "512Gi", 8)
    return [
        _create(gpus=2, gpu_model="A100", dedicated_cores=True),
        _create(profile="gpu-single"),
        DeleteEnvironment(request_id="req-2", actor=ALICE, owner="alice", name="exp-1"),
        ScaleDeployment(
            request_id="req-3", actor=ALICE, namespace="inference", deployment="auto", replicas=3
        ),
        CommandFailed(
            request_id="req-1",
            actor=ALICE,
            command_type="create_environment",
            code=FailureCode.UNSCHEDULABLE,
            reason="No node has 64 free GPUs; the largest has 8.",
        ),
        CapacityChanged(
            request_id="cap-1",
            actor=ALICE,
            observed_at=datetime.now(UTC),
            nodes=[NodeCapacity(node="gpu-1", allocatable=capacity, requested=ResourceUse())],
            allocatable=capacity,
            requested=ResourceUse(inference=Resources.of("8", "32Gi", 4)),
            pending=Resources(),
        ),
        DeployService(
            request_id="svc-1",
            actor=ALICE,
            spec=ServiceSpec.model_validate(
                {"name": "pricing", "image": "registry.local/pricing:1.2", "ports": [{"port": 80}]}
            ),
        ),
    ]


@pytest.mark.parametrize("message", _examples(), ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_its_stream(message: Message) -> None:
    stream = stream_of(message)
    assert stream.parse(message.model_dump_json()) == message


def test_each_message_type_lives_on_exactly_one_stream() -> None:
    seen = [m for s in ALL_STREAMS for m in s.messages]
    assert len(seen) == len(set(seen))


def test_the_envelope_is_filled_in_and_kept_in_utc() -> None:
    local = timezone(timedelta(hours=9))
    message = _create(occurred_at=datetime(2026, 1, 1, 9, 0, tzinfo=local))
    assert message.occurred_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert message.occurred_at.tzinfo == UTC
    assert message.schema_version == 1
    assert message.message_id != _create().message_id


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        _create(occurred_at=datetime(2026, 1, 1))  # noqa: DTZ001 -- the point of the test
    assert ("occurred_at",) in _error_locations(caught.value)


def test_quantities_are_normalised_in_commands() -> None:
    message = _create(cpu="0.5", memory="4096Mi", volume_size="1Ti")
    assert (message.cpu, message.memory, message.volume_size) == ("500m", "4Gi", "1Ti")
    assert message.resources == Resources(cpu_millis=500, memory_bytes=4 * 2**30)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "My_Env"}, "name"),
        ({"name": "1abc"}, "name"),
        ({"name": "a" * 31}, "name"),
        ({"owner": "Alice"}, "owner"),
        ({"cpu": "lots"}, "cpu"),
        ({"cpu": "0"}, "cpu"),
        ({"memory": "-1Gi"}, "memory"),
        ({"gpus": 65}, "gpus"),
        ({"gpus": -1}, "gpus"),
        ({"profile": "GPU single"}, "profile"),
        ({"request_id": ""}, "request_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_refused_by_name(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _create(**overrides)
    assert (field,) in _error_locations(caught.value)


def test_dedicated_cores_need_whole_cpus() -> None:
    with pytest.raises(ValidationError, match="dedicated cores need a whole number"):
        _create(cpu="1500m", dedicated_cores=True)


def test_a_stream_rejects_a_message_of_an_unknown_type() -> None:
    stream = stream_of(CreateEnvironment)
    with pytest.raises(ValidationError) as caught:
        stream.parse('{"type": "launch_rockets"}')
    assert "type" in str(caught.value)


def test_a_service_spec_refuses_two_ports_with_the_same_number() -> None:
    with pytest.raises(ValidationError, match="two ports have the same number"):
        ServiceSpec.model_validate(
            {"name": "web", "image": "nginx:1", "ports": [{"port": 80}, {"port": 80}]}
        )


@pytest.mark.parametrize(
    "name", ["DB_PASSWORD", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "passwd"]
)
def test_a_credential_in_a_service_spec_must_come_from_a_secret(name: str) -> None:
    with pytest.raises(ValidationError, match=f"{name} names a credential: put it in a Secret"):
        ServiceSpec.model_validate(
            {"name": "web", "image": "nginx:1", "env": [{"name": name, "value": "hunter2"}]}
        )
    from_secret = {"name": name, "secret": {"name": "web-keys", "key": "value"}}
    spec = ServiceSpec.model_validate({"name": "web", "image": "nginx:1", "env": [from_secret]})
    assert spec.env[0].secret is not None
    assert spec.env[0].value == ""


@pytest.mark.parametrize("name", ["MODE", "KEYBOARD", "PWD", "TOKENIZERS_PARALLELISM", "HOTKEY"])
def test_variables_that_name_no_credential_take_plain_values(name: str) -> None:
    spec = ServiceSpec.model_validate(
        {"name": "web", "image": "nginx:1", "env": [{"name": name, "value": "x"}]}
    )
    assert spec.env[0].value == "x"


def test_a_variable_takes_a_value_or_a_secret_not_both() -> None:
    both = {"name": "MODE", "value": "live", "secret": {"name": "s", "key": "k"}}
    with pytest.raises(ValidationError, match="give a value or a secret, not both"):
        ServiceSpec.model_validate({"name": "web", "image": "nginx:1", "env": [both]})


def test_resources_describe_themselves_for_people() -> None:
    assert Resources.of("4", "16Gi", 2).describe() == "4 CPU, 16Gi memory, 2 GPUs"
    assert Resources.of("500m", "512Mi").describe() == "500m CPU, 512Mi memory"


@pytest.mark.parametrize(
    ("stream", "union"),
    [
        (ENVIRONMENT_COMMANDS, EnvironmentCommand),
        (SERVICE_COMMANDS, ServiceCommand),
        (RESULTS, CommandResult),
    ],
    ids=lambda value: getattr(value, "name", ""),
)
def test_a_streams_union_type_is_exactly_the_messages_it_carries(
    stream: Stream[Any], union: Any
) -> None:
    """Handlers match over the union; the parser builds from the tuple: they must agree."""
    assert set(get_args(union)) == set(stream.messages)
