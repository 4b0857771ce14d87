"""The Slack app in Socket Mode, the default: it asks the Web API (the local stand-in) where to
connect, opens the WebSocket, and acknowledges each envelope over it; the platform behind it
is the same as in HTTP mode."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from akros_devtools.platform import SERVICES, SLACK, Platform
from akros_devtools.slack_standin import (
    SlackStandIn,
    SocketModeStandIn,
    create_form_values,
    running_standin,
)
from akros_policy import DEFAULT_CATALOG
from akros_slack import blocks
from tests.e2e.conftest import start_platform


@dataclass
class SocketRun:
    platform: Platform
    slack: SlackStandIn
    socket: SocketModeStandIn

    def command(self, text: str) -> dict[str, Any]:
        payload = {
            "command": "/akros",
            "text": text,
            "user_id": "UCAROL",
            "channel_id": "CLAB",
            "trigger_id": f"trigger-{text}",
            "response_url": self.slack.response_url("carol"),
        }
        return self.socket.send("slash_commands", payload)


@pytest.fixture(scope="module")
def socket_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketRun]:
    socket = SocketModeStandIn().start()
    try:
        with running_standin() as standin:
            standin.socket_mode_url = socket.url
            platform = start_platform(
                tmp_path_factory.mktemp("slack-socket"),
                services=(*SERVICES, SLACK),
                environment={
                    "AKROS_SLACK_BOT_TOKEN": "xoxb-socket-bot-token",
                    "AKROS_SLACK_APP_TOKEN": "xapp-socket-app-token",
                    "AKROS_SLACK_API_URL": standin.api_url,
                    "AKROS_SLACK_USERS": json.dumps({"UCAROL": "carol"}),
                    # the most the logs ever say: even then no token may appear
                    "AKROS_LOG_LEVEL": "DEBUG",
                },
            )
            try:
                assert socket.wait_connected(), "the Slack app never connected"
                yield SocketRun(platform, standin, socket)
            finally:
                platform.stop()
    finally:
        socket.stop()


def test_socket_mode_connects_with_the_app_token_and_answers_help_in_the_ack(
    socket_run: SocketRun,
) -> None:
    opened = [c for c in socket_run.slack.calls if c.method == "apps.connections.open"]
    assert len(opened) == 1
    ack = socket_run.command("help")
    assert ack["payload"]["text"] == blocks.HELP


def test_a_create_over_socket_mode_goes_from_modal_to_ready(socket_run: SocketRun) -> None:
    slack = socket_run.slack
    slack.clear()
    ack = socket_run.command("create")
    assert "payload" not in ack or not ack["payload"]
    opened = slack.wait_for(lambda calls: any(c.method == "views.open" for c in calls))[0]
    assert opened.args == {
        "trigger_id": "trigger-create",
        "view": blocks.create_modal(DEFAULT_CATALOG),
    }

    values = create_form_values("sock", image="jax", cpu="1", memory="2Gi")
    submission = {
        "type": "view_submission",
        "user": {"id": "UCAROL"},
        "view": {**opened.args["view"], "id": "VSOCK1", "state": {"values": values}},
    }
    socket_run.socket.send("interactive", submission)
    calls = slack.wait_for(lambda calls: any(c.method == "chat.update" for c in calls))
    messages = [c for c in calls if c.method in {"chat.postMessage", "chat.update"}]
    assert [c.method for c in messages] == ["chat.postMessage", "chat.update"]
    assert messages[1].args["text"].startswith(":white_check_mark: *sock* is ready")
    log = socket_run.platform.children[SLACK].log_text()
    assert '"level": "debug"' in log
    assert "xapp-socket-app-token" not in log
    assert "xoxb-socket-bot-token" not in log
