"""The monitor's capacity publisher writes the read model's cluster view: in-process, on a
real Redis, fed watch events by hand (the monitor is built by its own lifespan, its cluster
client pointed at an address nothing listens on, and never used). A burst of changes is
written at most once per interval, and its last change is written when the interval is up,
not at the heartbeat."""

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import yaml

from akros_devtools import wait_until_async
from akros_kube import LISTING, SYNCED
from akros_kubesim.cli import kubeconfig
from akros_monitor.main import Monitor
from akros_monitor.settings import MonitorSettings
from akros_msgs import Resources
from akros_readmodel import ClusterView, ReadModel

INTERVAL_S = 0.3


class RecordingMonitor(Monitor):
    """The monitor, noting when it writes the cluster view."""

    def __init__(self, settings: MonitorSettings, **resources: Any) -> None:
        super().__init__(settings, **resources)
        self.writes: list[float] = []

    async def _write_cluster_view(self) -> bool:
        self.writes.append(time.monotonic())
        return await super()._write_cluster_view()


NODE = {
    "metadata": {"name": "n1"},
    "status": {
        "allocatable": {"cpu": "64", "memory": "256Gi"},
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


def _pod(name: str) -> dict[str, Any]:
    requests = {"cpu": "1", "memory": "1Gi"}
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"nodeName": "n1", "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": "Running"},
    }


async def test_a_burst_is_written_at_most_once_an_interval_and_its_end_soon_after(
    redis_url: str, tmp_path: Path
) -> None:
    unused_cluster = tmp_path / "kubeconfig"
    unused_cluster.write_text(yaml.safe_dump(kubeconfig("http://127.0.0.1:9")))
    settings = MonitorSettings.model_validate(
        {
            "redis_url": redis_url,
            "kubeconfig": unused_cluster,
            "capacity_heartbeat_s": 60,  # no heartbeat during the test: every write is a change's
            "cluster_view_interval_s": INTERVAL_S,
            "monitor_metrics_port": 0,
        }
    )
    async with RecordingMonitor.open(settings) as monitor:
        await _record_a_burst(monitor)


async def _record_a_burst(monitor: RecordingMonitor) -> None:
    for event, obj in ((LISTING, {}), ("ADDED", NODE), (SYNCED, {})):
        monitor.view.observe_node(event, obj)
    for event, obj in ((LISTING, {}), (SYNCED, {})):
        monitor.view.observe_pod(event, obj)
    read_model = ReadModel(monitor.bus.redis)

    async def written() -> ClusterView | None:
        return await read_model.cluster()

    async def pods_written(count: int) -> bool:
        view = await written()
        return view is not None and view.nodes[0].pods == count

    publisher = asyncio.create_task(monitor._publish_capacity())
    try:
        await wait_until_async(lambda: pods_written(0), timeout_s=5)
        first = await written()
        monitor.node_usage = {"n1": (1500, 2**30)}  # as a usage cycle leaves it
        for index in range(20):
            monitor.view.observe_pod("ADDED", _pod(f"p{index}"))
            await asyncio.sleep(0.05)
        burst_ended = time.monotonic()
        await wait_until_async(lambda: pods_written(20), timeout_s=5)
        last = await written()
    finally:
        publisher.cancel()
        await asyncio.gather(publisher, return_exceptions=True)

    assert first is not None
    assert last is not None
    [node] = first.nodes
    assert (node.name, node.ready, node.used) == ("n1", True, None)
    assert node.allocatable == Resources.of("64", "256Gi")
    [node] = last.nodes
    assert node.requested == Resources.of("20", "20Gi")
    assert node.used == Resources.of("1500m", "1Gi")
    gaps = [later - earlier for earlier, later in itertools.pairwise(monitor.writes)]
    assert len(gaps) >= 2, "the burst is written while it lasts"
    assert min(gaps) >= INTERVAL_S * 0.95, gaps
    assert monitor.writes[-1] - burst_ended < INTERVAL_S + 1, "not left for the heartbeat"
