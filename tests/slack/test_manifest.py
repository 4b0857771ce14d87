"""The shipped manifest asks for the scopes the app's calls need and no more, and subscribes
to what the app listens to."""

import re
from pathlib import Path
from typing import Any

import yaml

from akros_slack import blocks

SLACK = Path(__file__).resolve().parents[2] / "services" / "slack"
# The scope each Web API method the app may call needs (None: no scope).
SCOPE_OF = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "views_open": None,
    "views_publish": None,
}


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((SLACK / "manifest.yaml").read_text())
    return manifest


def _web_api_calls() -> set[str]:
    source = "".join(p.read_text() for p in (SLACK / "src" / "akros_slack").glob("*.py"))
    return set(re.findall(r"client\.(\w+)\(", source))


def test_every_web_api_call_of_the_app_has_a_known_scope() -> None:
    assert _web_api_calls() == set(SCOPE_OF)


def test_the_bot_scopes_are_exactly_the_slash_command_and_those_the_calls_need() -> None:
    needed = {scope for scope in SCOPE_OF.values() if scope} | {"commands"}
    assert set(_manifest()["oauth_config"]["scopes"]["bot"]) == needed
    assert "user" not in _manifest()["oauth_config"]["scopes"]


def test_the_manifest_declares_the_command_the_home_tab_and_interactivity() -> None:
    manifest = _manifest()
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/akros"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_the_help_text_names_every_subcommand_the_manifest_hints_at() -> None:
    hint = _manifest()["features"]["slash_commands"][0]["usage_hint"]
    for word in re.findall(r"[a-z]+", hint):
        if word != "name":
            assert f"/akros {word}" in blocks.HELP
