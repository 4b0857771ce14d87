"""The Slack app end to end: signed requests (real HMAC) to its HTTP mode, the platform behind
it (Redis, the worker, kubesim), and a local stand-in for Slack's Web API recording every call.
"""

import json
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
from kubernetes import client

from akros_devtools import wait_until
from akros_devtools.platform import SLACK
from akros_devtools.slack_standin import Call, create_form_values, slash_command_body
from akros_devtools.streams import wait_until_handled
from akros_msgs import (
    SYSTEM_ACTOR,
    EnvironmentExpiring,
    EnvironmentStopped,
    Groups,
    Message,
    Resources,
    UnderusedEnvironment,
    stream_of,
)
from akros_msgs.streams import NOTIFICATIONS
from akros_policy import DEFAULT_CATALOG
from akros_policy.naming import environment_object_name
from akros_readmodel import underuse_exemption_key
from akros_slack import blocks
from tests.e2e.conftest import NAMESPACE, SLACK_BOT_TOKEN, SlackRun, running_slack
from tests.e2e.conftest import SLACK_SIGNING_SECRET as SECRET
from tests.gateway.helpers import published_commands

ALICE, BOB = "UALICE", "UBOB"
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def slack_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackRun]:
    state = tmp_path_factory.mktemp("slack-platform")
    yield from running_slack(state, users={ALICE: "alice", BOB: "bob"})


@pytest.fixture
def run(slack_run: SlackRun) -> SlackRun:
    slack_run.slack.settle()
    slack_run.slack.clear()
    return slack_run


def _has(method: str, count: int = 1) -> Any:
    return lambda calls: sum(c.method == method for c in calls) >= count


def _message_calls(calls: list[Call]) -> list[Call]:
    """The calls that open modals and post or change messages (Home refreshes aside)."""
    return [c for c in calls if c.method != "views.publish"]


def test_create_opens_the_modal_then_the_message_goes_from_pending_to_ready(run: SlackRun) -> None:
    started = time.monotonic()
    answer = run.command(ALICE, "create")
    assert (answer.status_code, answer.text) == (200, "")
    assert time.monotonic() - started < 3

    opened = run.slack.wait_for(_has("views.open"))
    assert [c.method for c in opened] == ["views.open"]
    assert opened[0].args["view"] == blocks.create_modal(DEFAULT_CATALOG)

    answer = run.submit(ALICE, opened[0].args["view"], "VCREATE1", create_form_values("lab"))
    assert (answer.status_code, answer.text) == (200, "")
    calls = run.slack.wait_for(
        lambda calls: any(
            c.method == "chat.update" and c.args["text"].startswith(":white_check_mark:")
            for c in calls
        )
    )

    posted, *progress, updated = _message_calls(calls)[1:]
    assert posted.method == "chat.postMessage"
    assert posted.args["channel"] == ALICE
    assert posted.args["text"] == (":hourglass_flowing_sand: Creating *lab* (2 CPU, 8Gi memory)…")
    # On its way, the same message says the stage the start is at (a start ready within its
    # first second, as here on a warm node, shows none).
    for step in progress:
        assert step.method == "chat.update"
        assert step.args["ts"] == posted.answer["ts"]
        assert step.args["text"].startswith(":hourglass_flowing_sand: Creating *lab*: ")
    assert updated.method == "chat.update"
    assert (updated.args["channel"], updated.args["ts"]) == (
        posted.answer["channel"],
        posted.answer["ts"],
    )
    assert updated.args["text"].startswith(":white_check_mark: *lab* is ready (2 CPU, 8Gi memory)")
    assert "alice-lab-5" in run.deployment_names()

    home = run.slack.wait_for(
        lambda calls: any(
            c.method == "views.publish" and "· ready ·" in json.dumps(c.args, ensure_ascii=False)
            for c in calls
        )
    )
    published = [c for c in home if c.method == "views.publish"]
    assert {c.args["user_id"] for c in published} == {ALICE}


