"""A create's (or a stopped environment's start's) Slack message follows its start, and never
covers its outcome."""

from akros_devtools.slack_standin import SlackStandIn
from akros_msgs import SYSTEM_ACTOR, EnvironmentStarting
from akros_readmodel import RequestState, RequestView
from akros_slack import blocks
from akros_slack.frontdoor import FrontDoor
from akros_slack.store import MessageRef


def _starting(stage: str, progress: str) -> EnvironmentStarting:
    return EnvironmentStarting(
        request_id="req-1",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="lab",
        stage=stage,
        progress=progress,
    )


async def _pending(door: FrontDoor, command_type: str) -> RequestView:
    """Request req-1 of ``command_type``, pending, with its message at DALICE 1.000100."""
    await door.store.remember_message("req-1", MessageRef(channel="DALICE", ts="1.000100"))
    pending = RequestView(
        request_id="req-1", state=RequestState.PENDING, command_type=command_type, actor="alice"
    )
    await door.read_model.put_request(pending)
    return pending


async def test_the_message_says_each_stage_while_the_request_is_pending(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    pending = await _pending(door, "create_environment")

    pulling = _starting("pulling image", "pulling registry.local/cuda:12")
    await door.on_result(pulling)
    [update] = [c for c in standin.made() if c.method == "chat.update"]
    assert (update.args["channel"], update.args["ts"]) == ("DALICE", "1.000100")
    assert update.args["text"] == blocks.progress_message(pulling).text

    # A stage handled after the outcome (events are handled concurrently) changes nothing.
    await door.read_model.put_request(pending.model_copy(update={"state": RequestState.APPLIED}))
    await door.on_result(_starting("starting", "waiting for the app to answer on its port"))
    assert [c.method for c in standin.made()].count("chat.update") == 1


async def test_a_stopped_environments_start_says_starting_at_each_stage(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    await _pending(door, "start_environment")
    await door.on_result(_starting("attaching volume", "waiting for the volume to attach"))
    assert standin.last("chat.update").args["text"] == (
        ":hourglass_flowing_sand: Starting *lab*: attaching volume "
        "(waiting for the volume to attach)…"
    )
