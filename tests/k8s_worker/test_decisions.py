"""The worker's decisions over objects as the API returns them."""

from typing import Any

from akros_k8s_worker.decisions import cluster_holding, never_fits
from akros_msgs import Resources


def _node(name: str, cpu: str, memory: str, gpus: int, model: str | None = None) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": model} if model else {}
    return {
        "metadata": {"name": name, "labels": labels},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "nvidia.com/gpu": str(gpus)}},
    }


NODES = [_node("gpu-1", "64", "512Gi", 8, "A100"), _node("cpu-1", "128", "1Ti", 0)]


def test_a_request_some_node_could_hold_is_feasible() -> None:
    assert never_fits(Resources.of("32", "256Gi", 8), None, NODES) is None


def test_sixty_four_gpus_can_never_fit_and_the_reason_names_the_largest_node() -> None:
    reason = never_fits(Resources.of("8", "64Gi", 64), None, NODES)
    assert reason is not None
    assert "8 CPU, 64Gi memory, 64 GPUs" in reason
    assert "64 CPU, 512Gi memory, 8 GPUs" in reason


def test_an_unknown_gpu_model_can_never_fit() -> None:
    assert (
        never_fits(Resources.of("1", "1Gi", 1), "H100", NODES) == "no node has GPUs of model H100"
    )


def _deployment(env: str, cpu: str, gpus: int) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"akros.io/env": env}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "resources": {
                                "requests": {
                                    "cpu": cpu,
                                    "memory": "1Gi",
                                    "nvidia.com/gpu": str(gpus),
                                }
                            }
                        }
                    ]
                }
            }
        },
    }


def test_the_cluster_holding_skips_the_environment_being_applied() -> None:
    holding = cluster_holding(
        [_deployment("a", "2", 1), _deployment("b", "500m", 0), _deployment("me", "8", 4)],
        excluding="me",
    )
    assert holding.environments == 2
    assert holding.resources == Resources.of("2500m", "2Gi", 1)
