"""The Slack app as a real process on a real Redis: an event of a type it does not know is
dead-lettered with the reason, never dropped, and the app keeps consuming."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from akros_bus.wire import DATA_FIELD
from akros_devtools import ChildProcess, free_port, wait_until
from akros_devtools.slack_standin import SlackStandIn
from akros_msgs import SYSTEM_ACTOR, Groups, Stream
from akros_msgs.streams import NOTIFICATIONS, RESULTS
from tests.dead_letters import unknown_type_reason, wait_for_dead_letter, write_unknown_type


@pytest.fixture
def slack_app(tmp_path: Path, redis_url: str, standin: SlackStandIn) -> Iterator[ChildProcess]:
    env = {
        "AKROS_REDIS_URL": redis_url,
        "AKROS_SLACK_MODE": "http",
        "AKROS_SLACK_PORT": str(free_port()),
        "AKROS_SLACK_BOT_TOKEN": "xoxb-consumer-test",
        "AKROS_SLACK_SIGNING_SECRET": "consumer-test-secret",
        "AKROS_SLACK_API_URL": standin.api_url,
        "AKROS_POLL_INTERVAL_MS": "50",
    }
    app = ChildProcess.python_module(
        "akros_slack.main", log_path=tmp_path / "slack.log", env=env
    ).start()
    try:
        wait_until(
            lambda: '"service running"' in app.log_text(), timeout_s=20, what="the Slack app"
        )
        yield app
    finally:
        app.stop()


@pytest.fixture
def store(redis_url: str) -> Iterator["redis.Redis"]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.mark.parametrize(
    ("stream", "kind"),
    [(RESULTS, "environment_snapshotted"), (NOTIFICATIONS, "quota_nearly_used")],
    ids=["results", "notifications"],
)
def test_an_event_of_a_type_the_slack_app_does_not_know_is_dead_lettered_with_the_reason(
    slack_app: ChildProcess, store: "redis.Redis", stream: Stream[Any], kind: str
) -> None:
    entry_id = write_unknown_type(store, stream, kind, SYSTEM_ACTOR, "from-a-newer-producer")

    letter = wait_for_dead_letter(store, stream, Groups.SLACK, entry_id)
    assert letter["reason"].startswith(unknown_type_reason(stream, kind))
    assert json.loads(letter["original"][DATA_FIELD.decode()])["type"] == kind
    assert slack_app.alive(), slack_app.log_text()
