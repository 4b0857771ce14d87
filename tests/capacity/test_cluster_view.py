"""The read model's cluster view (GET /v1/cluster, the dashboard), computed by the monitor
from the nodes and pods its watches reduced and the node metrics of its last usage cycle."""

from collections.abc import Mapping, Sequence
from typing import Any

from akros_kube import LISTING, SYNCED
from akros_monitor.capacity import node_info, node_views, pod_demand
from akros_monitor.usage import node_usage
from akros_monitor.view import ClusterView
from akros_msgs import Resources
from akros_readmodel import NodeView


def _pod(
    name: str,
    node: str,
    cpu: str,
    memory: str,
    phase: str = "Running",
    gpus: str = "0",
    init_cpu: str | None = None,
) -> dict[str, Any]:
    requests = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpus}
    spec: dict[str, Any] = {"containers": [{"resources": {"requests": requests}}]}
    if node:
        spec["nodeName"] = node
    if init_cpu is not None:
        spec["initContainers"] = [{"resources": {"requests": {"cpu": init_cpu}}}]
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": spec, "status": {"phase": phase}}


def _node(name: str, allocatable: dict[str, str], ready: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "allocatable": allocatable,
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": ready},
            ],
        },
    }


NODES = [
    _node("gpu-1", {"cpu": "64", "memory": "256Gi", "nvidia.com/gpu": "8"}, ready="True"),
    _node("cpu-1", {"cpu": "16", "memory": "64Gi"}, ready="False"),
]


def _views(
    pods: list[dict[str, Any]], metrics: Sequence[Mapping[str, Any]] | None
) -> list[NodeView]:
    demands = [demand for pod in pods if (demand := pod_demand(pod)) is not None]
    used = None if metrics is None else node_usage(metrics)
    return node_views([node_info(node) for node in NODES], demands, used)


def test_requests_of_running_pods_are_summed_per_node_and_finished_pods_hold_nothing() -> None:
    pods = [
        _pod("a", "gpu-1", "4", "16Gi", gpus="2"),
        _pod("b", "gpu-1", "500m", "1Gi", init_cpu="2"),  # its init container is larger
        _pod("c", "gpu-1", "32", "128Gi", phase="Succeeded"),
        _pod("d", "", "8", "8Gi", phase="Pending"),  # not scheduled yet
    ]
    metrics = [{"metadata": {"name": "gpu-1"}, "usage": {"cpu": "1500m", "memory": "8Gi"}}]

    cpu, gpu = _views(pods, metrics)

    assert (gpu.name, gpu.ready, gpu.pods) == ("gpu-1", True, 2)
    assert gpu.allocatable == Resources.of("64", "256Gi", 8)
    assert gpu.requested == Resources.of("6", "17Gi", 2)
    assert gpu.used == Resources.of("1500m", "8Gi")
    assert (cpu.name, cpu.ready, cpu.pods, cpu.used) == ("cpu-1", False, 0, None)
    assert cpu.allocatable == Resources.of("16", "64Gi")
    assert cpu.requested == Resources()


def test_without_metrics_no_node_has_usage() -> None:
    views = _views([], None)

    assert [node.used for node in views] == [None, None]
    assert [node.name for node in views] == ["cpu-1", "gpu-1"]


def test_node_metrics_in_nanocores_are_read_and_a_malformed_report_is_left_out() -> None:
    metrics = [
        {"metadata": {"name": "gpu-1"}, "usage": {"cpu": "2500000000n", "memory": "1048576Ki"}},
        {"metadata": {"name": "cpu-1"}, "usage": {"cpu": "lots", "memory": "1Gi"}},
    ]

    assert node_usage(metrics) == {"gpu-1": (2500, 1024**3)}
    cpu, gpu = _views([], metrics)
    assert (cpu.used, gpu.used) == (None, Resources.of("2500m", "1Gi"))


def _synced_view() -> ClusterView:
    view = ClusterView()
    view.observe_node(LISTING, {})
    for node in NODES:
        view.observe_node("ADDED", node)
    view.observe_node(SYNCED, {})
    view.observe_pod(LISTING, {})
    view.observe_pod("ADDED", _pod("a", "gpu-1", "4", "16Gi", gpus="2"))
    view.observe_pod(SYNCED, {})
    view.changed.clear()
    return view


def test_the_watch_fed_view_follows_pods_and_a_nodes_readiness() -> None:
    view = _synced_view()
    view.observe_pod("ADDED", _pod("b", "cpu-1", "1", "1Gi"))
    view.observe_pod("MODIFIED", _pod("a", "gpu-1", "4", "16Gi", gpus="2", phase="Failed"))

    cpu, gpu = view.read_model_view(None).nodes
    assert (cpu.pods, cpu.requested) == (1, Resources.of("1", "1Gi"))
    assert (gpu.pods, gpu.requested) == (0, Resources())
    view.changed.clear()

    view.observe_node("MODIFIED", _node("cpu-1", {"cpu": "16", "memory": "64Gi"}, ready="True"))

    assert view.changed.is_set(), "a node becoming ready is worth a new view"
    assert [node.ready for node in view.read_model_view(None).nodes] == [True, True]


def test_a_node_heartbeat_that_changes_nothing_the_view_shows_wakes_nobody() -> None:
    view = _synced_view()
    refreshed = _node("gpu-1", {"cpu": "64", "memory": "256Gi", "nvidia.com/gpu": "8"}, "True")
    refreshed["status"]["conditions"][1]["lastHeartbeatTime"] = "2026-11-29T12:00:00Z"

    view.observe_node("MODIFIED", refreshed)

    assert not view.changed.is_set()
