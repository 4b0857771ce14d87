"""The worker and storage as the cluster has it: a class it must be told, and kept volumes
that local storage pins to one node."""

from kubernetes import client

from akros_devtools import wait_until
from akros_msgs import (
    CommandFailed,
    CreateEnvironment,
    DeleteEnvironment,
    EnvironmentDeleted,
    EnvironmentReady,
    FailureCode,
)
from tests.k8s_worker.conftest import ALICE, NAMESPACE, WorkerHarness


def _create(request_id: str, name: str, **fields: object) -> CreateEnvironment:
    values: dict[str, object] = {
        "request_id": request_id,
        "actor": ALICE,
        "owner": "alice",
        "name": name,
        "image": "pytorch",
        "cpu": "2",
        "memory": "8Gi",
        **fields,
    }
    return CreateEnvironment.model_validate(values)


def test_the_worker_will_not_start_without_a_storage_class_and_says_which_setting(
    harness: WorkerHarness,
) -> None:
    del harness.env["AKROS_STORAGE_CLASS"]
    worker = harness.start_worker()

    assert worker.wait(timeout_s=30) != 0
    assert "AKROS_STORAGE_CLASS: Field required" in worker.log_text()


def test_a_gpu_environment_whose_kept_volume_is_on_a_cpu_node_never_fits_and_says_why(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    harness.send(_create("req-cpu", "exp"))
    first = harness.wait_for_result("req-cpu")
    assert isinstance(first, EnvironmentReady), harness.logs()
    assert first.node == "cpu-server-1"  # the only node a pod without GPUs may land on
    harness.send(DeleteEnvironment(request_id="del", actor=ALICE, owner="alice", name="exp"))
    deleted = harness.wait_for_result("del")
    assert isinstance(deleted, EnvironmentDeleted)
    assert deleted.volume_kept
    [volume] = client.CoreV1Api(kube).list_persistent_volume().items
    [term] = volume.spec.node_affinity.required.node_selector_terms
    assert [e.values for e in term.match_expressions] == [["cpu-server-1"]]

    harness.send(_create("req-gpu", "exp", gpus=1, cpu="8", memory="64Gi"))
    refused = harness.wait_for_result("req-gpu", timeout_s=10)

    assert isinstance(refused, CommandFailed), refused
    assert refused.code == FailureCode.UNSCHEDULABLE
    assert refused.reason.startswith(
        "The kept work volume is stored on cpu-server-1, which can never fit"
        " 8 CPU, 64Gi memory, 1 GPU; it offers"
    ), refused.reason
    assert "delete the volume" in refused.reason
    assert not client.AppsV1Api(kube).list_namespaced_deployment(NAMESPACE).items


def test_an_environment_that_fits_its_kept_volumes_node_is_reattached_there(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    harness.send(_create("req-1", "exp"))
    assert isinstance(harness.wait_for_result("req-1"), EnvironmentReady), harness.logs()
    harness.send(DeleteEnvironment(request_id="del", actor=ALICE, owner="alice", name="exp"))
    assert isinstance(harness.wait_for_result("del"), EnvironmentDeleted)
    # The old pod's end must not settle the new request (issue 16.2, the lifecycle's own).
    core = client.CoreV1Api(kube)
    wait_until(
        lambda: not core.list_namespaced_pod(NAMESPACE).items, timeout_s=20, what="the old pod"
    )

    harness.send(_create("req-2", "exp", cpu="16", memory="64Gi"))
    again = harness.wait_for_result("req-2")

    assert isinstance(again, EnvironmentReady), harness.logs()
    assert again.node == "cpu-server-1"
