"""The capacity loop end to end: kubesim -> monitor -> poller -> worker -> kubesim, with a
researcher's GPU environment created and deleted through the gateway."""

from collections.abc import Iterator

import pytest
from kubernetes import client

from akros_devtools import wait_until
from tests.e2e.conftest import Running, running_platform

INFERENCE = ("auto-inference", "akros-inference")
GPU = "nvidia.com/gpu"
pytestmark = [pytest.mark.cluster, pytest.mark.gpus]


def _gpus_for_inference(kube: client.ApiClient) -> int:
    """The GPUs auto-inference can fill, one per replica: every node's, less what pods other
    than its own hold (kubesim's default cluster: two 8-GPU servers, so 16)."""
    core = client.CoreV1Api(kube)
    allocatable = sum(
        int((n.status.allocatable or {}).get(GPU, "0")) for n in core.list_node().items
    )
    held = sum(
        int(((c.resources.requests if c.resources else None) or {}).get(GPU, "0"))
        for pod in core.list_pod_for_all_namespaces().items
        if pod.metadata.namespace != INFERENCE[1]
        and pod.status.phase not in {"Succeeded", "Failed"}
        for c in pod.spec.containers
    )
    return allocatable - held


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from running_platform(
        tmp_path_factory.mktemp("capacity"),
        {"AKROS_SCALE_UP_WINDOW_S": "1", "AKROS_CAPACITY_HEARTBEAT_S": "0.5"},
    )


def _inference(running: Running) -> tuple[int, int]:
    """(replicas wanted, replicas ready) of the auto-inference Deployment."""
    deployment = client.AppsV1Api(running.kube).read_namespaced_deployment(*INFERENCE)
    return deployment.spec.replicas, deployment.status.ready_replicas or 0


def test_a_gpu_environment_gets_room_from_inference_which_comes_back_after_it_is_deleted(
    loop: Running,
) -> None:
    all_gpus = _gpus_for_inference(loop.kube)
    wait_until(
        lambda: _inference(loop) == (all_gpus, all_gpus),
        timeout_s=30,
        what="auto-inference to fill every GPU",
    )
    alice = loop.token_for("alice")
    answer = loop.http.post(
        "/v1/environments",
        json={"name": "train", "image": "pytorch", "cpu": "8", "memory": "64Gi", "gpus": 4},
        headers=alice,
    )
    assert answer.status_code == 202, answer.text
    assert loop.settle(answer.json()["request_id"], alice)["status"] == "applied"
    assert loop.http.get("/v1/environments/train", headers=alice).json()["status"] == "ready"
    wait_until(
        lambda: _inference(loop) == (all_gpus - 4, all_gpus - 4),
        timeout_s=10,
        what="auto-inference to settle on the GPUs left",
    )

    deleted = loop.http.delete("/v1/environments/train", headers=alice)
    assert loop.settle(deleted.json()["request_id"], alice)["status"] == "applied"
    wait_until(
        lambda: _inference(loop) == (all_gpus, all_gpus),
        timeout_s=20,
        what="auto-inference to take the GPUs back",
    )
