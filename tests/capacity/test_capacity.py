"""The monitor's capacity computation, compared as data."""

from typing import Any

from akros_kube import LISTING, SYNCED
from akros_monitor.capacity import cluster_capacity, pod_demand
from akros_monitor.view import ClusterView
from akros_msgs import NodeCapacity, Resources, ResourceUse

GI = 1024**3


def _node(name: str, cpu: str, memory: str, gpus: int = 0, **spec: Any) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {
        "metadata": {"name": name, "labels": {"pool": name}},
        "spec": spec,
        "status": {"allocatable": allocatable},
    }


def _pod(
    name: str,
    kind: str | None,
    requests: dict[str, str],
    node: str = "",
    phase: str = "Running",
    unschedulable: bool = False,
    init: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": requests}}]}
    if init is not None:
        spec["initContainers"] = [{"name": "i", "resources": {"requests": init}}]
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": phase}
    if unschedulable:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        ]
    labels = {"akros.io/kind": kind} if kind else {}
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "spec": spec,
        "status": status,
    }


def test_requests_are_split_by_owner_per_node_and_in_total_with_gpus_first_class() -> None:
    nodes = [_node("gpu", "64", "512Gi", gpus=8), _node("cpu", "128", "1Ti", unschedulable=True)]
    pods = [
        _pod("env", "environment", {"cpu": "8", "memory": "64Gi", "nvidia.com/gpu": "2"}, "gpu"),
        _pod("svc", "service", {"cpu": "500m", "memory": "1Gi"}, "cpu"),
        _pod("inf", "inference", {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"}, "gpu"),
        _pod("dns", None, {"cpu": "100m", "memory": "70Mi"}, "cpu"),
    ]

    capacity = cluster_capacity(nodes, pods)

    researchers = Resources(cpu_millis=8000, memory_bytes=64 * GI, gpus=2)
    inference = Resources(cpu_millis=4000, memory_bytes=32 * GI, gpus=1)
    service = Resources(cpu_millis=500, memory_bytes=GI)
    other = Resources(cpu_millis=100, memory_bytes=70 * 1024**2)
    assert capacity.nodes == (
        NodeCapacity(
            node="cpu",
            allocatable=Resources(cpu_millis=128_000, memory_bytes=1024 * GI),
            requested=ResourceUse(services=service, other=other),
            schedulable=False,
            labels={"pool": "cpu"},
        ),
        NodeCapacity(
            node="gpu",
            allocatable=Resources(cpu_millis=64_000, memory_bytes=512 * GI, gpus=8),
            requested=ResourceUse(researchers=researchers, inference=inference),
            labels={"pool": "gpu"},
        ),
    )
    assert capacity.allocatable == Resources(cpu_millis=192_000, memory_bytes=1536 * GI, gpus=8)
    assert capacity.requested == ResourceUse(
        researchers=researchers, services=service, inference=inference, other=other
    )
    assert capacity.pending == Resources()


def test_pending_demand_counts_unschedulable_pods_and_names_the_researchers_part() -> None:
    pods = [
        _pod("env", "environment", {"cpu": "2", "nvidia.com/gpu": "4"}, unschedulable=True),
        _pod("inf", "inference", {"cpu": "4", "nvidia.com/gpu": "1"}, unschedulable=True),
        _pod("new", "environment", {"cpu": "1"}, phase="Pending"),
    ]

    capacity = cluster_capacity([_node("gpu", "64", "512Gi", gpus=8)], pods)

    assert capacity.pending == Resources(cpu_millis=6000, gpus=5)
    assert capacity.pending_researchers == Resources(cpu_millis=2000, gpus=4)
    assert capacity.requested == ResourceUse()


def test_finished_pods_hold_nothing_and_init_containers_count_when_larger() -> None:
    assert pod_demand(_pod("done", None, {"cpu": "1"}, "n", phase="Succeeded")) is None
    demand = pod_demand(_pod("init", None, {"cpu": "1", "memory": "1Gi"}, "n", init={"cpu": "3"}))
    assert demand is not None
    assert demand.amounts == (3000, GI, 0)


def test_a_relist_replaces_the_view_and_only_demand_changes_wake_the_publisher() -> None:
    view = ClusterView()
    view.observe_node(LISTING, {})
    view.observe_node("ADDED", _node("gpu", "64", "512Gi", gpus=8))
    view.observe_node(SYNCED, {})
    view.observe_pod(LISTING, {})
    view.observe_pod("ADDED", _pod("gone", "environment", {"cpu": "1"}, "gpu"))
    view.observe_pod(SYNCED, {})
    assert view.synced
    view.changed.clear()

    view.observe_pod("ADDED", _pod("inf", "inference", {"nvidia.com/gpu": "1"}, phase="Pending"))
    assert not view.changed.is_set(), "a pod the scheduler has not seen yet counts nowhere"
    running = _pod("inf", "inference", {"nvidia.com/gpu": "1"}, "gpu")
    view.observe_pod("MODIFIED", running)
    assert view.changed.is_set()
    view.changed.clear()
    heartbeat = {**running, "status": {"phase": "Running", "podIP": "10.0.0.9"}}
    view.observe_pod("MODIFIED", heartbeat)
    assert not view.changed.is_set()

    view.observe_pod(LISTING, {})
    view.observe_pod("ADDED", running)
    assert view.capacity().requested.researchers == Resources(cpu_millis=1000)
    view.observe_pod(SYNCED, {})
    assert view.changed.is_set()
    assert view.capacity().requested == ResourceUse(inference=Resources(gpus=1))


def _pinned_volume(name: str, node: str) -> dict[str, Any]:
    hostname = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
    return {
        "metadata": {"name": name},
        "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [hostname]}
        ]}}},
    }  # fmt: skip


def _with_node_hostname(node: dict[str, Any]) -> dict[str, Any]:
    node["metadata"]["labels"]["kubernetes.io/hostname"] = node["metadata"]["name"]
    return node


def test_a_waiting_environment_whose_volume_is_stored_on_one_node_is_counted_on_that_node() -> None:
    view = ClusterView()
    for name in ("gpu-1", "gpu-2"):
        view.observe_node("ADDED", _with_node_hostname(_node(name, "64", "512Gi", gpus=8)))
    pinned = _pod("kept", "environment", {"cpu": "2", "nvidia.com/gpu": "4"}, unschedulable=True)
    pinned["spec"]["volumes"] = [{"name": "work", "persistentVolumeClaim": {"claimName": "kept"}}]
    free = _pod("new", "environment", {"cpu": "1", "nvidia.com/gpu": "1"}, unschedulable=True)
    view.observe_pod("ADDED", pinned)
    view.observe_pod("ADDED", free)
    unpinned = view.capacity()
    assert [n.pending_researchers for n in unpinned.nodes] == [Resources(), Resources()]

    view.observe_claim(
        "ADDED",
        {
            "metadata": {"name": "kept", "namespace": "ns"},
            "spec": {"volumeName": "pvc-1"},
            "status": {"phase": "Bound"},
        },
    )
    view.observe_volume("ADDED", _pinned_volume("pvc-1", "gpu-2"))

    capacity = view.capacity()
    assert capacity.pending_researchers == Resources(cpu_millis=3000, gpus=5)
    by_node = {n.node: n.pending_researchers for n in capacity.nodes}
    assert by_node == {"gpu-1": Resources(), "gpu-2": Resources(cpu_millis=2000, gpus=4)}
