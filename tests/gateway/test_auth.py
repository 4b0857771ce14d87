"""Bearer tokens: 401 without a valid one, tokens issued and revoked by admins over HTTP and
with the `akros-gateway token` command, and the bootstrap admin token."""

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from akros_gateway.app import create_app
from akros_gateway.cli import main
from akros_gateway.settings import GatewaySettings
from tests.gateway.conftest import Api, bearer


def test_no_token_is_401_with_a_bearer_challenge(api: Api) -> None:
    answer = api.client.get("/v1/environments")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["code"] == "unauthenticated"
    assert "Authorization: Bearer" in answer.json()["detail"]


def test_an_unknown_token_is_401(api: Api) -> None:
    answer = api.client.get("/v1/me", headers=bearer("akros_made-up"))
    assert answer.status_code == 401
    assert answer.json()["detail"] == "Invalid or revoked token."


def test_a_token_of_another_scheme_is_401(api: Api) -> None:
    answer = api.client.get("/v1/me", headers={"Authorization": "Basic YWxpY2U6eA=="})
    assert answer.status_code == 401


def test_an_admin_issues_lists_and_revokes_tokens_over_http(api: Api) -> None:
    issued = api.client.post("/v1/tokens", json={"user": "dave"}, headers=api.admin).json()
    assert issued["token"].startswith(issued["prefix"])
    dave = bearer(issued["token"])
    assert api.client.get("/v1/me", headers=dave).json()["user"] == "dave"

    listed = api.client.get("/v1/tokens", headers=api.admin).json()["tokens"]
    assert {"prefix": issued["prefix"], "user": "dave", "role": "researcher"}.items() <= listed[
        -1
    ].items()
    assert all("token" not in entry for entry in listed)

    revoked = api.client.delete(f"/v1/tokens/{issued['prefix']}", headers=api.admin)
    assert revoked.json() == {"revoked": 1}
    assert api.client.get("/v1/me", headers=dave).status_code == 401


def test_researchers_may_not_manage_tokens(api: Api) -> None:
    answer = api.client.post(
        "/v1/tokens", json={"user": "alice", "role": "admin"}, headers=api.alice
    )
    assert answer.status_code == 403
    assert api.client.get("/v1/tokens", headers=api.alice).status_code == 403


def test_the_bootstrap_admin_token_file_is_private_and_works(
    api: Api, settings: GatewaySettings
) -> None:
    path = settings.bootstrap_admin_token_file
    assert path is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    me = api.client.get("/v1/me", headers=bearer(path.read_text().strip())).json()
    assert (me["user"], me["role"]) == ("admin", "admin")


def test_a_restart_with_an_admin_token_in_place_issues_no_new_one(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    settings = make_settings()
    path = settings.bootstrap_admin_token_file
    assert path is not None
    with TestClient(create_app(settings)):
        first = path.read_text()
    with TestClient(create_app(settings)) as client:
        assert path.read_text() == first
        assert client.get("/v1/me", headers=bearer(first.strip())).status_code == 200


def test_without_a_bootstrap_file_setting_no_admin_token_is_made(
    make_settings: Callable[..., GatewaySettings], tmp_path: Path
) -> None:
    settings = make_settings(bootstrap_admin_token_file=None)
    with TestClient(create_app(settings)):
        pass
    assert not (tmp_path / "admin-token").exists()


def test_the_token_command_issues_lists_and_revokes(
    api: Api,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKROS_REDIS_URL", redis_url)
    assert main(["token", "issue", "--user", "erin", "--role", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    me = api.client.get("/v1/me", headers=bearer(token)).json()
    assert (me["user"], me["role"]) == ("erin", "admin")

    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert token[:14] in listing
    assert token not in listing

    assert main(["token", "revoke", "--user", "erin"]) == 0
    assert capsys.readouterr().out.strip() == "revoked 1 token(s)"
    assert api.client.get("/v1/me", headers=bearer(token)).status_code == 401
    assert main(["token", "revoke", "--prefix", token[:14]]) == 1


def test_a_bootstrap_file_left_readable_by_others_is_made_private(
    make_settings: Callable[..., GatewaySettings], tmp_path: Path
) -> None:
    path = tmp_path / "admin-token"
    path.write_text("stale\n")
    path.chmod(0o644)
    with TestClient(create_app(make_settings())):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("akros_")
