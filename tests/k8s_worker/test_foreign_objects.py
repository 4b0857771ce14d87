"""Names never hand one researcher's objects to another (issue 18, point 2).

Before, jan's "peter-lab" and jan-peter's "lab" were both named "jan-peter-lab": jan's
create patched jan-peter's Service, NetworkPolicy and Ingress (the URL), and its failure
path deleted jan-peter's Deployment. Names are injective now, and an object that exists
under an environment's name is written, deleted or adopted only when its labels say it is
that environment's: these tests put another owner's objects under the very name jan's
environment gets and show that nothing of them is touched.
"""

from collections.abc import Callable
from typing import Any

from kubernetes import client

from akros_msgs import (
    Actor,
    CommandFailed,
    CreateEnvironment,
    DeleteEnvironment,
    DeleteVolume,
    EnvironmentDeleted,
    EnvironmentReady,
    FailureCode,
    Role,
    Source,
)
from akros_policy.naming import environment_labels, environment_object_name
from tests.k8s_worker.conftest import NAMESPACE, WorkerHarness

JAN = Actor(user_id="jan", source=Source.HTTP, role=Role.RESEARCHER)
JAN_PETER = Actor(user_id="jan-peter", source=Source.HTTP, role=Role.RESEARCHER)
TAKEN = environment_object_name("jan", "peter-lab")
"""The name jan's "peter-lab" gets; the tests put jan-peter's "lab" objects under it."""
THEIRS = environment_labels("jan-peter", "lab")
THEIR_SELECTOR = {"akros.io/owner": "jan-peter", "akros.io/env": "lab"}


def _create(request_id: str, actor: Actor, name: str) -> CreateEnvironment:
    return CreateEnvironment(
        request_id=request_id,
        actor=actor,
        owner=actor.user_id,
        name=name,
        image="pytorch",
        cpu="1",
        memory="2Gi",
    )


def _metadata() -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=TAKEN, labels=dict(THEIRS))


def _namespace(kube: client.ApiClient) -> None:
    """The environments' namespace, before the worker (which would create it) starts."""
    client.CoreV1Api(kube).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE))
    )


def _plant_workload(kube: client.ApiClient) -> None:
    """jan-peter's Deployment, Service and NetworkPolicy, under the name of jan's."""
    _namespace(kube)
    container = client.V1Container(name="workspace", image="registry.local/research/pytorch:1")
    client.AppsV1Api(kube).create_namespaced_deployment(
        NAMESPACE,
        client.V1Deployment(
            metadata=_metadata(),
            spec=client.V1DeploymentSpec(
                replicas=0,
                selector=client.V1LabelSelector(match_labels=THEIR_SELECTOR),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=dict(THEIRS)),
                    spec=client.V1PodSpec(containers=[container]),
                ),
            ),
        ),
    )
    client.CoreV1Api(kube).create_namespaced_service(
        NAMESPACE,
        client.V1Service(
            metadata=_metadata(),
            spec=client.V1ServiceSpec(
                selector=THEIR_SELECTOR, ports=[client.V1ServicePort(port=80, name="http")]
            ),
        ),
    )
    client.NetworkingV1Api(kube).create_namespaced_network_policy(
        NAMESPACE,
        client.V1NetworkPolicy(
            metadata=_metadata(),
            spec=client.V1NetworkPolicySpec(
                pod_selector=client.V1LabelSelector(match_labels=THEIR_SELECTOR),
                policy_types=["Ingress"],
            ),
        ),
    )


def _plant_claim(kube: client.ApiClient) -> None:
    _namespace(kube)
    client.CoreV1Api(kube).create_namespaced_persistent_volume_claim(
        NAMESPACE,
        client.V1PersistentVolumeClaim(
            metadata=_metadata(),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                storage_class_name="local-path",
                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
            ),
        ),
    )


def _versions(kube: client.ApiClient) -> dict[str, tuple[str, str]]:
    """Each object of the taken name that exists: its uid and resourceVersion."""
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    networking = client.NetworkingV1Api(kube)
    listings: dict[str, Any] = {
        "Deployment": apps.list_namespaced_deployment,
        "Service": core.list_namespaced_service,
        "NetworkPolicy": networking.list_namespaced_network_policy,
        "Ingress": networking.list_namespaced_ingress,
        "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim,
    }
    found = {}
    for kind, listing in listings.items():
        for item in listing(NAMESPACE).items:
            if item.metadata.name == TAKEN:
                found[kind] = (item.metadata.uid, item.metadata.resource_version)
    return found


