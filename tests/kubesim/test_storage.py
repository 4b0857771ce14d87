"""Storage seen through the official client and kubectl: storage classes, claims bound through
them, local-path volumes pinned to the node of their first pod, protection and reclaim."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from akros_kubesim.testing import RunningKubesim, run_kubesim
from tests.kubesim.conftest import KubectlRunner
from tests.kubesim.test_client_api import eventually, is_gone

LOCAL_PATH = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "local-path",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "rancher.io/local-path",
    "volumeBindingMode": "WaitForFirstConsumer",
    "reclaimPolicy": "Delete",
}
KEPT = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "local-kept"},
    "provisioner": "rancher.io/local-path",
    "volumeBindingMode": "WaitForFirstConsumer",
    "reclaimPolicy": "Retain",
}
NFS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "nfs"},
    "provisioner": "nfs.csi.k8s.io",
    "allowVolumeExpansion": True,
}
# Two equal nodes: least-allocated scoring alone would spread pods over both.
CLUSTER = {
    "nodes": [
        {"name": "node-a", "cpu": 4, "memory": "16Gi"},
        {"name": "node-b", "cpu": 4, "memory": "16Gi"},
    ],
    "objects": [LOCAL_PATH, KEPT, NFS],
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKubesim]:
    path = Path(tmp_path_factory.mktemp("cluster")) / "cluster.yaml"
    path.write_text(yaml.safe_dump(CLUSTER))
    with run_kubesim(path, pod_start_seconds=0.1) as running:
        yield running


@pytest.fixture
def storage_api(api_client: client.ApiClient) -> client.StorageV1Api:
    return client.StorageV1Api(api_client)


def _claim(name: str, size: str = "1Gi", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
        | spec,
    }


def _pod(name: str, claim: str, cpu: str = "100m", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11",
                    "resources": {"requests": {"cpu": cpu}},
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                }
            ],
            "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": claim}}],
        }
        | spec,
    }


def _events(core: client.CoreV1Api, namespace: str, name: str) -> list[tuple[str, str]]:
    events = core.list_namespaced_event(namespace).items
    return [(e.reason, e.message) for e in events if e.involved_object.name == name]


def _bound(core: client.CoreV1Api, name: str, namespace: str) -> Any:
    claim = core.read_namespaced_persistent_volume_claim(name, namespace)
    return claim if claim.status.phase == "Bound" else None


def _scheduling_message(core: client.CoreV1Api, name: str, namespace: str) -> str | None:
    pod = core.read_namespaced_pod(name, namespace)
    condition = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
    return condition.message if condition is not None and condition.status == "False" else None


def test_a_claim_without_a_class_gets_the_default_class_and_the_protection_finalizer(
    core: client.CoreV1Api, namespace: str
) -> None:
    created = core.create_namespaced_persistent_volume_claim(namespace, _claim("work"))
    assert created.spec.storage_class_name == "local-path"
    assert created.metadata.finalizers == ["kubernetes.io/pvc-protection"]


def test_a_first_consumer_claim_waits_for_a_pod_then_gets_a_local_path_volume_on_its_node(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_persistent_volume_claim(namespace, _claim("work", "5Gi"))
    eventually(
        lambda: (
            ("WaitForFirstConsumer", "waiting for first consumer to be created before binding")
            in _events(core, namespace, "work")
        )
    )
    assert core.read_namespaced_persistent_volume_claim("work", namespace).status.phase == "Pending"

    core.create_namespaced_pod(namespace, _pod("first", "work"))
    claim = eventually(lambda: _bound(core, "work", namespace))
    node = core.read_namespaced_pod("first", namespace).spec.node_name
    assert node
    assert claim.metadata.annotations["volume.kubernetes.io/selected-node"] == node
    assert (
        claim.metadata.annotations["volume.kubernetes.io/storage-provisioner"]
        == "rancher.io/local-path"
    )
    assert claim.metadata.annotations["pv.kubernetes.io/bind-completed"] == "yes"
    assert claim.metadata.annotations["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert claim.status.capacity == {"storage": "5Gi"}
    volume = core.read_persistent_volume(claim.spec.volume_name)
    assert volume.metadata.annotations["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
    assert volume.metadata.finalizers == ["kubernetes.io/pv-protection"]
    assert volume.spec.host_path.path == (
        f"/opt/local-path-provisioner/{volume.metadata.name}_{namespace}_work"
    )
    [term] = volume.spec.node_affinity.required.node_selector_terms
    assert [(e.key, e.operator, e.values) for e in term.match_expressions] == [
        ("kubernetes.io/hostname", "In", [node])
    ]
    assert (volume.spec.claim_ref.name, volume.spec.claim_ref.uid) == ("work", claim.metadata.uid)
    assert volume.spec.persistent_volume_reclaim_policy == "Delete"
    assert volume.status.phase == "Bound"
    assert (
        "ProvisioningSucceeded",
        f"Successfully provisioned volume {volume.metadata.name}",
    ) in _events(core, namespace, "work")


def test_later_pods_of_a_claim_only_schedule_on_the_node_of_its_volume(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_persistent_volume_claim(namespace, _claim("work"))
    core.create_namespaced_pod(namespace, _pod("first", "work", cpu="2"))
    eventually(lambda: _bound(core, "work", namespace))
    node = core.read_namespaced_pod("first", namespace).spec.node_name
    other = {"node-a": "node-b", "node-b": "node-a"}[node]

    # The other node has far more room left, yet the volume exists only on the first one.
    core.create_namespaced_pod(namespace, _pod("second", "work"))
    assert eventually(lambda: core.read_namespaced_pod("second", namespace).spec.node_name) == node

    core.create_namespaced_pod(
        namespace, _pod("elsewhere", "work", nodeSelector={"kubernetes.io/hostname": other})
    )
    message = eventually(lambda: _scheduling_message(core, "elsewhere", namespace))
    assert message == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had volume node affinity conflict."
    )


def test_a_pod_whose_claim_is_missing_stays_pending_until_the_claim_exists(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("early", "later"))
    message = eventually(lambda: _scheduling_message(core, "early", namespace))
    assert message == '0/2 nodes are available: persistentvolumeclaim "later" not found.'
    core.create_namespaced_persistent_volume_claim(namespace, _claim("later"))
    eventually(lambda: core.read_namespaced_pod("early", namespace).spec.node_name)
    eventually(lambda: _bound(core, "later", namespace))


def test_an_immediate_class_binds_at_once_without_node_affinity(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_persistent_volume_claim(
        namespace, _claim("shared", storageClassName="nfs", accessModes=["ReadWriteMany"])
    )
    claim = eventually(lambda: _bound(core, "shared", namespace))
    volume = core.read_persistent_volume(claim.spec.volume_name)
    assert volume.spec.node_affinity is None
    assert volume.spec.csi.driver == "nfs.csi.k8s.io"
    assert claim.status.access_modes == ["ReadWriteMany"]


def test_a_claim_naming_a_missing_class_fails_to_provision_until_the_class_appears(
    core: client.CoreV1Api, storage_api: client.StorageV1Api, namespace: str
) -> None:
    core.create_namespaced_persistent_volume_claim(
        namespace, _claim("gold", storageClassName="gold")
    )
    core.create_namespaced_pod(namespace, _pod("user", "gold"))
    eventually(
        lambda: (
            ("ProvisioningFailed", 'storageclass.storage.k8s.io "gold" not found')
            in _events(core, namespace, "gold")
        )
    )
    message = eventually(lambda: _scheduling_message(core, "user", namespace))
    assert message == '0/2 nodes are available: storageclass.storage.k8s.io "gold" not found.'
    storage_api.create_storage_class(
        {"metadata": {"name": "gold"}, "provisioner": "gold.example.com"}
    )
    try:
        eventually(lambda: _bound(core, "gold", namespace))
        eventually(lambda: core.read_namespaced_pod("user", namespace).spec.node_name)
    finally:
        storage_api.delete_storage_class("gold")


def test_a_claim_with_no_class_binds_only_to_a_matching_volume_made_by_hand(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_persistent_volume_claim(
        namespace, _claim("manual", "2Gi", storageClassName="")
    )
    core.create_namespaced_pod(namespace, _pod("user", "manual"))
    eventually(
        lambda: (
            (
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )
            in _events(core, namespace, "manual")
        )
    )
    message = eventually(lambda: _scheduling_message(core, "user", namespace))
    assert message == "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."

    def volume(name: str, size: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": f"/srv/{name}"},
            },
        }

    small, big = f"{namespace}-small", f"{namespace}-big"
    core.create_persistent_volume(volume(small, "1Gi"))
    core.create_persistent_volume(volume(big, "3Gi"))
    try:
        claim = eventually(lambda: _bound(core, "manual", namespace))
        assert claim.spec.volume_name == big
        assert claim.status.capacity == {"storage": "3Gi"}
        assert core.read_persistent_volume(small).status.phase == "Available"
        eventually(lambda: core.read_namespaced_pod("user", namespace).spec.node_name)
    finally:
        core.delete_persistent_volume(small)


def test_a_deleted_claim_stays_terminating_while_a_pod_uses_it_then_its_volume_is_deleted(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_persistent_volume_claim(namespace, _claim("work"))
    core.create_namespaced_pod(namespace, _pod("user", "work"))
    volume_name = eventually(lambda: _bound(core, "work", namespace)).spec.volume_name
    core.delete_namespaced_persistent_volume_claim("work", namespace)
    terminating = core.read_namespaced_persistent_volume_claim("work", namespace)
    assert terminating.metadata.deletion_timestamp is not None
    core.delete_persistent_volume(volume_name)
    assert core.read_persistent_volume(volume_name).metadata.deletion_timestamp is not None

    core.delete_namespaced_pod("user", namespace, grace_period_seconds=0)
    eventually(lambda: is_gone(core.read_namespaced_persistent_volume_claim, "work", namespace))
    eventually(lambda: is_gone(core.read_persistent_volume, volume_name, ""))


def _released_volume(core: client.CoreV1Api, namespace: str, claim: str) -> str:
    """A volume of the Retain class, used by a pod, then its pod and claim deleted: Released."""
    core.create_namespaced_persistent_volume_claim(
        namespace, _claim(claim, storageClassName="local-kept")
    )
    core.create_namespaced_pod(namespace, _pod("user", claim))
    volume_name = str(eventually(lambda: _bound(core, claim, namespace)).spec.volume_name)
    core.delete_namespaced_pod("user", namespace, grace_period_seconds=0)
    core.delete_namespaced_persistent_volume_claim(claim, namespace)
    eventually(lambda: core.read_persistent_volume(volume_name).status.phase == "Released")
    return volume_name


def test_a_retained_volume_is_released_when_its_claim_goes(
    core: client.CoreV1Api, namespace: str
) -> None:
    volume_name = _released_volume(core, namespace, "kept")
    core.delete_persistent_volume(volume_name)
    eventually(lambda: is_gone(core.read_persistent_volume, volume_name, ""))


def test_a_released_volume_prebound_to_a_new_claim_naming_it_binds_at_once(
    core: client.CoreV1Api, namespace: str
) -> None:
    """How a volume moves to a claim of another name (akros_k8s_worker.rename): released,
    its claimRef set to the new claim (no uid), and the new claim naming it binds without
    waiting for a consumer, as the persistent volume controller binds a claim that names
    its volume whatever the class's binding mode."""
    volume_name = _released_volume(core, namespace, "old")
    volume = core.read_persistent_volume(volume_name)
    volume.spec.claim_ref = client.V1ObjectReference(namespace=namespace, name="new")
    core.replace_persistent_volume(volume_name, volume)
    eventually(lambda: core.read_persistent_volume(volume_name).status.phase == "Available")

    core.create_namespaced_persistent_volume_claim(
        namespace, _claim("new", storageClassName="local-kept", volumeName=volume_name)
    )
    bound = eventually(lambda: _bound(core, "new", namespace))
    assert bound.spec.volume_name == volume_name
    assert core.read_persistent_volume(volume_name).spec.claim_ref.uid == bound.metadata.uid


