"""The monitor process: watch nodes and pods, publish CapacityChanged.

Two watches (never a call per pod) keep the view current; one publisher turns changes into
events, at most one per ``capacity_min_interval_s`` and at least one per
``capacity_heartbeat_s``. The first change after a quiet spell is published after only
``capacity_settle_s``, time for the rest of its burst to arrive, so a lone change costs no
coalescing delay.
"""

import asyncio
import contextlib
import time
from datetime import UTC, datetime

from redis.exceptions import RedisError

from akros_bus import Bus, configure_logging, get_logger
from akros_bus.runner import serve
from akros_kube import Cluster
from akros_monitor.settings import MonitorSettings
from akros_monitor.view import ClusterView
from akros_msgs import new_request_id

_log = get_logger("akros.monitor")


class Monitor:
    def __init__(self, settings: MonitorSettings) -> None:
        self.settings = settings
        self.bus = Bus(settings)
        self.view = ClusterView()
        self._cluster: Cluster | None = None

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            raise RuntimeError("the monitor has not started")
        return self._cluster

    async def _watch_nodes(self) -> None:
        async for event, node in self.cluster.watch("Node", None, ""):
            self.view.observe_node(event, node)

    async def _watch_pods(self) -> None:
        async for event, pod in self.cluster.watch("Pod", None, ""):
            self.view.observe_pod(event, pod)

    async def _publish_capacity(self) -> None:
        last_published = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.capacity_heartbeat_s):
                    await self.view.changed.wait()
            early = last_published + self.settings.capacity_min_interval_s - time.monotonic()
            await asyncio.sleep(max(early, self.settings.capacity_settle_s))
            self.view.changed.clear()
            if not self.view.synced:
                continue
            started = time.perf_counter()
            capacity = self.view.capacity()
            event = capacity.event(request_id=new_request_id(), observed_at=datetime.now(UTC))
            try:
                await self.bus.publish(event)
            except (RedisError, OSError, TimeoutError) as error:
                _log.warning("could not publish capacity; retrying", error=repr(error))
                self.view.changed.set()
                await asyncio.sleep(self.settings.capacity_min_interval_s)
                continue
            last_published = time.monotonic()
            _log.debug(
                "capacity published",
                nodes=len(capacity.nodes),
                pods=len(self.view.pods.items),
                took_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    async def run(self) -> None:
        settings = self.settings
        self._cluster = await Cluster.connect(
            settings.kubeconfig, proxy_from_environment=settings.kube_proxy_from_environment
        )
        try:
            await serve(
                self.bus,
                background=[self._watch_nodes, self._watch_pods, self._publish_capacity],
            )
        finally:
            await self.cluster.close()


def main() -> None:
    settings = MonitorSettings()
    configure_logging(settings.service_name, settings.log_level)
    asyncio.run(Monitor(settings).run())


if __name__ == "__main__":
    main()
