"""Listeners called directly, as bolt would call them: they acknowledge first, then act
through the shared intake; Slack's side is the local stand-in, the store a real Redis."""

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_bolt.response import BoltResponse

from akros_devtools.slack_standin import SlackStandIn
from akros_msgs import Resources
from akros_msgs.streams import ENVIRONMENT_COMMANDS
from akros_readmodel import EnvironmentStatus, EnvironmentView
from akros_slack import blocks
from akros_slack.frontdoor import FrontDoor
from akros_slack.listeners import Listeners


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


def _respond(standin: SlackStandIn) -> AsyncRespond:
    return AsyncRespond(response_url=standin.response_url("unit"))


def _command(user: str, text: str, channel: str = "CLAB") -> dict[str, str]:
    return {"user_id": user, "text": text, "channel_id": channel, "trigger_id": "t-1"}


def _delete_view(view_id: str, name: str, owner: str | None = None) -> dict[str, Any]:
    return {**blocks.delete_modal(name, owner), "id": view_id, "state": {"values": {}}}


async def _commands_queued(door: FrontDoor) -> int:
    return int(await door.read_model.redis.xlen(ENVIRONMENT_COMMANDS.name))


async def _put(door: FrontDoor, owner: str, name: str) -> None:
    await door.read_model.put_environment(
        EnvironmentView(
            owner=owner,
            name=name,
            status=EnvironmentStatus.READY,
            image="pytorch",
            resources=Resources.of("2", "8Gi"),
            volume_size="20Gi",
            url=f"https://{name}-{owner}",
            request_id=f"r-{name}",
        )
    )


async def test_create_acknowledges_before_it_opens_the_modal(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    ack = Ack(standin)
    await Listeners(door, frozenset()).on_akros(
        ack, _command("UALICE", "create"), _respond(standin)
    )
    assert ack.body == ""
    assert ack.slack_calls_before == []
    assert standin.methods() == ["views.open"]
    assert standin.last("views.open").args == {
        "trigger_id": "t-1",
        "view": blocks.create_modal(door.catalog),
    }


async def test_commands_outside_the_configured_channels_are_refused(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    ack = Ack(standin)
    listeners = Listeners(door, frozenset({"CLAB"}))
    command = _command("UALICE", "create", channel="CRANDOM")
    await listeners.on_akros(ack, command, _respond(standin))
    assert ack.body == "/akros is not available in this channel; use it in <#CLAB>."
    assert standin.methods() == []


async def test_an_invalid_name_to_delete_is_answered_without_a_modal(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    ack = Ack(standin)
    await Listeners(door, frozenset()).on_akros(
        ack, _command("UALICE", "delete Lab_1"), _respond(standin)
    )
    assert ack.body.startswith("'Lab_1' is not a name: it must consist of")
    assert standin.methods() == []


async def test_a_researcher_may_not_delete_someone_elses_environment(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await _put(door, "bob", "lab")
    ack = Ack(standin)
    view = _delete_view("VDEL1", "lab", owner="bob")
    await Listeners(door, frozenset()).on_delete_submitted(ack, {"user": {"id": "UALICE"}}, view)
    assert (ack.body, ack.slack_calls_before) == ("", [])
    posted, refusal = standin.made()
    assert (posted.method, posted.args["channel"]) == ("chat.postMessage", "UALICE")
    assert (refusal.method, refusal.args["ts"]) == ("chat.update", posted.answer["ts"])
    assert refusal.args["text"] == ":no_entry: You may not act on bob's environments or volumes."
    assert await _commands_queued(door) == 0


async def test_an_admin_deletes_someone_elses_environment_through_the_intake(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await _put(door, "bob", "lab")
    view = _delete_view("VDEL2", "lab", owner="bob")
    listeners = Listeners(door, frozenset())
    await listeners.on_delete_submitted(Ack(standin), {"user": {"id": "UADMIN"}}, view)
    assert standin.last("chat.postMessage").args["text"] == (
        ":hourglass_flowing_sand: Deleting *lab*…"
    )
    deleting = await door.read_model.environment("bob", "lab")
    assert deleting is not None
    assert deleting.status is EnvironmentStatus.DELETING
    assert await _commands_queued(door) == 1
    # bob's Home shows it deleting at once, before the worker has done anything
    assert standin.last("views.publish").args["user_id"] == "UBOB"


async def test_the_same_submission_sent_twice_queues_one_command_and_posts_one_message(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await _put(door, "alice", "lab")
    listeners = Listeners(door, frozenset())
    for _ in range(2):
        view = _delete_view("VDEL3", "lab")
        await listeners.on_delete_submitted(Ack(standin), {"user": {"id": "UALICE"}}, view)
    assert await _commands_queued(door) == 1
    assert [c.method for c in standin.made()].count("chat.postMessage") == 1


async def test_opening_the_home_tab_publishes_the_users_environments(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await _put(door, "alice", "lab")
    await _put(door, "bob", "other")
    await Listeners(door, frozenset()).on_home_opened({"user": "UALICE", "tab": "home"})
    published = standin.last("views.publish").args
    assert published["user_id"] == "UALICE"
    lab = await door.read_model.environment("alice", "lab")
    assert lab is not None
    assert published["view"] == blocks.home_view([lab])
    assert "other" not in json.dumps(published)
