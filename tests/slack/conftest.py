"""A front door on real Redis whose Web API client talks to the local Slack stand-in."""

from collections.abc import AsyncIterator, Iterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from akros_bus import Bus, BusSettings
from akros_devtools.slack_standin import SlackStandIn, running_standin
from akros_intake import Intake
from akros_policy import DEFAULT_CATALOG, QuotaPolicy
from akros_readmodel import ReadModel
from akros_slack.frontdoor import FrontDoor
from akros_slack.identity import Directory
from akros_slack.store import SlackStore

DIRECTORY = Directory({"UALICE": "alice", "UBOB": "bob", "UADMIN": "root"}, frozenset({"UADMIN"}))


@pytest.fixture(scope="module")
def standin() -> Iterator[SlackStandIn]:
    with running_standin() as running:
        yield running


@pytest.fixture
async def door(redis_url: str, standin: SlackStandIn) -> AsyncIterator[FrontDoor]:
    standin.clear()
    bus = Bus(BusSettings(redis_url=redis_url))
    await bus.connect()
    read_model = ReadModel(bus.redis)
    try:
        yield FrontDoor(
            intake=Intake(read_model, bus, DEFAULT_CATALOG, QuotaPolicy()),
            read_model=read_model,
            store=SlackStore(bus.redis),
            directory=DIRECTORY,
            client=AsyncWebClient(token="xoxb-unit", base_url=standin.api_url),
            keep_hours=24,
        )
    finally:
        await bus.stop()
