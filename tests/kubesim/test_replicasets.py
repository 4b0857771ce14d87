"""Deployments through ReplicaSets, driven by the official client and by kubectl 1.20 and 1.37:
ownership, naming, strategies, status conditions, rollout status/history/undo, garbage
collection."""

from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from akros_kubesim.testing import RunningKubesim
from tests.kubesim.conftest import (
    KUBECTL_NEWEST,
    KUBECTL_OLDEST,
    KubectlRunner,
    kubectl_binary,
    kubectl_runner,
)
from tests.kubesim.test_client_api import eventually


def _body(
    name: str,
    replicas: int = 2,
    image: str = "nginx:1.25",
    strategy: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            **({"strategy": strategy} if strategy else {}),
            **spec,
        },
    }


def _replicasets(apps: client.AppsV1Api, namespace: str, name: str) -> list[Any]:
    items = apps.list_namespaced_replica_set(namespace, label_selector=f"app={name}").items
    return sorted(
        items, key=lambda r: int(r.metadata.annotations["deployment.kubernetes.io/revision"])
    )


def _rolled_out(apps: client.AppsV1Api, namespace: str, name: str) -> bool:
    deployment = apps.read_namespaced_deployment(name, namespace)
    status, wanted = deployment.status, deployment.spec.replicas
    progressing = {c.type: c.reason for c in status.conditions or []}.get("Progressing")
    return bool(
        status.observed_generation == deployment.metadata.generation
        and (status.updated_replicas or 0) == wanted
        and (status.available_replicas or 0) == wanted
        and status.replicas == wanted
        and progressing == "NewReplicaSetAvailable"
    )


def _scaling_events(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},reason=ScalingReplicaSet"
    ).items
    return [
        e.message
        for e in sorted(
            events,
            key=lambda e: (
                e.first_timestamp,
                e.metadata.resource_version and int(e.metadata.resource_version),
            ),
        )
    ]


def test_a_deployment_owns_a_replicaset_that_owns_its_pods(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _body("web", replicas=3))
    eventually(lambda: _rolled_out(apps, namespace, "web"))
    (replicaset,) = _replicasets(apps, namespace, "web")
    pod_hash = replicaset.metadata.labels["pod-template-hash"]
    assert replicaset.metadata.name == f"web-{pod_hash}"
    assert replicaset.spec.selector.match_labels == {"app": "web", "pod-template-hash": pod_hash}
    assert replicaset.spec.template.metadata.labels["pod-template-hash"] == pod_hash
    assert replicaset.metadata.annotations == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    (owner,) = replicaset.metadata.owner_references
    deployment = apps.read_namespaced_deployment("web", namespace)
    assert (owner.kind, owner.name, owner.uid) == ("Deployment", "web", deployment.metadata.uid)
    assert owner.controller
    assert owner.block_owner_deletion
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert (replicaset.status.replicas, replicaset.status.ready_replicas) == (3, 3)
    assert replicaset.status.available_replicas == 3
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.metadata.name.startswith(f"web-{pod_hash}-")
        assert len(pod.metadata.name) == len(f"web-{pod_hash}-") + 5
        assert pod.metadata.labels["pod-template-hash"] == pod_hash
        (pod_owner,) = pod.metadata.owner_references
        assert (pod_owner.kind, pod_owner.uid) == ("ReplicaSet", replicaset.metadata.uid)
    conditions = {c.type: c for c in deployment.status.conditions}
    assert (conditions["Available"].status, conditions["Available"].reason) == (
        "True",
        "MinimumReplicasAvailable",
    )
    assert (
        conditions["Progressing"].message
        == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
    )
    assert _scaling_events(core, namespace, "web") == [
        f"Scaled up replica set web-{pod_hash} to 3 from 0"
    ]
    created = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name=web-{pod_hash},reason=SuccessfulCreate"
    ).items
    assert sorted(e.message for e in created) == sorted(
        f"Created pod: {p.metadata.name}" for p in pods
    )
    scale = apps.read_namespaced_replica_set_scale(f"web-{pod_hash}", namespace)
    assert scale.spec.replicas == 3
    assert scale.status.selector == f"app=web,pod-template-hash={pod_hash}"


def test_a_replicaset_replaces_a_deleted_pod(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _body("heal", replicas=2))
    eventually(lambda: _rolled_out(apps, namespace, "heal"))
    victim = core.list_namespaced_pod(namespace, label_selector="app=heal").items[0].metadata.name
    core.delete_namespaced_pod(victim, namespace, grace_period_seconds=0)

    def replaced() -> bool:
        names = [
            p.metadata.name
            for p in core.list_namespaced_pod(namespace, label_selector="app=heal").items
        ]
        return len(names) == 2 and victim not in names

    eventually(replaced)
    (replicaset,) = _replicasets(apps, namespace, "heal")
    deleted = core.list_namespaced_event(
        namespace,
        field_selector=f"involvedObject.name={replicaset.metadata.name},reason=SuccessfulCreate",
    ).items
    assert len(deleted) == 3


