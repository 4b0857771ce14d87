"""A front door on real Redis whose Web API client talks to the local Slack stand-in, and what
the tests call listeners with: bolt's own ack, a respond posting to the stand-in, the payloads
Slack sends. Shared with tests/resilience (the Slack authorization matrix)."""

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import pytest
from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from akros_bus import Bus, BusSettings
from akros_devtools.slack_standin import SlackStandIn, running_standin
from akros_intake import Intake
from akros_msgs import Resources
from akros_msgs.streams import ENVIRONMENT_COMMANDS
from akros_policy import DEFAULT_CATALOG, QuotaPolicy
from akros_readmodel import EnvironmentStatus, EnvironmentView, ReadModel
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


class Ack(AsyncAck):
    """Bolt's own ack(), noting which Web API calls had been made when it was called."""

    def __init__(self, standin: SlackStandIn) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # slack-bolt leaves it unannotated
        self.standin = standin
        self.slack_calls_before: list[str] | None = None

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        if self.slack_calls_before is None:
            self.slack_calls_before = self.standin.methods()
        return await super().__call__(*args, **kwargs)

    @property
    def body(self) -> str:
        assert self.response is not None, "ack() was never called"
        return str(self.response.body)


def respond_to(standin: SlackStandIn) -> AsyncRespond:
    return AsyncRespond(response_url=standin.response_url("unit"))


def slash_command(user: str, text: str, channel: str = "CLAB") -> dict[str, str]:
    return {"user_id": user, "text": text, "channel_id": channel, "trigger_id": "t-1"}


async def commands_queued(door: FrontDoor) -> int:
    return int(await door.read_model.redis.xlen(ENVIRONMENT_COMMANDS.name))


async def put_environment(
    door: FrontDoor,
    owner: str,
    name: str,
    status: EnvironmentStatus = EnvironmentStatus.READY,
    expires_at: datetime | None = None,
) -> None:
    """A ready (or ``status``) environment in the read model, as the worker's outcome leaves
    it."""
    await door.read_model.put_environment(
        EnvironmentView(
            owner=owner,
            name=name,
            status=status,
            image="pytorch",
            resources=Resources.of("2", "8Gi"),
            volume_size="20Gi",
            url=f"https://{name}-{owner}",
            request_id=f"r-{name}",
            expires_at=expires_at,
        )
    )


async def status_of(door: FrontDoor, owner: str, name: str) -> EnvironmentStatus | None:
    """The environment's status in the read model; None when it has no view."""
    view = await door.read_model.environment(owner, name)
    return None if view is None else view.status
