"""The monitor process: watch nodes and pods, publish CapacityChanged and write the read
model's cluster view; sample usage, publish WorkloadUsage and nudge the owners of under-used
environments.

Watches of nodes, pods, claims and volumes (never a call per pod) keep the view current; one
publisher turns changes into events, at most one per ``capacity_min_interval_s`` and at least
one per ``capacity_heartbeat_s``. The first change after a quiet spell is published after only
``capacity_settle_s``, time for the rest of its burst to arrive, so a lone change costs no
coalescing delay. The same publisher writes the read model's cluster view (GET /v1/cluster)
with a published change, at most once per ``cluster_view_interval_s``: a change that comes
sooner is written when that interval is up.

Usage is sampled on its own clock: each cycle is one list of node metrics, one of pod metrics
and one DCGM scrape, joined with the environment pods the pod watch already holds; the
samples go out in a few WorkloadUsage batches and any notifications in the same round trip.
The node metrics are kept for the cluster view.
"""

import asyncio
import contextlib
import ctypes
import ctypes.util
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from prometheus_client import start_http_server
from redis.exceptions import RedisError

from akros_bus import Bus, get_logger
from akros_bus.runner import Background, run_service
from akros_kube import SYNCED, Cluster, KubeError, NotFoundError
from akros_monitor.metrics import UsageCollector, UsageSnapshot, usage_registry
from akros_monitor.settings import MonitorSettings
from akros_monitor.underuse import (
    EnvironmentUse,
    Underuse,
    UnderusePolicy,
    UnderuseState,
    assess,
    idle_stop_due,
)
from akros_monitor.usage import (
    EnvironmentKey,
    GpuExporter,
    GpuReadings,
    HistoryStep,
    environment_uses,
    gpu_exporters,
    gpu_readings,
    node_usage,
    pod_usage,
    usage_samples,
)
from akros_monitor.usage_state import UnderuseStates
from akros_monitor.view import ClusterView
from akros_msgs import (
    SYSTEM_ACTOR,
    Message,
    Resources,
    StopEnvironment,
    UnderusedEnvironment,
    WorkloadUsage,
    new_request_id,
)
from akros_policy import load_catalog
from akros_readmodel import ReadModel

_log = get_logger("akros.monitor")