def test_kubectl_prints_storage_classes_and_volumes_with_the_api_servers_columns(
    core: client.CoreV1Api, namespace: str, kubectl: KubectlRunner
) -> None:
    classes = kubectl("get", "sc").stdout.splitlines()
    assert classes[0].split() == [
        "NAME",
        "PROVISIONER",
        "RECLAIMPOLICY",
        "VOLUMEBINDINGMODE",
        "ALLOWVOLUMEEXPANSION",
        "AGE",
    ]
    rows = [line.split()[:-1] for line in classes[1:]]  # without the age
    assert rows == [
        ["local-kept", "rancher.io/local-path", "Retain", "WaitForFirstConsumer", "false"],
        [
            "local-path",
            "(default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false",
        ],
        ["nfs", "nfs.csi.k8s.io", "Delete", "Immediate", "true"],
    ]
    core.create_namespaced_persistent_volume_claim(namespace, _claim("work"))
    core.create_namespaced_pod(namespace, _pod("user", "work"))
    volume_name = eventually(lambda: _bound(core, "work", namespace)).spec.volume_name
    header, row = kubectl("get", "pv", volume_name).stdout.splitlines()
    assert header.split() == [
        "NAME",
        "CAPACITY",
        "ACCESS",
        "MODES",
        "RECLAIM",
        "POLICY",
        "STATUS",
        "CLAIM",
        "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS",
        "REASON",
        "AGE",
    ]
    assert row.split()[:8] == [
        volume_name,
        "1Gi",
        "RWO",
        "Delete",
        "Bound",
        f"{namespace}/work",
        "local-path",
        "<unset>",
    ]
