"""The Slack app's HTTP mode against bad input: forged, expired and oversized requests are
refused before any listener runs, and the secrets of the run never reach a log."""

import time
from collections.abc import Iterator

import httpx2
import pytest

from akros_devtools.slack_standin import signed_headers, slash_command_body
from tests.e2e.conftest import SLACK_BOT_TOKEN as BOT_TOKEN
from tests.e2e.conftest import SLACK_SIGNING_SECRET as SIGNING_SECRET
from tests.e2e.conftest import SlackRun, running_slack

ALICE = "UALICE"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackRun]:
    yield from running_slack(tmp_path_factory.mktemp("slack-input"), {ALICE: "alice"})


def _post(run: SlackRun, body: str, headers: dict[str, str]) -> httpx2.Response:
    return run.http.post(run.platform.slack_url, content=body, headers=headers)


def _help(run: SlackRun) -> str:
    return slash_command_body(ALICE, "help", response_url=run.slack.response_url(ALICE))


def test_a_correctly_signed_request_is_answered(run: SlackRun) -> None:
    body = _help(run)
    assert _post(run, body, signed_headers(SIGNING_SECRET, body)).status_code == 200


def test_forged_replayed_or_tampered_requests_are_401_and_reach_no_listener(
    run: SlackRun,
) -> None:
    body = _help(run)
    signed = signed_headers(SIGNING_SECRET, body)
    refused = {
        "wrong secret": _post(run, body, signed_headers("guessed", body)),
        "expired": _post(
            run, body, signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 600)
        ),
        "from the future": _post(
            run, body, signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) + 600)
        ),
        "body changed after signing": _post(run, body.replace("help", "list"), signed),
        "no signature": _post(run, body, {}),
        "garbage signature": _post(run, body, {**signed, "X-Slack-Signature": "v0=" + "0" * 64}),
        "garbage timestamp": _post(run, body, {**signed, "X-Slack-Request-Timestamp": "yesterday"}),
    }
    assert {what: a.status_code for what, a in refused.items()} == dict.fromkeys(refused, 401)
    # A signed request after them is served: nothing of the refused ones came before it.
    create = slash_command_body(ALICE, "create", response_url=run.slack.response_url(ALICE))
    assert _post(run, create, signed_headers(SIGNING_SECRET, create)).status_code == 200
    run.slack.wait_for(lambda calls: any(c.method == "views.open" for c in calls))
    assert run.slack.methods() == ["views.open"]


def test_an_oversized_body_is_413_even_when_signed(run: SlackRun) -> None:
    body = _help(run) + "&padding=" + "a" * (2 * 1024 * 1024)
    answer = _post(run, body, signed_headers(SIGNING_SECRET, body))
    assert answer.status_code == 413
    # The app still serves after refusing it.
    small = _help(run)
    assert _post(run, small, signed_headers(SIGNING_SECRET, small)).status_code == 200


def test_the_bot_token_and_signing_secret_never_reach_a_log(run: SlackRun) -> None:
    body = _help(run)
    _post(run, body, signed_headers(SIGNING_SECRET, body))
    _post(run, body, signed_headers("guessed", body))
    for path in run.platform.options.state.glob("**/*.log"):
        text = path.read_text(errors="replace")
        assert SIGNING_SECRET not in text, path.name
        assert BOT_TOKEN not in text, path.name
