"""The gateway with its real lifespan against a real Redis, and callers with real tokens."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings

# carol's override keeps her to one small environment; everybody else has the default quota.
QUOTA_FILE = """
overrides:
  carol: {cpu: "2", memory: 8Gi, gpus: 0, environments: 1}
"""


@dataclass
class Api:
    """A running gateway and a token for each kind of caller."""

    client: TestClient
    admin: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    carol: dict[str, str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_settings(redis_url: str, tmp_path: Path) -> Callable[..., GatewaySettings]:
    quota_file = tmp_path / "quotas.yaml"
    quota_file.write_text(QUOTA_FILE)

    def make(**overrides: object) -> GatewaySettings:
        values: dict[str, object] = {
            "redis_url": redis_url,
            "bootstrap_admin_token_file": tmp_path / "admin-token",
            "quota_file": quota_file,
            **overrides,
        }
        return GatewaySettings.model_validate(values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., GatewaySettings]) -> GatewaySettings:
    return make_settings()


def issue(client: TestClient, admin: dict[str, str], user: str, role: str = "researcher") -> str:
    answer = client.post("/v1/tokens", json={"user": user, "role": role}, headers=admin)
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


@pytest.fixture
def api(settings: GatewaySettings) -> Iterator[Api]:
    with TestClient(create_app(settings)) as client:
        assert settings.bootstrap_admin_token_file is not None
        admin = bearer(settings.bootstrap_admin_token_file.read_text().strip())
        yield Api(
            client=client,
            admin=admin,
            alice=bearer(issue(client, admin, "alice")),
            bob=bearer(issue(client, admin, "bob")),
            carol=bearer(issue(client, admin, "carol")),
        )
