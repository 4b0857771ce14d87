"""Scale commands applied by the worker process through the scale subresource."""

from kubernetes import client

from akros_msgs import SYSTEM_ACTOR, CommandFailed, DeploymentScaled, FailureCode, ScaleDeployment
from tests.k8s_worker.conftest import WorkerHarness


def _scale(request_id: str, replicas: int, deployment: str = "inference") -> ScaleDeployment:
    return ScaleDeployment(
        request_id=request_id,
        actor=SYSTEM_ACTOR,
        namespace="default",
        deployment=deployment,
        replicas=replicas,
    )


def test_scaling_sets_replicas_reports_the_previous_count_and_repeats_harmlessly(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    apps = client.AppsV1Api(kube)
    labels = {"app": "inference"}
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "inference"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "registry.local/pause:1"}]},
                },
            },
        },
    )
    harness.start_worker()

    harness.send(_scale("scale-1", 3))
    first = harness.wait_for_result("scale-1")
    harness.send(_scale("scale-2", 3))
    second = harness.wait_for_result("scale-2")

    assert isinstance(first, DeploymentScaled), harness.logs()
    assert (first.replicas, first.previous_replicas) == (3, 1)
    assert isinstance(second, DeploymentScaled)
    assert (second.replicas, second.previous_replicas) == (3, 3)
    assert apps.read_namespaced_deployment("inference", "default").spec.replicas == 3


def test_scaling_a_missing_deployment_fails_with_not_found(harness: WorkerHarness) -> None:
    harness.start_worker()
    harness.send(_scale("scale-missing", 2, deployment="nowhere"))
    failed = harness.wait_for_result("scale-missing")
    assert isinstance(failed, CommandFailed), harness.logs()
    assert failed.code is FailureCode.NOT_FOUND
    assert failed.reason == "There is no Deployment default/nowhere to scale."