def test_delete_asks_for_confirmation_and_the_message_ends_deleted(run: SlackRun) -> None:
    run.create_environment(BOB, "scratch")
    run.slack.settle()
    run.slack.clear()

    assert run.command(BOB, "delete scratch").status_code == 200
    opened = run.slack.wait_for(_has("views.open"))[0]
    assert opened.args["view"] == blocks.delete_modal("scratch")
    purge = {
        "purge_volume": {
            "purge_volume": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}
        }
    }
    assert run.submit(BOB, opened.args["view"], "VDELETE1", purge).status_code == 200

    calls = _message_calls(run.slack.wait_for(_has("chat.update")))
    assert [c.method for c in calls] == ["views.open", "chat.postMessage", "chat.update"]
    assert calls[1].args["text"] == ":hourglass_flowing_sand: Deleting *scratch* and its volume…"
    assert calls[2].args["text"] == ":wastebasket: *scratch* is deleted; its volume is gone too."
    assert "bob-scratch-3" not in run.deployment_names()


def test_a_create_over_quota_is_refused_in_a_message_and_nothing_reaches_the_cluster(
    run: SlackRun,
) -> None:
    assert run.command(BOB, "create").status_code == 200
    opened = run.slack.wait_for(_has("views.open"))[0]
    run.submit(BOB, opened.args["view"], "VCREATEBIG", create_form_values("huge", cpu="500"))

    calls = _message_calls(run.slack.wait_for(_has("chat.update")))
    assert [c.method for c in calls] == ["views.open", "chat.postMessage", "chat.update"]
    assert calls[2].args["text"].startswith(":no_entry: Over quota: CPU would be 500 of your 32")
    # Refused before it was published: the worker, the only writer to the cluster, never
    # hears of it, so no later look at the cluster could find it.
    commands = published_commands(run.platform.redis.url)
    assert [c for c in commands if getattr(c, "name", None) == "huge"] == []
    assert "bob-huge-3" not in run.deployment_names()
    assert [c.method for c in _message_calls(run.slack.made())] == [
        "views.open",
        "chat.postMessage",
        "chat.update",
    ]


def test_form_errors_keep_the_modal_open_with_a_message_under_the_field(run: SlackRun) -> None:
    view = blocks.create_modal(DEFAULT_CATALOG)
    answer = run.submit(ALICE, view, "VBADFORM", create_form_values("ok-name", cpu="lots"))
    assert answer.status_code == 200
    assert answer.json()["response_action"] == "errors"
    assert set(answer.json()["errors"]) == {"cpu"}
    assert run.slack.methods() == []


def test_help_and_unknown_text_are_answered_in_the_acknowledgement(run: SlackRun) -> None:
    for text in ("help", "frobnicate"):
        answer = run.command(ALICE, text)
        assert answer.status_code == 200
        assert answer.json()["text"] == blocks.HELP
    assert run.slack.methods() == []


def test_list_and_usage_answer_through_the_response_url(run: SlackRun) -> None:
    assert run.command(ALICE, "list").status_code == 200
    listed = run.slack.wait_for(_has("response_url"))[0]
    assert listed.args["response_type"] == "ephemeral"
    assert "*lab* · ready" in listed.args["blocks"][0]["text"]["text"]

    run.slack.clear()
    assert run.command(ALICE, "usage").status_code == 200
    usage = run.slack.wait_for(_has("response_url"))[0]
    assert usage.args["text"].startswith("You hold 1 of 5 environments and 2 CPU, 8Gi memory of")


def test_an_unlinked_slack_user_is_told_how_to_get_linked(run: SlackRun) -> None:
    answer = run.command("USTRANGER", "create")
    assert "not linked to an Akros user" in answer.text
    assert run.slack.methods() == []