def _release_freed_memory() -> None:
    """Hand memory freed by the last list back to the OS (glibc's malloc_trim). Listing
    20,000 objects peaks at a hundred MB of short-lived dicts; without this, the heap keeps
    that peak as resident memory for good. A no-op where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)


def underuse_policy(settings: MonitorSettings) -> UnderusePolicy:
    return UnderusePolicy(
        threshold=settings.underuse_threshold,
        grace=timedelta(seconds=settings.underuse_grace_s),
        minimum_age=timedelta(seconds=settings.underuse_minimum_age_s),
        cool_down=timedelta(seconds=settings.underuse_cool_down_s),
    )


def idle_stop(key: EnvironmentKey, state: UnderuseState, use: EnvironmentUse) -> StopEnvironment:
    """The platform's stop of an environment whose under-use nudge went unanswered, with the
    reason its owner is told."""
    owner, name = key
    since = f"{state.low_since:%Y-%m-%d %H:%M} UTC" if state.low_since else "a while"
    nudged = f"{state.notified_at:%Y-%m-%d %H:%M} UTC" if state.notified_at else "earlier"
    wait_h = use.idle_stop_after.total_seconds() / 3600 if use.idle_stop_after else 0
    return StopEnvironment(
        request_id=new_request_id(),
        actor=SYSTEM_ACTOR,
        owner=owner,
        name=name,
        reason=(
            f"It used about {state.cpu_fraction_mean:.0%} of its CPU since {since}, and the "
            f"nudge of {nudged} went unanswered for {wait_h:g} h, so it was stopped to free "
            f"what it reserves; its volume is kept. Start it again with `akros env start "
            f"{name}` or from Slack (Keep in the nudge spares it)."
        )[:500],
    )


def underused_event(
    key: EnvironmentKey, use: EnvironmentUse, underuse: Underuse, threshold: float
) -> UnderusedEnvironment:
    return UnderusedEnvironment(
        request_id=new_request_id(),
        actor=SYSTEM_ACTOR,
        owner=key[0],
        name=key[1],
        since=underuse.since,
        requested=Resources(
            cpu_millis=use.requested[0], memory_bytes=use.requested[1], gpus=use.requested[2]
        ),
        cpu_used_fraction=underuse.cpu_used_fraction,
        gpu_utilisation=underuse.gpu_utilisation,
        threshold=threshold,
    )


@asynccontextmanager
async def _serving_metrics(
    settings: MonitorSettings, metrics: UsageCollector
) -> AsyncIterator[None]:
    """The usage metrics served on ``monitor_metrics_port`` (none when it is 0) while inside."""
    if not settings.monitor_metrics_port:
        yield
        return
    server, _ = start_http_server(
        settings.monitor_metrics_port,
        addr=settings.monitor_metrics_host,
        registry=usage_registry(metrics),
    )
    try:
        yield
    finally:
        # shutdown() waits for the server thread's loop to notice, up to half a second.
        await asyncio.to_thread(server.shutdown)
        server.server_close()


class Monitor:
    """The monitor, built by ``open`` on a connected cluster and bus."""

    def __init__(
        self,
        settings: MonitorSettings,
        *,
        cluster: Cluster,
        bus: Bus,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.cluster = cluster
        self.bus = bus
        self.view = ClusterView()
        self.metrics = UsageCollector()
        self.gpu_readings = GpuReadings()
        """The last cycle's GPU readings: which nodes' exporters answered."""
        self.policy = underuse_policy(settings)
        # Read once at start, as the gateway reads it: a catalog change (a profile made
        # exempt, or removed) takes effect when the monitor restarts with it.
        catalog = load_catalog(settings.catalog_file)
        self.exempt_profiles = catalog.underuse_exempt_profiles()
        self.idle_stops = catalog.idle_stops()
        self.clock = clock
        self.history = HistoryStep()
        self._history_step_started = time.monotonic()
        self.node_usage: dict[str, tuple[int, int]] | None = None
        """Each node's use at the last usage cycle; None until then, or with no metrics server."""

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: MonitorSettings) -> AsyncIterator[Self]:
        """The monitor's lifespan: connect to the cluster and the bus, serve the usage metrics;
        on the way out stop the bus, close the cluster."""
        cluster = await Cluster.connect(
            settings.kubeconfig, proxy_from_environment=settings.kube_proxy_from_environment
        )
        try:
            bus = Bus(settings)
            await bus.connect()
            try:
                monitor = cls(settings, cluster=cluster, bus=bus)
                async with _serving_metrics(settings, monitor.metrics):
                    yield monitor
            finally:
                await bus.stop()
        finally:
            await cluster.close()

    async def _watch_nodes(self) -> None:
        async for event, node in self.cluster.watch("Node", None, ""):
            self.view.observe_node(event, node)

    async def _watch_pods(self) -> None:
        async for event, pod in self.cluster.watch("Pod", None, ""):
            self.view.observe_pod(event, pod)
            if event == SYNCED:
                _release_freed_memory()

    async def _follow(self, kind: str, observe: Callable[[str, dict[str, Any]], None]) -> None:
        async for event, obj in self.cluster.watch(kind, None, ""):
            observe(event, obj)

    async def _watch_claims(self) -> None:
        await self._follow("PersistentVolumeClaim", self.view.observe_claim)

    async def _watch_volumes(self) -> None:
        await self._follow("PersistentVolume", self.view.observe_volume)

    async def _publish_capacity(self) -> None:
        """Publish capacity on a change (coalesced) or a heartbeat, and write the cluster view
        to the read model at most once per ``cluster_view_interval_s``. Waking only to write
        a late view publishes nothing: an extra CapacityChanged there pushed the next real
        change into the coalescing window (up to 100 ms late)."""
        last_published = 0.0
        view_written = -math.inf
        view_behind = False  # a published change not written to the read model yet
        while True:
            wait_s = self.settings.capacity_heartbeat_s
            if view_behind:  # wake when it may be written, if no change comes first
                due_s = view_written + self.settings.cluster_view_interval_s - time.monotonic()
                wait_s = max(0.0, min(wait_s, due_s))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self.view.changed.wait()
            heartbeat_due = time.monotonic() - last_published >= self.settings.capacity_heartbeat_s
            if self.view.changed.is_set() or heartbeat_due:
                if not await self._publish_capacity_once(last_published):
                    continue
                last_published = time.monotonic()
                view_behind = True
            if view_behind and (
                time.monotonic() - view_written >= self.settings.cluster_view_interval_s
            ):
                view_written = time.monotonic()
                view_behind = not await self._write_cluster_view()

    async def _publish_capacity_once(self, last_published: float) -> bool:
        """Coalesce, then publish the capacity now; False when nothing was published."""
        early = last_published + self.settings.capacity_min_interval_s - time.monotonic()
        await asyncio.sleep(max(early, self.settings.capacity_settle_s))
        self.view.changed.clear()
        if not self.view.synced:
            return False
        started = time.perf_counter()
        capacity = self.view.capacity()
        event = capacity.event(request_id=new_request_id(), observed_at=datetime.now(UTC))
        try:
            await self.bus.publish(event)
        except (RedisError, OSError, TimeoutError) as error:
            _log.warning("could not publish capacity; retrying", error=repr(error))
            self.view.changed.set()
            await asyncio.sleep(self.settings.capacity_min_interval_s)
            return False
        _log.debug(
            "capacity published",
            nodes=len(capacity.nodes),
            pods=len(self.view.pods.items),
            took_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return True

    async def _write_cluster_view(self) -> bool:
        """Write the nodes to the read model; False when Redis did not take them."""
        view = self.view.read_model_view(self.node_usage)
        try:
            await ReadModel(self.bus.redis).put_cluster(view)
        except (RedisError, OSError, TimeoutError) as error:
            _log.warning("could not write the cluster view; retrying", error=repr(error))
            return False
        return True

    async def _gpu_readings(self) -> GpuReadings:
        """Every dcgm-exporter pod, found through the API and scraped through its pod proxy at
        once; an exporter that does not answer leaves its node's GPU use unknown."""
        settings = self.settings
        try:
            pods, _ = await self.cluster.list(
                "Pod", settings.gpu_exporter_namespace, settings.gpu_exporter_selector
            )
        except KubeError as error:
            _log.warning("could not find the GPU exporters", error=repr(error))
            return GpuReadings()
        exporters = gpu_exporters(pods)
        texts = await asyncio.gather(*(self._scrape(exporter) for exporter in exporters))
        readings = gpu_readings(dict(zip(exporters, texts, strict=True)))
        if readings.silent_nodes:
            _log.warning("GPU exporters did not answer", nodes=sorted(readings.silent_nodes))
        return readings

    async def _scrape(self, exporter: GpuExporter) -> str | None:
        try:
            return await self.cluster.pod_proxy_text(
                exporter.namespace,
                exporter.pod,
                self.settings.gpu_exporter_port,
                "metrics",
                timeout=self.settings.gpu_exporter_timeout_s,
            )
        except KubeError as error:
            _log.debug("GPU exporter did not answer", node=exporter.node, error=repr(error))
            return None

    async def _node_usage(self) -> dict[str, tuple[int, int]] | None:
        """Each node's use from metrics.k8s.io; None where no metrics server serves it."""
        try:
            return node_usage((await self.cluster.list("NodeMetrics"))[0])
        except NotFoundError:
            return None

    async def _pod_usage(self) -> dict[str, tuple[int, int]]:
        """Each pod's use from metrics.k8s.io, reduced as soon as it arrives so the 20,000
        listed documents are freed before the cycle builds anything from them: the cycle's
        peak memory is what the monitor's RSS keeps."""
        return pod_usage((await self.cluster.list("PodMetrics"))[0])

    async def sample_usage(self, states: dict[EnvironmentKey, UnderuseState]) -> None:
        """One cycle: fetch, update each environment's state, publish, persist. ``states`` is
        updated in place; the nodes' use is kept for the cluster view."""
        started = time.perf_counter()
        now = self.clock()
        # The three sources at once: one's answer is parsed while another is being served.
        # When one fails the cycle is retried, so the others are not left running.
        nodes = asyncio.ensure_future(self._node_usage())
        pods_used = asyncio.ensure_future(self._pod_usage())
        gpus = asyncio.ensure_future(self._gpu_readings())
        try:
            self.node_usage, used, readings = await asyncio.gather(nodes, pods_used, gpus)
        finally:
            for fetch in (nodes, pods_used, gpus):
                fetch.cancel()
        fetched = time.perf_counter()
        pods = dict(self.view.environment_pods.items)
        self.gpu_readings = readings
        gpu = readings.per_pod
        uses = environment_uses(pods, used, gpu, self.exempt_profiles, self.idle_stops)
        assessed: dict[EnvironmentKey, UnderuseState] = {}
        due: dict[EnvironmentKey, Underuse] = {}
        stops_due: list[EnvironmentKey] = []
        for key, use in uses.items():
            assessed[key], underuse = assess(
                states.get(key, UnderuseState()), use, now, self.policy
            )
            if underuse is not None:
                due[key] = underuse
            assessed[key], stop_due = idle_stop_due(assessed[key], use, now)
            if stop_due:
                stops_due.append(key)
        # The Slack app's "keep" button sets a key per environment; it is read only for the
        # environments due a notification or a stop, not for every environment every cycle.
        read_model = ReadModel(self.bus.redis)
        kept = await read_model.underuse_exempt_among([*due, *stops_due])
        notices: list[UnderusedEnvironment] = []
        for key, underuse in due.items():
            if key in kept:
                assessed[key] = UnderuseState()
            else:
                notices.append(underused_event(key, uses[key], underuse, self.policy.threshold))
        stops: list[StopEnvironment] = []
        for key in stops_due:
            if key in kept:
                assessed[key] = UnderuseState()
            else:
                stops.append(idle_stop(key, assessed[key], uses[key]))
        samples = usage_samples(pods, used, gpu)
        size = self.settings.usage_batch_size
        batches: list[Message] = [
            WorkloadUsage(
                request_id=new_request_id(),
                actor=SYSTEM_ACTOR,
                sampled_at=now,
                samples=samples[start : start + size],
            )
            for start in range(0, len(samples), size)
        ]
        await self.bus.publish_many([*batches, *notices, *stops])
        # The gateway serves owners their notifications from the read model; the events stay
        # on NOTIFICATIONS for every other subscriber (the Slack app).
        await read_model.add_notifications(notices)
        present = {(pod.owner, pod.name) for pod in pods.values()}
        changed = {key: state for key, state in assessed.items() if states.get(key) != state}
        gone = [key for key in states if key not in present]
        await UnderuseStates(self.bus.redis).save(changed, gone)
        states.update(changed)
        for key in gone:
            del states[key]
        await self._record_history(read_model, uses, gone, now)
        self._record_metrics(uses, states, now)
        _log.info(
            "usage sampled",
            environments=len(uses),
            samples=len(samples),
            notified=len(notices),
            idle_stops=len(stops),
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            fetch_ms=round((fetched - started) * 1000, 2),
        )

    async def _record_history(
        self,
        read_model: ReadModel,
        uses: dict[EnvironmentKey, EnvironmentUse],
        gone: list[EnvironmentKey],
        now: datetime,
    ) -> None:
        self.history.add(uses)
        await read_model.forget_usage(gone)
        if time.monotonic() - self._history_step_started < self.settings.usage_history_step_s:
            return
        self._history_step_started = time.monotonic()
        await read_model.record_usage(
            self.history.close(now), keep=self.settings.usage_history_points
        )

    def _record_metrics(
        self,
        uses: dict[EnvironmentKey, EnvironmentUse],
        states: dict[EnvironmentKey, UnderuseState],
        now: datetime,
    ) -> None:
        self.metrics.snapshot = UsageSnapshot(
            environments=uses,
            gpu_exporters_answering=self.gpu_readings.answering_nodes,
            gpu_exporters_silent=self.gpu_readings.silent_nodes,
            capacity=self.view.capacity(),
            underused=sum(
                1
                for state in states.values()
                if state.low_since is not None and now - state.low_since >= self.policy.grace
            ),
        )

    async def _sample_usage_forever(self) -> None:
        states: dict[EnvironmentKey, UnderuseState] | None = None
        while True:
            await asyncio.sleep(self.settings.usage_interval_s)
            if not self.view.synced:
                continue  # environments not listed yet would look gone and lose their state
            try:
                # A full garbage collection waits until the cycle is over.
                with self.bus.activity.busy():
                    if states is None:
                        states = await UnderuseStates(self.bus.redis).load()
                    await self.sample_usage(states)
                _release_freed_memory()
            except (RedisError, OSError, TimeoutError, KubeError) as error:
                _log.warning("could not sample usage; next cycle retries", error=repr(error))

    def background(self) -> Background:
        return [
            self._watch_nodes,
            self._watch_pods,
            self._watch_claims,
            self._watch_volumes,
            self._publish_capacity,
            self._sample_usage_forever,
        ]


def main() -> None:
    settings = MonitorSettings()
    run_service(settings, Monitor.open(settings))


if __name__ == "__main__":
    main()
