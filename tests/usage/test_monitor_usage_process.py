"""The monitor process samples kubesim's simulated usage and nudges idle environments."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import httpx2
import redis.asyncio as aioredis

from akros_devtools import wait_until
from akros_monitor.usage_state import UNDERUSE_STATE_KEY
from akros_readmodel import ReadModel, UsagePoint, underuse_exemption_key
from tests.usage.conftest import GRACE_S, UsageRig

T = TypeVar("T")


async def _read(rig: UsageRig, read: Callable[[ReadModel], Awaitable[T]]) -> T:
    """What the gateway would read from the read model the monitor wrote."""
    connection = aioredis.Redis.from_url(rig.platform.redis.url)
    try:
        return await read(ReadModel(connection))
    finally:
        await connection.aclose()


def test_an_idle_environment_is_flagged_after_the_grace_period_and_a_busy_one_never(
    usage_rig: UsageRig,
) -> None:
    created = time.monotonic()
    usage_rig.environment_pod("ada", "idle", "idle", gpus=1)
    usage_rig.environment_pod("ada", "busy", "busy", gpus=1)
    wait_until(lambda: bool(usage_rig.notified("idle")), timeout_s=15, what="idle flagged")
    assert time.monotonic() - created >= GRACE_S
    [notice] = usage_rig.notified("idle")
    assert notice.owner == "ada"
    assert notice.cpu_used_fraction < notice.threshold
    assert notice.requested.cpu_millis == 2000
    assert notice.gpu_utilisation == 0.0, "read from kubesim's DCGM exposition"
    kept = asyncio.run(_read(usage_rig, lambda model: model.notifications("ada")))
    assert [n.name for n in kept] == ["idle"], "the owner can read it from the gateway"
    time.sleep(2 * GRACE_S)  # several more idle cycles, well inside the cool-down
    assert len(usage_rig.notified("idle")) == 1, "the cool-down holds"
    assert usage_rig.notified("busy") == []


def test_usage_is_published_in_batches_with_every_environment(usage_rig: UsageRig) -> None:
    usage_rig.environment_pod("ada", "lab", "busy")
    usage_rig.environment_pod("bob", "lab", "idle")

    def sampled_both() -> bool:
        return any(len(batch.samples) == 2 for batch in usage_rig.usage_batches())

    wait_until(sampled_both, timeout_s=10, what="a batch with both environments")
    batch = next(b for b in usage_rig.usage_batches() if len(b.samples) == 2)
    by_owner = {sample.owner: sample for sample in batch.samples}
    assert by_owner["ada"].cpu_used_millis > by_owner["bob"].cpu_used_millis
    assert by_owner["ada"].requested.cpu_millis == 2000

    def history() -> list[UsagePoint]:
        return asyncio.run(_read(usage_rig, lambda model: model.usage_history("ada", "lab")))

    wait_until(lambda: len(history()) >= 2, timeout_s=10, what="two history points")
    assert all(point.cpu_requested_millis == 2000 for point in history())


def test_an_environment_that_comes_back_to_life_is_not_nagged(usage_rig: UsageRig) -> None:
    usage_rig.environment_pod("ada", "lab", "idle")
    time.sleep(GRACE_S / 2)
    usage_rig.use_as("ada", "lab", "busy")
    time.sleep(2 * GRACE_S)
    assert usage_rig.notified("lab") == []


def test_exempt_environments_are_never_flagged(usage_rig: UsageRig) -> None:
    usage_rig.redis.set(underuse_exemption_key("ada", "kept"), "1")
    usage_rig.environment_pod("ada", "kept", "idle")
    usage_rig.environment_pod(
        "ada", "labelled", "idle", labels={"akros.io/underuse-exempt": "true"}
    )
    usage_rig.environment_pod("ada", "idle", "idle")
    wait_until(lambda: bool(usage_rig.notified("idle")), timeout_s=15, what="idle flagged")
    time.sleep(GRACE_S)
    assert {n.name for n in usage_rig.notifications()} == {"idle"}


def test_a_monitor_restart_does_not_lose_the_window(usage_rig: UsageRig) -> None:
    usage_rig.environment_pod("ada", "idle", "idle")
    wait_until(
        lambda: bool(usage_rig.redis.hexists(UNDERUSE_STATE_KEY, "ada/idle")),
        timeout_s=10,
        what="the idle streak in Redis",
    )
    usage_rig.platform.kill("monitor")
    killed_at = datetime.now(UTC)
    assert usage_rig.notified("idle") == [], "not yet past the grace period"
    usage_rig.platform.start_service("monitor")
    wait_until(lambda: bool(usage_rig.notified("idle")), timeout_s=15, what="idle flagged")
    [notice] = usage_rig.notified("idle")
    assert notice.since < killed_at, "the streak begun before the restart was kept"


def test_the_monitor_serves_prometheus_metrics(usage_rig: UsageRig) -> None:
    usage_rig.environment_pod("ada", "lab", "busy")

    def reported() -> bool:
        text = httpx2.get(usage_rig.platform.monitor_metrics_url).text
        return 'akros_environment_cpu_used_cores{environment="lab",owner="ada"}' in text

    wait_until(reported, timeout_s=10, what="the environment in /metrics")
    text = httpx2.get(usage_rig.platform.monitor_metrics_url).text
    assert 'akros_environment_cpu_requested_cores{environment="lab",owner="ada"} 2.0' in text
    assert "akros_node_cpu_allocatable_cores{node=" in text
    assert "akros_underused_environments 0.0" in text
