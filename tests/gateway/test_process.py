"""The gateway as a real process, started by its console entry point, over real HTTP."""

import json
import shutil
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from akros_devtools import ChildProcess, free_port, wait_until
from tests.gateway.helpers import create_body, published_commands


def _entry_point() -> str:
    """The `akros-gateway` script installed beside this interpreter."""
    found = shutil.which("akros-gateway", path=str(Path(sys.executable).parent))
    assert found, "akros-gateway is not installed; run uv sync --all-packages"
    return found


def _call(
    url: str, method: str = "GET", body: object = None, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310 -- a fixed http://127.0.0.1 URL
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 -- as above
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _answers(url: str) -> bool:
    try:
        return _call(url)[0] == 200
    except OSError:
        return False


def test_the_console_entry_point_serves_the_api_and_stops_on_sigterm(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    token_file = tmp_path / "admin-token"
    gateway = ChildProcess(
        [_entry_point()],
        log_path=tmp_path / "gateway.log",
        env={
            "AKROS_REDIS_URL": redis_url,
            "AKROS_GATEWAY_HOST": "127.0.0.1",
            "AKROS_GATEWAY_PORT": str(port),
            "AKROS_BOOTSTRAP_ADMIN_TOKEN_FILE": str(token_file),
        },
    )
    with gateway:
        wait_until(lambda: _answers(f"{base}/healthz"), timeout_s=30, what="the gateway's /healthz")
        admin = token_file.read_text().strip()

        assert _call(f"{base}/v1/me")[0] == 401
        status, headers, body = _call(f"{base}/v1/environments", "POST", create_body(), token=admin)
        assert status == 202, body
        assert headers["location"] == f"/v1/requests/{body['request_id']}"
        assert [c.request_id for c in published_commands(redis_url)] == [body["request_id"]]

        gateway.send(signal.SIGTERM)
        # Uvicorn shuts down gracefully, then re-raises the signal it caught, so the exit
        # status says "terminated by SIGTERM" as it does for any process.
        assert gateway.wait(timeout_s=15) in (0, -signal.SIGTERM), gateway.log_text()
        assert "Application shutdown complete." in gateway.log_text()
    assert admin not in gateway.log_text(), "a token reached the logs"
