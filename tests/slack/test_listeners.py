"""Listeners called directly, as bolt would call them: they acknowledge first, then act
through the shared intake; Slack's side is the local stand-in, the store a real Redis."""

import json
from typing import Any

from akros_devtools.slack_standin import SlackStandIn
from akros_msgs import Resources, StartEnvironment, StopEnvironment
from akros_readmodel import EnvironmentStatus
from akros_slack import blocks
from akros_slack.frontdoor import FrontDoor
from akros_slack.listeners import Listeners
from tests.gateway.helpers import published_commands
from tests.slack.conftest import (
    Ack,
    commands_queued,
    put_environment,
    respond_to,
    slash_command,
    status_of,
)


def _delete_view(view_id: str, name: str, owner: str | None = None) -> dict[str, Any]:
    return {**blocks.delete_modal(name, owner), "id": view_id, "state": {"values": {}}}


async def test_create_acknowledges_before_it_opens_the_modal(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    ack = Ack(standin)
    await Listeners(door, frozenset()).on_akros(
        ack, slash_command("UALICE", "create"), respond_to(standin)
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
    command = slash_command("UALICE", "create", channel="CRANDOM")
    await listeners.on_akros(ack, command, respond_to(standin))
    assert ack.body == "/akros is not available in this channel; use it in <#CLAB>."
    assert standin.methods() == []


async def test_an_invalid_name_to_delete_is_answered_without_a_modal(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    ack = Ack(standin)
    await Listeners(door, frozenset()).on_akros(
        ack, slash_command("UALICE", "delete Lab_1"), respond_to(standin)
    )
    assert ack.body.startswith("'Lab_1' is not a name: it must consist of")
    assert standin.methods() == []


async def test_a_researcher_may_not_delete_someone_elses_environment(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await put_environment(door, "bob", "lab")
    ack = Ack(standin)
    view = _delete_view("VDEL1", "lab", owner="bob")
    await Listeners(door, frozenset()).on_delete_submitted(ack, {"user": {"id": "UALICE"}}, view)
    assert json.loads(ack.body) == {
        "response_action": "errors",
        "errors": {
            "purge_volume": "You may not act on bob's environments: researchers act on their "
            "own only; ask bob or an admin."
        },
    }
    assert standin.methods() == []
    assert await commands_queued(door) == 0
    untouched = await door.read_model.environment("bob", "lab")
    assert untouched is not None
    assert untouched.status is EnvironmentStatus.READY


async def test_an_admin_deletes_someone_elses_environment_through_the_intake(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await put_environment(door, "bob", "lab")
    view = _delete_view("VDEL2", "lab", owner="bob")
    listeners = Listeners(door, frozenset())
    await listeners.on_delete_submitted(Ack(standin), {"user": {"id": "UADMIN"}}, view)
    assert standin.last("chat.postMessage").args["text"] == (
        ":hourglass_flowing_sand: Deleting *lab*…"
    )
    deleting = await door.read_model.environment("bob", "lab")
    assert deleting is not None
    assert deleting.status is EnvironmentStatus.DELETING
    assert await commands_queued(door) == 1
    # bob's Home shows it deleting at once, before the worker has done anything
    assert standin.last("views.publish").args["user_id"] == "UBOB"


async def test_the_same_submission_sent_twice_queues_one_command_and_posts_one_message(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await put_environment(door, "alice", "lab")
    listeners = Listeners(door, frozenset())
    for _ in range(2):
        view = _delete_view("VDEL3", "lab")
        await listeners.on_delete_submitted(Ack(standin), {"user": {"id": "UALICE"}}, view)
    assert await commands_queued(door) == 1
    assert [c.method for c in standin.made()].count("chat.postMessage") == 1


async def test_opening_the_home_tab_publishes_the_users_environments(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await put_environment(door, "alice", "lab")
    await put_environment(door, "bob", "other")
    await Listeners(door, frozenset()).on_home_opened({"user": "UALICE", "tab": "home"})
    published = standin.last("views.publish").args
    assert published["user_id"] == "UALICE"
    lab = await door.read_model.environment("alice", "lab")
    assert lab is not None
    assert published["view"] == blocks.home_view([lab])
    assert "other" not in json.dumps(published)


async def test_keep_for_an_environment_that_does_not_exist_says_so_and_exempts_nothing(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    body = {
        "user": {"id": "UADMIN"},
        "container": {"type": "message", "channel_id": "DUADMIN", "message_ts": "9.0001"},
    }
    listeners = Listeners(door, frozenset())
    for value in ("gone", "bob/gone"):
        await listeners.on_keep_pressed(Ack(standin), body, {"value": value})
    assert [c.args["text"] for c in standin.made()] == [
        "You have no environment named 'gone'.",
        "bob has no environment named 'gone'.",
    ]
    assert not await door.read_model.underuse_exempt("root", "gone")
    assert not await door.read_model.underuse_exempt("bob", "gone")


async def test_a_modal_whose_metadata_names_no_environment_is_refused_in_the_modal(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    listeners = Listeners(door, frozenset())
    for metadata in ("not json", '["lab"]', '{"name": "Lab_1"}'):
        ack = Ack(standin)
        view = {**_delete_view("VBAD", "lab"), "private_metadata": metadata}
        await listeners.on_delete_submitted(ack, {"user": {"id": "UALICE"}}, view)
        (shown,) = json.loads(ack.body)["errors"].values()
        assert shown.startswith(("'' is not a name", "'Lab_1' is not a name"))
    assert standin.methods() == []
    assert await commands_queued(door) == 0


async def test_stop_by_slash_command_posts_its_message_then_queues_the_stop(
    door: FrontDoor, standin: SlackStandIn, redis_url: str
) -> None:
    await put_environment(door, "alice", "lab")
    ack = Ack(standin)
    command = {**slash_command("UALICE", "stop lab"), "trigger_id": "t-stop"}
    await Listeners(door, frozenset()).on_akros(ack, command, respond_to(standin))

    assert (ack.body, ack.slack_calls_before) == ("", [])
    assert standin.methods() == ["chat.postMessage", "views.publish"]
    assert standin.last("chat.postMessage").args["text"] == (
        ":hourglass_flowing_sand: Stopping *lab*…"
    )
    [stop] = published_commands(redis_url)
    assert isinstance(stop, StopEnvironment)
    assert (stop.owner, stop.name, stop.actor.user_id, stop.request_id) == (
        "alice",
        "lab",
        "alice",
        "slack:t-stop",
    )
    assert await status_of(door, "alice", "lab") is EnvironmentStatus.STOPPING


async def test_a_stop_the_intake_refuses_replaces_its_message_with_the_reason(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await put_environment(door, "alice", "lab", EnvironmentStatus.PENDING)
    await Listeners(door, frozenset()).on_akros(
        Ack(standin), slash_command("UALICE", "stop lab"), respond_to(standin)
    )
    assert [c.method for c in standin.made()] == ["chat.postMessage", "chat.update"]
    assert standin.last("chat.update").args["text"] == (
        ":no_entry: 'lab' is still starting; stop it once it is ready."
    )
    assert await commands_queued(door) == 0


async def test_the_start_button_starts_a_stopped_environment_once_per_press(
    door: FrontDoor, standin: SlackStandIn, redis_url: str
) -> None:
    await put_environment(door, "alice", "lab", EnvironmentStatus.STOPPED)
    listeners = Listeners(door, frozenset())
    body = {"user": {"id": "UALICE"}, "trigger_id": "t-start"}
    for _ in range(2):  # the same press delivered twice
        await listeners.on_start_pressed(Ack(standin), body, {"value": "lab"})

    [start] = published_commands(redis_url)
    assert isinstance(start, StartEnvironment)
    assert (start.owner, start.name) == ("alice", "lab")
    assert [c.args["text"] for c in standin.made() if c.method == "chat.postMessage"] == [
        ":hourglass_flowing_sand: Starting *lab*…"
    ]
    starting = await door.read_model.environment("alice", "lab")
    assert starting is not None
    assert starting.status is EnvironmentStatus.PENDING
    home = standin.last("views.publish").args
    assert (home["user_id"], home["view"]) == ("UALICE", blocks.home_view([starting]))


async def test_a_start_over_quota_is_refused_in_its_message_and_stays_stopped(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await put_environment(door, "alice", "lab", EnvironmentStatus.STOPPED)
    big = await door.read_model.environment("alice", "lab")
    assert big is not None
    # While lab was stopped its owner used the room: 31 of 32 CPUs are held by another.
    await door.read_model.put_environment(
        big.model_copy(
            update={
                "name": "big",
                "status": EnvironmentStatus.READY,
                "resources": Resources.of("31", "8Gi"),
            }
        )
    )
    body = {"user": {"id": "UALICE"}, "trigger_id": "t-over"}
    await Listeners(door, frozenset()).on_start_pressed(Ack(standin), body, {"value": "lab"})

    assert (
        standin.last("chat.update")
        .args["text"]
        .startswith(":no_entry: Over quota: CPU would be 33 of your 32")
    )
    assert await commands_queued(door) == 0
    assert await status_of(door, "alice", "lab") is EnvironmentStatus.STOPPED