def test_a_rolling_update_moves_one_pod_at_a_time_as_new_pods_become_available(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    one_by_one = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    apps.create_namespaced_deployment(namespace, _body("roll", replicas=3, strategy=one_by_one))
    eventually(lambda: _rolled_out(apps, namespace, "roll"))
    apps.patch_namespaced_deployment(
        "roll",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}},
    )
    eventually(
        lambda: (
            len(_replicasets(apps, namespace, "roll")) == 2 and _rolled_out(apps, namespace, "roll")
        )
    )
    old, new = (r.metadata.name for r in _replicasets(apps, namespace, "roll"))
    assert _scaling_events(core, namespace, "roll") == [
        f"Scaled up replica set {old} to 3 from 0",
        f"Scaled up replica set {new} to 1 from 0",
        f"Scaled down replica set {old} to 2 from 3",
        f"Scaled up replica set {new} to 2 from 1",
        f"Scaled down replica set {old} to 1 from 2",
        f"Scaled up replica set {new} to 3 from 2",
        f"Scaled down replica set {old} to 0 from 1",
    ]
    old_rs, new_rs = _replicasets(apps, namespace, "roll")
    assert (old_rs.spec.replicas, new_rs.spec.replicas) == (0, 3)
    assert new_rs.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    deployment = apps.read_namespaced_deployment("roll", namespace)
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    assert deployment.status.observed_generation == 2


def test_recreate_creates_no_new_pod_while_an_old_one_exists(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(
        namespace, _body("re", replicas=2, strategy={"type": "Recreate"})
    )
    eventually(lambda: _rolled_out(apps, namespace, "re"))
    start = core.list_namespaced_pod(namespace).metadata.resource_version
    old_hash = _replicasets(apps, namespace, "re")[0].metadata.labels["pod-template-hash"]
    apps.patch_namespaced_deployment(
        "re",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}},
    )
    eventually(
        lambda: len(_replicasets(apps, namespace, "re")) == 2 and _rolled_out(apps, namespace, "re")
    )
    present: set[str] = set()
    new_pods_seen = 0
    stream = watch.Watch().stream(
        core.list_namespaced_pod, namespace, resource_version=start, timeout_seconds=1
    )
    for event in stream:
        pod = event["object"]
        labels = pod.metadata.labels or {}
        if event["type"] == "DELETED":
            present.discard(pod.metadata.name)
            continue
        if event["type"] == "ADDED" and labels.get("pod-template-hash") != old_hash:
            assert not {p for p in present if p.startswith(f"re-{old_hash}-")}, present
            new_pods_seen += 1
        present.add(pod.metadata.name)
    assert new_pods_seen == 2
    _, new = (r.metadata.name for r in _replicasets(apps, namespace, "re"))
    assert _scaling_events(core, namespace, "re")[-2:] == [
        f"Scaled down replica set re-{old_hash} to 0 from 2",
        f"Scaled up replica set {new} to 2 from 0",
    ]


def test_min_ready_seconds_delays_availability(apps: client.AppsV1Api, namespace: str) -> None:
    """minReadySeconds 100 passes in 1 s at the tests' time factor of 0.01."""
    apps.create_namespaced_deployment(namespace, _body("slow", replicas=1, minReadySeconds=100))
    eventually(
        lambda: apps.read_namespaced_deployment("slow", namespace).status.ready_replicas == 1
    )
    status = apps.read_namespaced_deployment("slow", namespace).status
    assert not status.available_replicas
    assert status.unavailable_replicas == 1
    assert {c.type: c.reason for c in status.conditions}[
        "Available"
    ] == "MinimumReplicasUnavailable"
    eventually(lambda: _rolled_out(apps, namespace, "slow"), timeout=5)


def test_a_rollout_that_cannot_progress_exceeds_its_deadline(
    apps: client.AppsV1Api, namespace: str
) -> None:
    """progressDeadlineSeconds 100 passes in 1 s; the image cannot be pulled."""
    apps.create_namespaced_deployment(
        namespace,
        _body("stuck", replicas=1, image="registry.invalid/x:1", progressDeadlineSeconds=100),
    )

    def progressing() -> Any:
        conditions = apps.read_namespaced_deployment("stuck", namespace).status.conditions or []
        return next((c for c in conditions if c.type == "Progressing"), None)

    assert eventually(progressing).reason in ("NewReplicaSetCreated", "ReplicaSetUpdated")
    timed_out = eventually(
        lambda: (c := progressing()) and c.reason == "ProgressDeadlineExceeded" and c, timeout=5
    )
    assert timed_out.status == "False"
    assert timed_out.message.endswith("has timed out progressing.")


def test_the_revision_history_limit_prunes_old_replicasets(
    apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _body("hist", replicas=1, revisionHistoryLimit=1))
    for image in ("nginx:1.26", "nginx:1.27"):
        eventually(lambda: _rolled_out(apps, namespace, "hist"))
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}}
        apps.patch_namespaced_deployment("hist", namespace, patch)
    eventually(
        lambda: (
            _rolled_out(apps, namespace, "hist") and len(_replicasets(apps, namespace, "hist")) == 2
        )
    )
    revisions = [
        r.metadata.annotations["deployment.kubernetes.io/revision"]
        for r in _replicasets(apps, namespace, "hist")
    ]
    assert revisions == ["2", "3"]