def test_stale_or_badly_signed_requests_are_rejected(run: SlackRun) -> None:
    body = slash_command_body(ALICE, "create", response_url=run.slack.response_url(ALICE))
    assert run.send(body, secret="not-the-secret").status_code == 401
    assert run.send(body, timestamp=int(time.time()) - 600).status_code == 401
    unsigned = run.http.post(run.platform.slack_url, content=body)
    assert unsigned.status_code == 401
    # A signed request after them is served: nothing of the refused ones came before it.
    assert run.command(ALICE, "create").status_code == 200
    run.slack.wait_for(_has("views.open"))
    assert run.slack.methods() == ["views.open"]


def _publish(run: SlackRun, message: Message) -> None:
    """On its stream, as the monitor or the worker publishes it."""
    connection = redis.Redis.from_url(run.platform.redis.url)
    try:
        connection.xadd(stream_of(message).name, {"__data__": message.model_dump_json()})
    finally:
        connection.close()


def test_an_underuse_notification_is_one_dm_and_keep_exempts_the_environment(
    run: SlackRun,
) -> None:
    notification = UnderusedEnvironment(
        request_id="underuse-1",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="lab",
        since=datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
        requested=Resources.of("2", "8Gi"),
        cpu_used_fraction=0.02,
        threshold=0.1,
    )
    _publish(run, notification)
    _publish(run, notification)  # delivered twice (at-least-once): one DM all the same
    dm = run.slack.wait_for(_has("chat.postMessage"))[0]
    expected = blocks.underused_message(notification)
    assert (dm.args["channel"], dm.args["text"], dm.args["blocks"]) == (
        ALICE,
        expected.text,
        expected.blocks,
    )
    with closing(redis.Redis.from_url(run.platform.redis.url)) as connection:
        wait_until_handled(connection, NOTIFICATIONS.name, Groups.SLACK)  # both deliveries
    assert run.slack.methods() == ["chat.postMessage"]

    container = {"type": "message", "channel_id": f"D{ALICE}", "message_ts": "9.000100"}
    assert run.press(ALICE, blocks.KEEP_BUTTON, "lab", container).status_code == 200
    kept = run.slack.wait_for(_has("chat.update"))[-1]
    assert (kept.args["channel"], kept.args["ts"]) == (f"D{ALICE}", "9.000100")
    assert kept.args["text"] == ":ok_hand: Keeping *lab*: no reminders about it for 72 hours."
    connection = redis.Redis.from_url(run.platform.redis.url)
    try:
        assert 71 * 3600 < connection.ttl(underuse_exemption_key("alice", "lab")) <= 72 * 3600
    finally:
        connection.close()


def test_shrink_resizes_the_environment_keeping_its_volume_and_profile(run: SlackRun) -> None:
    run.create_environment(ALICE, "big", cpu="8", memory="32Gi")
    run.slack.settle()
    run.slack.clear()
    claim_uid = _claim_uid(run, "alice-big-5")
    container = {"type": "message", "channel_id": f"D{ALICE}", "message_ts": "9.000100"}
    assert run.press(ALICE, blocks.SHRINK_BUTTON, "big", container).status_code == 200
    opened = run.slack.wait_for(_has("views.open"))[0]
    by_block = {b.get("block_id"): b for b in opened.args["view"]["blocks"]}
    assert by_block["cpu"]["element"]["initial_value"] == "4"
    assert by_block["memory"]["element"]["initial_value"] == "16Gi"

    values = create_form_values(None, cpu="4", memory="16Gi")
    assert run.submit(ALICE, opened.args["view"], "VSHRINK1", values).status_code == 200
    calls = _message_calls(
        run.slack.wait_for(
            lambda calls: any("is ready" in c.args.get("text", "") for c in calls), timeout_s=20
        )
    )
    opened_call, posted, *progress, ready = calls
    assert [opened_call.method, posted.method, ready.method] == [
        "views.open",
        "chat.postMessage",
        "chat.update",
    ]
    assert posted.args["text"] == ":hourglass_flowing_sand: Shrinking *big* to 4 CPU, 16Gi memory…"
    # The restart's stages, in the same message, then its outcome.
    for step in progress:
        assert step.method == "chat.update"
        assert step.args["text"].startswith(":hourglass_flowing_sand: Resizing *big*: ")
    assert ready.args["text"].startswith(":white_check_mark: *big* is ready (4 CPU, 16Gi memory)")
    assert _claim_uid(run, "alice-big-5") == claim_uid, "the same volume, not a new one"


