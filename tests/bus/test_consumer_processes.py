"""Consumers as real processes: killed, stopped, and replaced, with nothing lost."""

import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from akros_bus.wire import DATA_FIELD
from akros_devtools import ChildProcess, free_port, wait_until
from akros_msgs.streams import ENVIRONMENT_COMMANDS
from tests.bus.consumer_app import GROUP
from tests.bus.helpers import counter, create_command


@pytest.fixture
def client(redis_url: str) -> Iterator["redis.Redis"]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def _consumer(tmp_path: Path, redis_url: str, name: str, slow_s: float) -> ChildProcess:
    return ChildProcess.python_module(
        "tests.bus.consumer_app",
        log_path=tmp_path / f"{name}.log",
        env={
            "AKROS_REDIS_URL": redis_url,
            "AKROS_CONSUMER_NAME": name,
            "AKROS_RECLAIM_IDLE_MS": "1000",
            "AKROS_RECLAIM_INTERVAL_MS": "100",
            "AKROS_POLL_INTERVAL_MS": "50",
            "AKROS_GRACEFUL_TIMEOUT_S": "10",
            "TEST_SLOW_S": str(slow_s),
        },
    )


def _publish(client: "redis.Redis", request_id: str, name: str) -> None:
    payload = create_command(request_id, name).model_dump_json()
    client.xadd(ENVIRONMENT_COMMANDS.name, {DATA_FIELD: payload})


def test_a_consumer_killed_mid_message_has_it_finished_by_another_exactly_once(
    tmp_path: Path, redis_url: str, client: "redis.Redis"
) -> None:
    request_ids = [f"req-{index}" for index in range(20)]
    for index, request_id in enumerate(request_ids):
        _publish(client, request_id, "slow-one" if index == 10 else f"env-{index}")

    with _consumer(tmp_path, redis_url, "doomed", slow_s=60) as doomed:
        wait_until(
            lambda: counter(client, "test:started:req-10") == 1,
            timeout_s=20,
            what="the doomed consumer to start the slow message",
        )
        doomed.send(signal.SIGKILL)
        doomed.wait(timeout_s=5)
    assert counter(client, "test:applied:req-10") == 0

    with _consumer(tmp_path, redis_url, "survivor", slow_s=0.1):
        wait_until(
            lambda: all(counter(client, f"test:applied:{r}") for r in request_ids),
            timeout_s=20,
            what="the survivor to finish every message",
        )
        wait_until(
            lambda: client.xpending(ENVIRONMENT_COMMANDS.name, GROUP)["pending"] == 0,
            timeout_s=5,
            what="nothing left pending",
        )
    assert [counter(client, f"test:applied:{r}") for r in request_ids] == [1] * 20
    assert counter(client, "test:started:req-10") == 2


def test_sigterm_lets_the_message_in_flight_finish_before_exiting(
    tmp_path: Path, redis_url: str, client: "redis.Redis"
) -> None:
    _publish(client, "req-slow", "slow-one")
    consumer = _consumer(tmp_path, redis_url, "graceful", slow_s=1.5).start()
    try:
        wait_until(
            lambda: counter(client, "test:started:req-slow") == 1,
            timeout_s=20,
            what="the consumer to start the slow message",
        )
        consumer.send(signal.SIGTERM)
        assert consumer.wait(timeout_s=15) == 0, consumer.log_text()
    finally:
        consumer.stop()
    assert counter(client, "test:applied:req-slow") == 1
    assert client.xpending(ENVIRONMENT_COMMANDS.name, GROUP)["pending"] == 0


def test_a_running_consumer_answers_its_liveness_probe(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    consumer = _consumer(tmp_path, redis_url, "probed", slow_s=0)
    consumer.env["AKROS_HEALTH_PORT"] = str(port)
    with consumer:
        url = f"http://127.0.0.1:{port}/healthz"
        wait_until(lambda: _status(url) == 200, timeout_s=20, what="the probe to answer 200")
        assert _status(f"http://127.0.0.1:{port}/elsewhere") == 404


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- loopback URL
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None
