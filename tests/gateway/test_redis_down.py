"""When Redis goes away under a running gateway: unhealthy, and requests get a clear 503."""

from pathlib import Path

from fastapi.testclient import TestClient

from akros_devtools import LocalRedis
from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings
from tests.gateway.conftest import bearer
from tests.gateway.helpers import create_body


def test_losing_redis_makes_healthz_fail_and_requests_answer_503(tmp_path: Path) -> None:
    token_file = tmp_path / "admin-token"
    with LocalRedis(tmp_path / "redis", appendonly=False) as server:
        settings = GatewaySettings(redis_url=server.url, bootstrap_admin_token_file=token_file)
        with TestClient(create_app(settings)) as client:
            admin = bearer(token_file.read_text().strip())
            assert client.get("/healthz").status_code == 200
            server.stop()

            health = client.get("/healthz")
            assert health.status_code == 503
            assert health.json() == {"status": "unavailable", "redis": False}
            refused = client.post("/v1/environments", json=create_body(), headers=admin)
            assert refused.status_code == 503
            assert refused.json()["code"] == "unavailable"
