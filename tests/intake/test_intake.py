"""The shared intake re-checks a create command's profile whichever front door built it."""

import pytest

from akros_bus import Bus, BusSettings
from akros_intake import Intake, InvalidError
from akros_msgs import Actor, CreateEnvironment, Role, Source
from akros_policy import DEFAULT_CATALOG, QuotaPolicy
from akros_readmodel import ReadModel

ALICE = Actor(user_id="alice", source=Source.SLACK, role=Role.RESEARCHER)


def _command(profile: str | None) -> CreateEnvironment:
    return CreateEnvironment(
        request_id=f"r-{profile}",
        actor=ALICE,
        owner="alice",
        name="lab",
        image="pytorch",
        cpu="2",
        memory="8Gi",
        profile=profile,
    )


async def test_a_command_naming_a_profile_outside_the_catalog_is_refused(redis_url: str) -> None:
    bus = Bus(BusSettings(redis_url=redis_url))
    await bus.connect()
    try:
        read_model = ReadModel(bus.redis)
        intake = Intake(read_model, bus, DEFAULT_CATALOG, QuotaPolicy())
        with pytest.raises(InvalidError) as refused:
            await intake.create(_command("gpu-huge"))
        assert refused.value.field == "profile"
        assert await read_model.request("r-gpu-huge") is None, "nothing was recorded"
        accepted = await intake.create(_command("cpu-small"))
        assert not accepted.replayed
    finally:
        await bus.stop()