def test_both_fenceposts_zero_is_invalid(apps: client.AppsV1Api, namespace: str) -> None:
    frozen = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    with pytest.raises(ApiException) as raised:
        apps.create_namespaced_deployment(namespace, _body("frozen", strategy=frozen))
    assert raised.value.status == 422
    assert "spec.strategy.rollingUpdate.maxUnavailable" in raised.value.body
    assert "may not be 0 when `maxSurge` is 0" in raised.value.body


def test_pod_names_of_a_long_deployment_name_stay_within_63_characters(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    name = "a-very-long-deployment-name-for-a-research-environment-" + "y" * 8
    apps.create_namespaced_deployment(namespace, _body(name, replicas=1))
    (pod,) = eventually(
        lambda: core.list_namespaced_pod(namespace, label_selector=f"app={name}").items
    )
    (replicaset,) = _replicasets(apps, namespace, name)
    assert len(pod.metadata.name) == 63
    assert pod.metadata.name[:58] == f"{replicaset.metadata.name}-"[:58]


# --- kubectl ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[KUBECTL_OLDEST, KUBECTL_NEWEST])
def any_kubectl(
    request: pytest.FixtureRequest,
    cluster: RunningKubesim,
    tmp_path_factory: pytest.TempPathFactory,
) -> KubectlRunner:
    """The oldest and the newest kubectl the project installs, each with its own HOME."""
    home = tmp_path_factory.mktemp(f"kubectl-{request.param}")
    return kubectl_runner(kubectl_binary(request.param), cluster.kubeconfig, home)


def test_kubectl_get_rs_prints_the_replicaset_columns(
    any_kubectl: KubectlRunner, apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _body("cols", replicas=2))
    eventually(lambda: _rolled_out(apps, namespace, "cols"))
    (replicaset,) = _replicasets(apps, namespace, "cols")
    lines = any_kubectl("get", "rs", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert lines[1].split()[:4] == [replicaset.metadata.name, "2", "2", "2"]
    wide = any_kubectl("get", "replicasets", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    pod_hash = replicaset.metadata.labels["pod-template-hash"]
    assert wide[1].split()[5:] == ["main", "nginx:1.25", f"app=cols,pod-template-hash={pod_hash}"]
    described = any_kubectl("describe", "deployment", "cols", "-n", namespace).stdout
    assert f"NewReplicaSet:   {replicaset.metadata.name} (2/2 replicas created)" in described
    assert "Progressing    True    NewReplicaSetAvailable" in described
    assert f"Scaled up replica set {replicaset.metadata.name} to 2 from 0" in described
    rs_described = any_kubectl("describe", "rs", replicaset.metadata.name, "-n", namespace).stdout
    assert "Controlled By:  Deployment/cols" in rs_described
    assert "2 Running / 0 Waiting / 0 Succeeded / 0 Failed" in rs_described
    assert "SuccessfulCreate" in rs_described


def test_kubectl_set_image_rollout_status_history_and_undo(
    any_kubectl: KubectlRunner, apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, _body("app", replicas=2))
    target = ("deployment/app", "-n", namespace)
    status = any_kubectl("rollout", "status", *target, "--timeout=20s").stdout
    assert 'deployment "app" successfully rolled out' in status
    any_kubectl("set", "image", *target, "main=nginx:1.26")
    any_kubectl("annotate", *target, "kubernetes.io/change-cause=upgrade nginx")
    status = any_kubectl("rollout", "status", *target, "--timeout=20s").stdout
    assert 'deployment "app" successfully rolled out' in status
    history = any_kubectl("rollout", "history", *target).stdout.splitlines()
    assert history[1].split() == ["REVISION", "CHANGE-CAUSE"]
    assert [line.split(None, 1) for line in history[2:4]] == [
        ["1", "<none>"],
        ["2", "upgrade nginx"],
    ]
    detail = any_kubectl("rollout", "history", *target, "--revision=1").stdout
    assert "nginx:1.25" in detail
    any_kubectl("rollout", "undo", *target)
    any_kubectl("rollout", "status", *target, "--timeout=20s")
    deployment = apps.read_namespaced_deployment("app", namespace)
    assert deployment.spec.template.spec.containers[0].image == "nginx:1.25"
    revisions = {
        r.spec.template.spec.containers[0].image: r.metadata.annotations[
            "deployment.kubernetes.io/revision"
        ]
        for r in _replicasets(apps, namespace, "app")
    }
    assert revisions == {"nginx:1.25": "3", "nginx:1.26": "2"}
    assert deployment.metadata.annotations["deployment.kubernetes.io/revision"] == "3"


def test_kubectl_rollout_status_fails_when_the_deadline_is_exceeded(
    any_kubectl: KubectlRunner, apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(
        namespace,
        _body("late", replicas=1, image="registry.invalid/x:1", progressDeadlineSeconds=100),
    )
    result = any_kubectl(
        "rollout", "status", "deployment/late", "-n", namespace, "--timeout=20s", check=False
    )
    assert result.returncode != 0
    assert 'deployment "late" exceeded its progress deadline' in result.stderr