def _claim_uid(run: SlackRun, claim: str) -> str:
    uid: str = (
        client.CoreV1Api(run.kube)
        .read_namespaced_persistent_volume_claim(claim, NAMESPACE)
        .metadata.uid
    )
    return uid


def test_an_expiring_environment_is_extended_from_the_dm(run: SlackRun) -> None:
    """The worker warns of an expiry 30 minutes off (inside the hour's notice, so the stop
    waits the full hour), the Slack app DMs it, and Extend moves the expiry a day on."""
    soon = datetime.now(UTC) + timedelta(minutes=30)
    run.create_environment(ALICE, "brief", cpu="1", memory="2Gi")
    run.slack.settle()
    run.slack.clear()
    _admin_extend_setup(run, "alice", "brief", soon)
    dm = run.slack.wait_for(_has("chat.postMessage"))[0]
    [notice] = [n for n in _notifications(run) if isinstance(n, EnvironmentExpiring)]
    assert (notice.owner, notice.name) == ("alice", "brief")
    assert abs(notice.expires_at - soon) < timedelta(seconds=1)
    assert notice.stops_at is not None
    assert notice.stops_at - notice.occurred_at >= timedelta(hours=1) - timedelta(seconds=1)
    assert dm.args["channel"] == ALICE
    assert dm.args["text"] == blocks.expiring_message(notice).text
    [actions] = [b for b in dm.args["blocks"] if b.get("block_id") == "expiring"]
    assert [e["action_id"] for e in actions["elements"]] == [
        blocks.EXTEND_BUTTON,
        blocks.STOP_BUTTON,
    ]

    run.slack.clear()
    container = {"type": "message", "channel_id": f"D{ALICE}", "message_ts": "9.000100"}
    assert run.press(ALICE, blocks.EXTEND_BUTTON, "brief", container).status_code == 200
    run.slack.wait_for(_said(":calendar: *brief* now expires at"), timeout_s=20)
    connection = redis.Redis.from_url(run.platform.redis.url)
    try:
        view = json.loads(connection.get("akros:rm:env:alice:brief") or "{}")
    finally:
        connection.close()
    expires = datetime.fromisoformat(view["expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)


def _notifications(run: SlackRun) -> list[Message]:
    with closing(redis.Redis.from_url(run.platform.redis.url)) as connection:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], connection.xrange(NOTIFICATIONS.name)
        )
    return [NOTIFICATIONS.parse(fields[b"__data__"]) for _, fields in entries]


def _admin_extend_setup(run: SlackRun, owner: str, name: str, expires_at: datetime) -> None:
    """Give the environment an expiry, as a create with expires_at would have (the Slack form
    has no such field): the view's, where the front door reads it, and the Deployment's."""
    connection = redis.Redis.from_url(run.platform.redis.url)
    try:
        key = f"akros:rm:env:{owner}:{name}"
        view = json.loads(connection.get(key) or "{}")
        view["expires_at"] = expires_at.isoformat()
        connection.set(key, json.dumps(view))
    finally:
        connection.close()
    patch = {"metadata": {"annotations": {"akros.io/expires-at": expires_at.isoformat()}}}
    client.AppsV1Api(run.kube).patch_namespaced_deployment(
        environment_object_name(owner, name), NAMESPACE, patch
    )


