"""A create's Slack message follows its environment's start, and never covers its outcome."""

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


async def test_the_message_says_each_stage_while_the_request_is_pending(
    door: FrontDoor, standin: SlackStandIn
) -> None:
    ref = MessageRef(channel="DALICE", ts="1.000100")
    await door.store.remember_message("req-1", ref)
    pending = RequestView(
        request_id="req-1",
        state=RequestState.PENDING,
        command_type="create_environment",
        actor="alice",
    )
    await door.read_model.put_request(pending)

    pulling = _starting("pulling image", "pulling registry.local/cuda:12")
    await door.on_result(pulling)
    [update] = [c for c in standin.made() if c.method == "chat.update"]
    assert (update.args["channel"], update.args["ts"]) == ("DALICE", "1.000100")
    assert update.args["text"] == blocks.progress_message(pulling).text

    # A stage handled after the outcome (events are handled concurrently) changes nothing.
    await door.read_model.put_request(pending.model_copy(update={"state": RequestState.APPLIED}))
    await door.on_result(_starting("starting", "waiting for the app to answer on its port"))
    assert [c.method for c in standin.made()].count("chat.update") == 1
