"""The Slack app's HTTP mode against bad input: forged, expired and oversized requests are
refused before any listener runs, and the secrets of the run never reach a log."""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import pytest

from akros_devtools.platform import SERVICES, SLACK, Platform
from akros_devtools.slack_standin import (
    SlackStandIn,
    running_standin,
    signed_headers,
    slash_command_body,
)
from tests.e2e.conftest import start_platform

SIGNING_SECRET = "resilience-signing-secret-0123456789"
BOT_TOKEN = "xoxb-resilience-bot-token-0123456789"
ALICE = "UALICE"


@dataclass
class SlackRun:
    platform: Platform
    slack: SlackStandIn
    http: httpx2.Client

    def post(self, body: str, headers: dict[str, str]) -> httpx2.Response:
        return self.http.post(self.platform.slack_url, content=body, headers=headers)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackRun]:
    with running_standin() as standin:
        platform = start_platform(
            tmp_path_factory.mktemp("slack-input"),
            services=(*SERVICES, SLACK),
            environment={
                "AKROS_SLACK_MODE": "http",
                "AKROS_SLACK_BOT_TOKEN": BOT_TOKEN,
                "AKROS_SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "AKROS_SLACK_API_URL": standin.api_url,
                "AKROS_SLACK_USERS": json.dumps({ALICE: "alice"}),
            },
        )
        try:
            with httpx2.Client(timeout=10) as http:
                yield SlackRun(platform, standin, http)
        finally:
            platform.stop()


def _help(run: SlackRun) -> str:
    return slash_command_body(ALICE, "help", response_url=run.slack.response_url(ALICE))


def test_a_correctly_signed_request_is_answered(run: SlackRun) -> None:
    body = _help(run)
    assert run.post(body, signed_headers(SIGNING_SECRET, body)).status_code == 200


def test_forged_replayed_or_tampered_requests_are_401_and_reach_no_listener(
    run: SlackRun,
) -> None:
    body = _help(run)
    signed = signed_headers(SIGNING_SECRET, body)
    refused = {
        "wrong secret": run.post(body, signed_headers("guessed", body)),
        "expired": run.post(
            body, signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 600)
        ),
        "from the future": run.post(
            body, signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) + 600)
        ),
        "body changed after signing": run.post(body.replace("help", "list"), signed),
        "no signature": run.post(body, {}),
        "garbage signature": run.post(body, {**signed, "X-Slack-Signature": "v0=" + "0" * 64}),
        "garbage timestamp": run.post(body, {**signed, "X-Slack-Request-Timestamp": "yesterday"}),
    }
    assert {what: a.status_code for what, a in refused.items()} == dict.fromkeys(refused, 401)
    time.sleep(0.2)
    assert run.slack.methods() == []


def test_an_oversized_body_is_413_even_when_signed(run: SlackRun) -> None:
    body = _help(run) + "&padding=" + "a" * (2 * 1024 * 1024)
    answer = run.post(body, signed_headers(SIGNING_SECRET, body))
    assert answer.status_code == 413
    # The app still serves after refusing it.
    small = _help(run)
    assert run.post(small, signed_headers(SIGNING_SECRET, small)).status_code == 200


def test_the_bot_token_and_signing_secret_never_reach_a_log(run: SlackRun) -> None:
    body = _help(run)
    run.post(body, signed_headers(SIGNING_SECRET, body))
    run.post(body, signed_headers("guessed", body))
    for path in run.platform.options.state.glob("**/*.log"):
        text = path.read_text(errors="replace")
        assert SIGNING_SECRET not in text, path.name
        assert BOT_TOKEN not in text, path.name