def _create_refused(
    harness: WorkerHarness, kube: client.ApiClient, plant: Callable[[client.ApiClient], None]
) -> tuple[dict[str, tuple[str, str]], CommandFailed]:
    """jan-peter's objects planted, then jan's create of "peter-lab", refused as a conflict:
    the objects' versions before it and the refusal."""
    plant(kube)
    before = _versions(kube)
    harness.start_worker()
    harness.send(_create("take-over", JAN, "peter-lab"))
    failed = harness.wait_for_result("take-over")
    assert isinstance(failed, CommandFailed), harness.logs()
    assert failed.code is FailureCode.CONFLICT
    return before, failed


def test_the_pair_that_collided_gets_two_environments_with_their_own_objects_and_urls(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    harness.send(_create("theirs", JAN_PETER, "lab"))
    harness.send(_create("ours", JAN, "peter-lab"))
    theirs, ours = harness.wait_for_result("theirs"), harness.wait_for_result("ours")
    assert isinstance(theirs, EnvironmentReady), harness.logs()
    assert isinstance(ours, EnvironmentReady), harness.logs()
    assert theirs.url == "https://lab-jan-peter-3.research.akros.local/"
    assert ours.url == "https://peter-lab-jan-9.research.akros.local/"
    services = client.CoreV1Api(kube).list_namespaced_service(NAMESPACE).items
    assert {s.metadata.name: s.metadata.labels["akros.io/owner"] for s in services} == {
        "jan-peter-lab-9": "jan-peter",
        "jan-peter-lab-3": "jan",
    }

    harness.send(DeleteEnvironment(request_id="del", actor=JAN, owner="jan", name="peter-lab"))
    assert isinstance(harness.wait_for_result("del"), EnvironmentDeleted)
    deployments = client.AppsV1Api(kube).list_namespaced_deployment(NAMESPACE).items
    assert [d.metadata.name for d in deployments] == ["jan-peter-lab-9"]
    assert harness.view("jan-peter", "lab")["status"] == "ready"  # type: ignore[index]


def test_a_create_refuses_another_owners_objects_under_its_name_and_leaves_them_alone(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    before, failed = _create_refused(harness, kube, _plant_workload)
    assert f"'{TAKEN}' is not the one of your environment 'peter-lab'" in failed.reason
    assert "'lab'" not in failed.reason  # whose it is instead is not jan's business
    # Not patched (Service, NetworkPolicy), not deleted by the failed start (the Deployment):
    # the same objects at the same versions. jan's own claim stays, as any failed start's.
    after = _versions(kube)
    assert {kind: after[kind] for kind in before} == before
    assert set(after) - set(before) == {"PersistentVolumeClaim"}
    service = client.CoreV1Api(kube).read_namespaced_service(TAKEN, NAMESPACE)
    assert service.spec.selector == THEIR_SELECTOR
    assert harness.view("jan", "peter-lab")["status"] == "failed"  # type: ignore[index]

    # Deleting jan's environment of that name deletes nothing of jan-peter's either.
    harness.send(DeleteEnvironment(request_id="del", actor=JAN, owner="jan", name="peter-lab"))
    assert isinstance(harness.wait_for_result("del"), EnvironmentDeleted), harness.logs()
    after_delete = _versions(kube)
    assert {kind: after_delete[kind] for kind in before} == before


def test_another_owners_claim_under_the_name_is_neither_adopted_nor_deleted(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    before, failed = _create_refused(harness, kube, _plant_claim)
    assert f"PersistentVolumeClaim '{TAKEN}' is not the one of your" in failed.reason
    assert _versions(kube) == before  # nothing else was written either

    harness.send(DeleteVolume(request_id="purge", actor=JAN, owner="jan", name="peter-lab"))
    refused = harness.wait_for_result("purge")
    assert isinstance(refused, CommandFailed)
    assert refused.code is FailureCode.NOT_FOUND
    assert _versions(kube) == before
