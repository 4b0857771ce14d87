"""`make run`'s launcher starts the platform, says where it is, and stops it all on Ctrl-C."""

import json
import signal
from pathlib import Path

import redis

from akros_devtools import ChildProcess, wait_until


def test_the_devstack_writes_its_endpoints_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    endpoints = tmp_path / ".akros" / "endpoints.json"
    stack = ChildProcess.python_module("akros_devtools.devstack", log_path=tmp_path / "run.log")
    stack.cwd = tmp_path
    with stack:
        wait_until(endpoints.exists, timeout_s=30, what="endpoints.json")
        redis_url = json.loads(endpoints.read_text())["redis_url"]
        client = redis.Redis.from_url(redis_url)
        assert client.ping()
        client.set("kept", "across restarts")

        stack.send(signal.SIGINT)
        assert stack.wait(timeout_s=20) == 0, stack.log_text()

    assert not endpoints.exists()
    try:
        client.ping()
        still_up = True
    except redis.ConnectionError:
        still_up = False
    finally:
        client.close()
    assert not still_up, "redis-server outlived the devstack"
    assert (tmp_path / ".akros" / "redis" / "appendonlydir").is_dir()