def test_a_stop_by_the_platform_is_told_to_the_owner_with_a_start_button(run: SlackRun) -> None:
    run.create_environment(ALICE, "idle", cpu="1", memory="2Gi")
    run.slack.settle()
    run.slack.clear()
    stopped = EnvironmentStopped(
        request_id="expiry:1:abc",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="idle",
        reason="It reached its expiry and was stopped; its volume is kept.",
    )
    _publish(run, stopped)
    dm = run.slack.wait_for(_has("chat.postMessage"))[0]
    assert dm.args["channel"] == ALICE
    assert "It reached its expiry" in dm.args["text"]
    [start] = [e for b in dm.args["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (start["action_id"], start["value"]) == (blocks.START_BUTTON, "alice/idle")


def _said(start: str) -> Any:
    """Until a message was posted or changed to one starting with ``start``."""
    return lambda calls: any(
        c.method in {"chat.postMessage", "chat.update"} and c.args["text"].startswith(start)
        for c in calls
    )


def _home_button(calls: list[Call], slack_user: str, name: str, action_id: str) -> Any:
    """The button ``action_id`` of environment ``name`` on the Home tab last published to
    ``slack_user``; None when that Home shows no such button."""
    homes = [c for c in calls if c.method == "views.publish" and c.args["user_id"] == slack_user]
    if not homes:
        return None
    for block in homes[-1].args["view"]["blocks"]:
        if block.get("block_id") == f"env:{name}":
            return next((e for e in block["elements"] if e["action_id"] == action_id), None)
    return None


def _replicas(run: SlackRun, deployment: str) -> int:
    scale = client.AppsV1Api(run.kube).read_namespaced_deployment(deployment, NAMESPACE)
    return int(scale.spec.replicas)


def test_a_researcher_stops_an_environment_from_home_and_starts_it_again(run: SlackRun) -> None:
    run.create_environment(BOB, "pause")
    run.slack.wait_for(_said(":white_check_mark: *pause* is ready"))
    run.slack.wait_for(lambda calls: _home_button(calls, BOB, "pause", blocks.STOP_BUTTON))
    stop = _home_button(run.slack.made(), BOB, "pause", blocks.STOP_BUTTON)
    run.slack.settle()
    run.slack.clear()

    home = {"type": "view", "view_id": "VHOMEBOB"}
    answer = run.press(BOB, blocks.STOP_BUTTON, stop["value"], home)
    assert (answer.status_code, answer.text) == (200, "")
    calls = _message_calls(run.slack.wait_for(_said(":double_vertical_bar: *pause* is stopped")))
    posted, stopped = calls
    assert (posted.method, posted.args["channel"]) == ("chat.postMessage", BOB)
    assert posted.args["text"] == ":hourglass_flowing_sand: Stopping *pause*…"
    assert (stopped.method, stopped.args["ts"]) == ("chat.update", posted.answer["ts"])
    assert "its volume, URL and name are kept" in stopped.args["text"]
    # Scaled to zero, not deleted: the Deployment (with its claim, Service and URL) stays.
    assert "bob-pause-3" in run.deployment_names()
    assert _replicas(run, "bob-pause-3") == 0
    run.slack.wait_for(lambda calls: _home_button(calls, BOB, "pause", blocks.START_BUTTON))
    run.slack.settle()
    run.slack.clear()

    assert run.command(BOB, "start pause").status_code == 200
    calls = _message_calls(
        run.slack.wait_for(_said(":white_check_mark: *pause* is ready"), timeout_s=20)
    )
    posted, *progress, ready = calls
    assert (posted.method, posted.args["text"]) == (
        "chat.postMessage",
        ":hourglass_flowing_sand: Starting *pause*…",
    )
    for step in progress:  # the start's stages, in the same message, as a create's are
        assert (step.method, step.args["ts"]) == ("chat.update", posted.answer["ts"])
        assert step.args["text"].startswith(":hourglass_flowing_sand: Starting *pause*: ")
    assert (ready.method, ready.args["ts"]) == ("chat.update", posted.answer["ts"])
    assert _replicas(run, "bob-pause-3") == 1
    run.slack.wait_for(lambda calls: _home_button(calls, BOB, "pause", blocks.STOP_BUTTON))


def test_neither_the_token_nor_the_signing_secret_reaches_the_logs(run: SlackRun) -> None:
    run.command(ALICE, "list")
    run.slack.wait_for(_has("response_url"))
    log = run.platform.children[SLACK].log_text()
    assert '"slack app listening"' in log
    assert SLACK_BOT_TOKEN not in log
    assert SECRET not in log


@pytest.mark.kubesim_only("fills the default cluster's one CPU node (128 cores) on purpose")
def test_why_is_it_pending_answers_from_what_the_cluster_said(run: SlackRun) -> None:
    admin = {"Authorization": f"Bearer {run.platform.admin_token()}"}
    gateway = run.platform.gateway_url
    # The filler takes all but two cores of the one CPU node; alice's four then wait for it.
    cpu = str(int(_free_cores(run, "cpu-server-1")) - 2)
    filler = {"name": "filler", "owner": "whale", "image": "pytorch", "cpu": cpu, "memory": "8Gi"}
    answer = run.http.post(f"{gateway}/v1/environments", json=filler, headers=admin)
    assert answer.status_code == 202, answer.text
    try:
        _wait_for_status(run, admin, "filler", "whale", "ready")
        wait = {"name": "wait", "owner": "alice", "image": "pytorch", "cpu": "4", "memory": "1Gi"}
        answer = run.http.post(f"{gateway}/v1/environments", json=wait, headers=admin)
        assert answer.status_code == 202, answer.text
        _wait_for_scheduling_failure(run, admin)
        run.slack.settle()
        run.slack.clear()

        # The Home tab's button for a pending environment carries its name (test_blocks.py).
        home = {"type": "view", "view_id": "VHOMEALICE"}
        pressed = run.press(ALICE, blocks.WHY_PENDING_BUTTON, "wait", home)
        assert (pressed.status_code, pressed.text) == (200, "")
        told = run.slack.wait_for(_said(":hourglass_flowing_sand: *wait* is pending"))[-1]
        assert told.args["channel"] == ALICE
        assert told.args["text"] == (
            ":hourglass_flowing_sand: *wait* is pending: waiting for CPU: of 4 nodes, 1 has too "
            "little CPU free, 3 are reserved for other work."
        )
        # bob may not ask about alice's.
        run.slack.clear()
        assert run.press(BOB, blocks.WHY_PENDING_BUTTON, "alice/wait", home).status_code == 200
        refused = run.slack.wait_for(_has("chat.postMessage"))[-1]
        assert refused.args["text"].startswith("You may not act on alice's environments")
    finally:
        for owner, name in (("alice", "wait"), ("whale", "filler")):
            run.http.delete(
                f"{run.platform.gateway_url}/v1/environments/{name}?user={owner}", headers=admin
            )


def _free_cores(run: SlackRun, node: str) -> float:
    """What the pods bound to ``node`` leave of its CPU, from their requests."""
    core = client.CoreV1Api(run.kube)
    allocatable = core.read_node(node).status.allocatable["cpu"]
    pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items

    def cores(quantity: str) -> float:
        return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)

    requested = sum(
        cores((c.resources.requests or {}).get("cpu", "0"))
        for pod in pods
        for c in pod.spec.containers
        if c.resources is not None
    )
    return cores(allocatable) - requested


def _wait_for_status(
    run: SlackRun, headers: dict[str, str], name: str, owner: str, status: str
) -> None:
    def reached() -> bool:
        answer = run.http.get(
            f"{run.platform.gateway_url}/v1/environments/{name}?user={owner}", headers=headers
        )
        return answer.status_code == 200 and answer.json()["status"] == status

    wait_until(reached, timeout_s=20, what=f"{owner}/{name} to become {status}")


def _wait_for_scheduling_failure(run: SlackRun, headers: dict[str, str]) -> None:
    def said_why() -> bool:
        answer = run.http.get(
            f"{run.platform.gateway_url}/v1/environments/wait/events?user=alice", headers=headers
        )
        return str(answer.json().get("why_pending")).startswith("waiting for CPU")

    wait_until(said_why, timeout_s=15, what="the cluster to say why alice/wait waits")
