"""The monitor process samples kubesim's simulated usage and nudges idle environments."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import httpx2
import redis.asyncio as aioredis
from kubernetes import client

from akros_devtools import wait_until
from akros_monitor.usage_state import UNDERUSE_STATE_KEY
from akros_msgs import Resources
from akros_readmodel import ClusterView, ReadModel, UsagePoint, underuse_exemption_key
from tests.usage.conftest import GRACE_S, NAMESPACE, UsageRig

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
    # Several more idle cycles, well inside the cool-down.
    usage_rig.sampled_through(2 * GRACE_S, "idle")
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
    usage_rig.sampled_through(GRACE_S / 2, "lab")
    usage_rig.use_as("ada", "lab", "busy")
    usage_rig.sampled_through(2 * GRACE_S, "lab")
    assert usage_rig.notified("lab") == []


def test_exempt_environments_are_never_flagged(usage_rig: UsageRig) -> None:
    usage_rig.redis.set(underuse_exemption_key("ada", "kept"), "1")
    usage_rig.environment_pod("ada", "kept", "idle")
    usage_rig.environment_pod(
        "ada", "labelled", "idle", labels={"akros.io/underuse-exempt": "true"}
    )
    usage_rig.environment_pod("ada", "idle", "idle")
    wait_until(lambda: bool(usage_rig.notified("idle")), timeout_s=15, what="idle flagged")
    usage_rig.sampled_through(GRACE_S, "kept")
    usage_rig.sampled_through(0, "labelled")
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


def test_the_monitor_writes_each_nodes_allocatable_requests_and_use_to_the_read_model(
    usage_rig: UsageRig,
) -> None:
    usage_rig.environment_pod("ada", "lab", "busy", gpus=1)
    wait_until(
        lambda: (
            usage_rig.core.read_namespaced_pod("ada-lab-0", NAMESPACE).status.phase == "Running"
        ),
        timeout_s=10,
        what="the environment's pod running",
    )
    bound_to = usage_rig.core.read_namespaced_pod("ada-lab-0", NAMESPACE).spec.node_name

    def scraped() -> bool:
        # As metrics-server, kubesim counts a pod in its node's use from its first scrape on.
        pod_metrics = client.CustomObjectsApi(usage_rig.kube).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", NAMESPACE, "pods"
        )["items"]
        return any(m["metadata"]["name"] == "ada-lab-0" for m in pod_metrics)

    wait_until(scraped, timeout_s=10, what="the pod's first metrics scrape")
    metrics = client.CustomObjectsApi(usage_rig.kube).list_cluster_custom_object(
        "metrics.k8s.io", "v1beta1", "nodes"
    )["items"]
    used = {m["metadata"]["name"]: Resources.of(**m["usage"]) for m in metrics}
    pods: dict[str, int] = {}
    for pod in usage_rig.core.list_pod_for_all_namespaces().items:
        if pod.spec.node_name and pod.status.phase not in {"Succeeded", "Failed"}:
            pods[pod.spec.node_name] = pods.get(pod.spec.node_name, 0) + 1

    def view() -> ClusterView | None:
        return asyncio.run(_read(usage_rig, lambda model: model.cluster()))

    def caught_up() -> bool:
        current = view()
        return (
            current is not None
            and {n.name: n.used for n in current.nodes} == used
            and {n.name: n.pods for n in current.nodes if n.pods} == pods
        )

    wait_until(caught_up, timeout_s=15, what="the pod and the nodes' use in the cluster view")
    current = view()
    assert current is not None
    by_name = {node.name: node for node in current.nodes}
    for node in usage_rig.core.list_node().items:
        allocatable = node.status.allocatable
        ready = next(c.status for c in node.status.conditions if c.type == "Ready")
        shown = by_name.pop(node.metadata.name)
        assert shown.allocatable == Resources.of(
            allocatable["cpu"], allocatable["memory"], int(allocatable.get("nvidia.com/gpu", 0))
        )
        assert shown.ready is (ready == "True")
    assert by_name == {}, "every node, and no other"
    mine = next(node for node in current.nodes if node.name == bound_to)
    assert mine.requested == Resources.of("2", "4Gi", 1)
    empty = [node.used for node in current.nodes if node.pods == 0]
    assert mine.used is not None
    assert empty, "a node with no pod to compare with"
    assert all(use is not None and mine.used.cpu_millis > use.cpu_millis for use in empty)


def test_a_gpu_environment_whose_nodes_exporter_is_silent_is_unknown_never_idle(
    usage_rig: UsageRig,
) -> None:
    """Each GPU node's dcgm-exporter knows only its node's GPUs: the monitor scrapes every one,
    and an environment whose exporter does not answer is not judged on its CPU alone."""
    silence = httpx2.put(
        usage_rig.platform.kubesim_url + "/_kubesim/dcgm/silent", json={"nodes": ["gpu-server-2"]}
    )
    silence.raise_for_status()
    usage_rig.environment_pod("ada", "dark", "idle", gpus=1, node="gpu-server-2")
    usage_rig.environment_pod("ada", "seen", "idle", gpus=1, node="gpu-server-1")
    wait_until(lambda: bool(usage_rig.notified("seen")), timeout_s=15, what="seen flagged")
    [seen] = usage_rig.notified("seen")
    assert seen.gpu_utilisation == 0.0

    def samples_after_the_nudge() -> list[float | None]:
        batches = [b for b in usage_rig.usage_batches() if b.occurred_at > seen.occurred_at]
        return [s.gpu_utilisation for b in batches for s in b.samples if s.environment == "dark"]

    # The two started together: by the time a later cycle measured "dark" again, it would
    # have been flagged too, had its unknown GPU use been taken for idleness.
    wait_until(lambda: len(samples_after_the_nudge()) >= 3, timeout_s=10, what="later cycles")
    assert set(samples_after_the_nudge()) == {None}
    assert usage_rig.notified("dark") == []
    text = httpx2.get(usage_rig.platform.monitor_metrics_url).text
    assert 'akros_node_gpu_exporter_up{node="gpu-server-2"} 0.0' in text
    assert 'akros_node_gpu_exporter_up{node="gpu-server-1"} 1.0' in text
