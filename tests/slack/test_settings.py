"""The Slack app's settings fail fast on a missing credential and never show secrets."""

import pytest
from pydantic import SecretStr, ValidationError

from akros_slack.settings import SlackMode, SlackSettings


def test_socket_mode_needs_the_app_token() -> None:
    with pytest.raises(ValidationError, match="AKROS_SLACK_APP_TOKEN"):
        SlackSettings(slack_mode=SlackMode.SOCKET, slack_bot_token=SecretStr("xoxb-1"))


def test_http_mode_needs_the_signing_secret() -> None:
    with pytest.raises(ValidationError, match="AKROS_SLACK_SIGNING_SECRET"):
        SlackSettings(slack_mode=SlackMode.HTTP, slack_bot_token=SecretStr("xoxb-1"))


def test_settings_read_the_environment_and_mask_every_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AKROS_SLACK_MODE", "http")
    monkeypatch.setenv("AKROS_SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("AKROS_SLACK_SIGNING_SECRET", "signing-very-secret")
    monkeypatch.setenv("AKROS_SLACK_USERS", '{"U1": "alice"}')
    monkeypatch.setenv("AKROS_SLACK_ADMINS", '["U1"]')
    settings = SlackSettings()
    assert settings.slack_users == {"U1": "alice"}
    assert settings.slack_admins == frozenset({"U1"})
    shown = repr(settings) + str(settings.model_dump())
    assert "very-secret" not in shown


def test_a_slack_user_mapped_to_an_invalid_platform_user_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="slack_users"):
        SlackSettings(
            slack_mode=SlackMode.HTTP,
            slack_bot_token=SecretStr("xoxb-1"),
            slack_signing_secret=SecretStr("s"),
            slack_users={"U1": "Not A User"},
        )
