"""`make run`'s launcher starts the platform, says where it is, and stops it all on Ctrl-C."""

import json
import signal
import urllib.request
from pathlib import Path

import redis

from akros_devtools import ChildProcess, wait_until


def _get(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 -- a loopback http URL
        url, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 -- loopback
        document: dict[str, object] = json.loads(response.read())
        return document


def test_the_devstack_runs_the_platform_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    endpoints_file = tmp_path / ".akros" / "endpoints.json"
    stack = ChildProcess.python_module("akros_devtools.devstack", log_path=tmp_path / "run.log")
    stack.cwd = tmp_path
    with stack:
        wait_until(endpoints_file.exists, timeout_s=60, what="endpoints.json")
        endpoints = json.loads(endpoints_file.read_text())
        assert {"redis_url", "gateway_url", "kubeconfig", "kubesim_url", "dashboard_url"} <= set(
            endpoints
        )
        token = (tmp_path / ".akros" / "admin-token").read_text().strip()
        me = _get(endpoints["gateway_url"] + "/v1/me", token)
        assert me["role"] == "admin"
        assert Path(endpoints["kubeconfig"]).exists()
        client = redis.Redis.from_url(endpoints["redis_url"])
        assert client.ping()
        assert "curl" in stack.log_text()

        stack.send(signal.SIGINT)
        assert stack.wait(timeout_s=30) == 0, stack.log_text()

    assert not endpoints_file.exists()
    try:
        client.ping()
        still_up = True
    except redis.ConnectionError:
        still_up = False
    finally:
        client.close()
    assert not still_up, "redis-server outlived the devstack"
    assert (tmp_path / ".akros" / "redis" / "appendonlydir").is_dir()
