"""The nodes' capacity snapshot, computed by a pure function from listed objects."""

from typing import Any

from akros_k8s_worker.cluster_snapshot import cluster_view
from akros_msgs import Resources


def _pod(
    node: str, cpu: str, memory: str, phase: str = "Running", gpus: str = "0"
) -> dict[str, Any]:
    requests = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpus}
    return {
        "spec": {"nodeName": node, "containers": [{"resources": {"requests": requests}}]},
        "status": {"phase": phase},
    }


NODES = [
    {
        "metadata": {"name": "gpu-1"},
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    },
    {
        "metadata": {"name": "cpu-1"},
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi"},
            "conditions": [{"type": "Ready", "status": "False"}],
        },
    },
]


def test_requests_of_running_pods_are_summed_per_node_and_finished_pods_hold_nothing() -> None:
    pods = [
        _pod("gpu-1", "4", "16Gi", gpus="2"),
        _pod("gpu-1", "500m", "1Gi"),
        _pod("gpu-1", "32", "128Gi", phase="Succeeded"),
        {"spec": {"containers": []}, "status": {"phase": "Pending"}},  # not scheduled yet
    ]
    metrics = [{"metadata": {"name": "gpu-1"}, "usage": {"cpu": "1500m", "memory": "8Gi"}}]

    view = cluster_view(NODES, pods, metrics)

    gpu, cpu = sorted(view.nodes, key=lambda n: n.name, reverse=True)
    assert (gpu.name, gpu.ready, gpu.pods) == ("gpu-1", True, 2)
    assert gpu.allocatable == Resources.of("64", "256Gi", 8)
    assert gpu.requested == Resources.of("4500m", "17Gi", 2)
    assert gpu.used == Resources.of("1500m", "8Gi")
    assert (cpu.name, cpu.ready, cpu.pods, cpu.used) == ("cpu-1", False, 0, None)
    assert cpu.requested == Resources()


def test_without_metrics_no_node_has_usage() -> None:
    view = cluster_view(NODES, [], None)

    assert [node.used for node in view.nodes] == [None, None]
    assert [node.name for node in view.nodes] == ["cpu-1", "gpu-1"]
