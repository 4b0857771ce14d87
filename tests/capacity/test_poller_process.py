"""The poller as a real process on a real Redis, fed crafted capacity events: it acts on the
newest picture only and never on a late, redelivered or stale one."""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import redis

from akros_bus.wire import DATA_FIELD
from akros_devtools import ChildProcess, wait_until
from akros_devtools.streams import wait_until_handled
from akros_msgs import SYSTEM_ACTOR, CapacityChanged, Groups, ScaleDeployment
from akros_msgs.streams import CAPACITY, SCALE_COMMANDS
from tests.capacity.events import capacity_event, gpu_node, gpus
from tests.dead_letters import unknown_type_reason, wait_for_dead_letter, write_unknown_type

BOTH_FREE = (gpu_node("a"), gpu_node("b"))
HALF_TAKEN = (gpu_node("a", researchers=gpus(8)), gpu_node("b"))


@pytest.fixture
def store(redis_url: str) -> Iterator["redis.Redis"]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def start_poller(tmp_path: Path, redis_url: str) -> Iterator[Callable[[], ChildProcess]]:
    env = {
        "AKROS_REDIS_URL": redis_url,
        "AKROS_SCALE_UP_WINDOW_S": "0",
        "AKROS_CAPACITY_STALE_AFTER_S": "30",
        "AKROS_POLL_INTERVAL_MS": "50",
    }
    started: list[ChildProcess] = []

    def start() -> ChildProcess:
        process = ChildProcess.python_module(
            "akros_poller.main", log_path=tmp_path / "poller.log", env=env
        ).start()
        started.append(process)
        wait_until(
            lambda: '"service running"' in process.log_text(), timeout_s=20, what="the poller"
        )
        return process

    yield start
    for process in started:
        process.stop()


def _publish(store: "redis.Redis", event: CapacityChanged) -> None:
    store.xadd(CAPACITY.name, {DATA_FIELD: event.model_dump_json()})


def _commanded(store: "redis.Redis") -> list[int]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], store.xrange(SCALE_COMMANDS.name))
    commands = [SCALE_COMMANDS.parse(fields[DATA_FIELD]) for _, fields in entries]
    return [c.replicas for c in commands if isinstance(c, ScaleDeployment)]


def _at(seconds_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds_ago)


def test_late_redelivered_and_stale_capacity_changes_nothing(
    start_poller: Callable[[], ChildProcess], store: "redis.Redis"
) -> None:
    poller = start_poller()
    newest = capacity_event(*HALF_TAKEN, observed_at=_at(1))
    _publish(store, newest)
    wait_until(lambda: _commanded(store) == [8], timeout_s=10, what="the first command")

    _publish(store, capacity_event(*BOTH_FREE, observed_at=_at(2)))  # out of order
    _publish(store, newest)  # redelivered
    _publish(store, capacity_event(*BOTH_FREE, observed_at=_at(60)))  # stale
    _publish(store, capacity_event(*HALF_TAKEN, observed_at=_at(0.5)))  # fresh, same room
    wait_until_handled(store, CAPACITY.name, Groups.POLLER, timeout_s=10)  # every event
    assert _commanded(store) == [8], poller.log_text()

    _publish(store, capacity_event(*BOTH_FREE, observed_at=_at(0)))
    wait_until(lambda: _commanded(store) == [8, 16], timeout_s=10, what="the scale-up")


def test_of_a_backlog_only_the_newest_event_counts(
    start_poller: Callable[[], ChildProcess], store: "redis.Redis"
) -> None:
    for seconds_ago, nodes in ((3, BOTH_FREE), (2, HALF_TAKEN), (1, BOTH_FREE)):
        _publish(store, capacity_event(*nodes, observed_at=_at(seconds_ago)))
    poller = start_poller()
    wait_until(lambda: bool(_commanded(store)), timeout_s=10, what="a command")
    wait_until_handled(store, CAPACITY.name, Groups.POLLER)  # the whole backlog
    assert _commanded(store) == [16], poller.log_text()


def test_a_capacity_event_of_a_type_the_poller_does_not_know_is_dead_lettered_not_dropped(
    start_poller: Callable[[], ChildProcess], store: "redis.Redis"
) -> None:
    """A type the capacity stream does not carry, read in the same batch as a good event,
    lands in the dead-letter stream with the reason and is not left pending; the good event
    is acted on."""
    entry_id = write_unknown_type(store, CAPACITY, "capacity_forecast", SYSTEM_ACTOR, "forecast")
    _publish(store, capacity_event(*BOTH_FREE, observed_at=_at(0)))
    poller = start_poller()

    letter = wait_for_dead_letter(store, CAPACITY, Groups.POLLER, entry_id)
    assert letter["reason"].startswith(unknown_type_reason(CAPACITY, "capacity_forecast"))
    assert json.loads(letter["original"][DATA_FIELD.decode()])["type"] == "capacity_forecast"
    wait_until(lambda: _commanded(store) == [16], timeout_s=10, what="the scale command")
    assert poller.alive(), poller.log_text()
