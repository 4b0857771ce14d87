"""The one-off migration to injective names (akros_k8s_worker.rename): what it plans, by
value, and a cluster named the old way renamed on kubesim with every running environment
and kept volume still there, then used by the worker."""

from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from kubernetes import client

from akros_devtools import wait_until
from akros_k8s_worker.objects import EnvironmentObjects, environment_objects
from akros_k8s_worker.rename import (
    ANNOTATION_RENAMED_REPLICAS,
    ANNOTATION_RENAMING_TO,
    Rename,
    Renamer,
    named_the_old_way,
    plan_renames,
    renamed_copy,
)
from akros_kube import Cluster
from akros_msgs import CreateEnvironment, DeleteEnvironment, EnvironmentDeleted, EnvironmentReady
from akros_policy import CatalogImage
from akros_policy.naming import environment_labels, legacy_environment_object_name
from akros_readmodel import EnvironmentStatus, ReadModel, pending_environment
from tests.k8s_worker.conftest import ALICE, NAMESPACE, WorkerHarness
from tests.k8s_worker.test_objects import PLATFORM as OBJECTS_PLATFORM

DOMAIN = "research.akros.local"
# The catalog's image in the harness (conftest.CATALOG), this cluster's domain, no class.
PLATFORM = replace(OBJECTS_PLATFORM, domain=DOMAIN, ingress_class=None)
IMAGE = CatalogImage(image="registry.local/research/pytorch:1", port=8888)


def _object(kind: str, name: str, owner: str, env: str, **extra: Any) -> tuple[str, Any]:
    metadata = {"name": name, "labels": environment_labels(owner, env), **extra}
    return kind, {"metadata": metadata}


def test_old_names_are_planned_longest_first_so_no_new_name_is_still_taken() -> None:
    # alice's "exp" becomes alice-exp-5, which was the old name of alice's "exp-5".
    plan = plan_renames(
        [
            _object("Deployment", "alice-exp", "alice", "exp"),
            _object("Service", "alice-exp", "alice", "exp"),
            _object("Deployment", "alice-exp-5", "alice", "exp-5"),
            _object("PersistentVolumeClaim", "bob-keep", "bob", "keep"),
            _object("Service", "carol-new-5", "carol", "new"),  # named the new way already
        ]
    )
    assert plan.renames == [
        Rename("alice", "exp-5", "alice-exp-5", "alice-exp-5-5", ("Deployment",)),
        Rename("alice", "exp", "alice-exp", "alice-exp-5", ("Service", "Deployment")),
        Rename("bob", "keep", "bob-keep", "bob-keep-3", ("PersistentVolumeClaim",)),
    ]
    assert plan.left_alone == []


def test_an_object_whose_name_is_not_its_labels_old_name_is_left_alone() -> None:
    # The old scheme's collision: jan-peter's "lab" labels on jan's "peter-lab" name would
    # read "jan-peter-lab" either way; an object labelled otherwise is never moved.
    plan = plan_renames(
        [
            _object("Service", "jan-peter-lab", "jan-peter", "lab"),
            _object("Service", "someone-else", "jan", "peter-lab"),
        ]
    )
    assert [r.new_name for r in plan.renames] == ["jan-peter-lab-9"]
    assert plan.left_alone == [
        "Service someone-else: labelled jan/peter-lab, whose names are jan-peter-lab-3 "
        "(new) and jan-peter-lab (old)"
    ]


def test_what_a_crashed_run_left_half_moved_is_planned_to_be_finished() -> None:
    deployment = _object(
        "Deployment", "alice-exp-5", "alice", "exp", annotations={ANNOTATION_RENAMED_REPLICAS: "1"}
    )
    volume = (
        "PersistentVolume",
        {"metadata": {"name": "pv-1", "annotations": {ANNOTATION_RENAMING_TO: "bob-keep-3"}}},
    )
    plan = plan_renames([deployment], half_moved=[deployment, volume])
    assert [(r.owner, r.env, r.kinds) for r in plan.renames] == [
        ("alice", "exp", ()),
        ("bob", "keep", ()),
    ]


def test_a_copy_gets_the_new_name_host_backend_and_claim_and_nothing_the_server_set() -> None:
    objects = _legacy(_built("alice", "exp"))
    rename = Rename("alice", "exp", "alice-exp", "alice-exp-5", ())
    ingress = renamed_copy("Ingress", objects.ingress, rename, DOMAIN)
    fresh = _built("alice", "exp")
    assert ingress == fresh.ingress
    service = {**objects.service, "spec": {**objects.service["spec"], "clusterIP": "10.0.0.7"}}
    service["metadata"] = {**service["metadata"], "uid": "u", "resourceVersion": "3"}
    assert renamed_copy("Service", service, rename, DOMAIN) == fresh.service
    assert renamed_copy("Deployment", objects.deployment, rename, DOMAIN) == fresh.deployment


def _built(owner: str, env: str) -> EnvironmentObjects:
    return environment_objects(_command(owner, env), IMAGE, PLATFORM)


def _legacy(objects: EnvironmentObjects) -> EnvironmentObjects:
    """The objects as the worker before the injective names made them: "<owner>-<env>",
    the host "<env>-<owner>.<domain>"."""
    labels = objects.service["metadata"]["labels"]
    owner, env = labels["akros.io/owner"], labels["akros.io/env"]
    old = legacy_environment_object_name(owner, env)
    manifests = [
        objects.volume_claim,
        objects.deployment,
        objects.service,
        objects.ingress,
        objects.network_policy,
    ]
    renamed = []
    for manifest in manifests:
        copied = {**manifest, "metadata": {**manifest["metadata"], "name": old}}
        renamed.append(copied)
    claim, deployment, service, ingress, policy = renamed
    pod = deployment["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "work", "persistentVolumeClaim": {"claimName": old}}]
    rule = ingress["spec"]["rules"][0]
    ingress["spec"] = {
        **ingress["spec"],
        "rules": [
            {
                "host": f"{env}-{owner}.{DOMAIN}",
                "http": {
                    "paths": [
                        {
                            **rule["http"]["paths"][0],
                            "backend": {"service": {"name": old, "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
        "tls": [{"hosts": [f"{env}-{owner}.{DOMAIN}"]}],
    }
    return EnvironmentObjects(claim, deployment, service, ingress, policy)


def _names(kube: client.ApiClient) -> dict[str, list[str]]:
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    networking = client.NetworkingV1Api(kube)
    return {
        "deployments": sorted(
            d.metadata.name for d in apps.list_namespaced_deployment(NAMESPACE).items
        ),
        "services": sorted(s.metadata.name for s in core.list_namespaced_service(NAMESPACE).items),
        "ingresses": sorted(
            i.metadata.name for i in networking.list_namespaced_ingress(NAMESPACE).items
        ),
        "policies": sorted(
            p.metadata.name for p in networking.list_namespaced_network_policy(NAMESPACE).items
        ),
        "claims": sorted(
            c.metadata.name for c in core.list_namespaced_persistent_volume_claim(NAMESPACE).items
        ),
    }


def _volumes(kube: client.ApiClient) -> dict[str, tuple[str, str, str]]:
    """Each volume: its uid, the claim it is bound to, its reclaim policy."""
    return {
        v.metadata.name: (
            v.metadata.uid,
            (v.spec.claim_ref.name if v.spec.claim_ref else ""),
            v.spec.persistent_volume_reclaim_policy,
        )
        for v in client.CoreV1Api(kube).list_persistent_volume().items
    }


def _running(kube: client.ApiClient, claim: str) -> bool:
    pods = client.CoreV1Api(kube).list_namespaced_pod(NAMESPACE).items
    return any(
        p.status.phase == "Running"
        and any(
            v.persistent_volume_claim and v.persistent_volume_claim.claim_name == claim
            for v in p.spec.volumes or []
        )
        for p in pods
    )


async def _old_cluster(
    cluster: Cluster, read_model: ReadModel, kube: client.ApiClient
) -> dict[str, tuple[str, str, str]]:
    """As the old worker left them: alice's "exp" and "exp-5" running (the new name of the
    first is the old name of the second), bob's "keep" deleted with its volume kept; the
    volumes as they are then."""
    await cluster.ensure_namespace(NAMESPACE)
    running = {("alice", "exp"), ("alice", "exp-5")}
    for owner, env in [*running, ("bob", "keep")]:
        objects = _legacy(_built(owner, env))
        await cluster.create(objects.volume_claim)
        for manifest in (objects.service, objects.ingress, objects.network_policy):
            await cluster.create(manifest)
        await cluster.create(objects.deployment)
    for owner, env in running:
        view = pending_environment(_command(owner, env))
        await read_model.put_environment(
            view.model_copy(
                update={
                    "status": EnvironmentStatus.READY,
                    "url": f"https://{env}-{owner}.{DOMAIN}/",
                }
            )
        )
    wait_until(
        lambda: (
            _running(kube, "alice-exp")
            and _running(kube, "alice-exp-5")
            and _running(kube, "bob-keep")
        ),
        timeout_s=20,
        what="the old environments to run",
    )
    # bob deleted "keep" keeping its volume: the old worker deleted all but the claim.
    await cluster.delete("Deployment", "bob-keep", NAMESPACE)
    for kind in ("Service", "Ingress", "NetworkPolicy"):
        await cluster.delete(kind, "bob-keep", NAMESPACE)
    wait_until(lambda: not _running(kube, "bob-keep"), timeout_s=20, what="bob's pod to go")
    volumes_before = _volumes(kube)
    assert sorted(claim for _, claim, _ in volumes_before.values()) == [
        "alice-exp",
        "alice-exp-5",
        "bob-keep",
    ]
    return volumes_before


@pytest.mark.asyncio
async def test_a_cluster_named_the_old_way_is_renamed_keeping_every_environment_and_volume(
    harness: WorkerHarness, kube: client.ApiClient, redis_url: str
) -> None:
    cluster = await Cluster.connect(harness.kubesim.kubeconfig)
    connection = aioredis.Redis.from_url(redis_url)
    read_model = ReadModel(connection)
    try:
        volumes_before = await _old_cluster(cluster, read_model, kube)

        said: list[str] = []
        renamer = Renamer(cluster, NAMESPACE, DOMAIN, read_model, said.append, poll_s=0.05)
        await renamer.apply(await renamer.plan())
        assert [line for line in said if not line.startswith("  ")] == [
            "alice/exp-5: alice-exp-5 -> alice-exp-5-5",
            "alice/exp: alice-exp -> alice-exp-5",
            "bob/keep: bob-keep -> bob-keep-3",
        ]

        new_names = ["alice-exp-5", "alice-exp-5-5"]
        assert _names(kube) == {
            "deployments": new_names,
            "services": new_names,
            "ingresses": new_names,
            "policies": new_names,
            "claims": ["alice-exp-5", "alice-exp-5-5", "bob-keep-3"],
        }
        # The same volumes (names, uids), each bound to its environment's new claim, with
        # the reclaim policy they had.
        moved = {
            "alice-exp": "alice-exp-5",
            "alice-exp-5": "alice-exp-5-5",
            "bob-keep": "bob-keep-3",
        }
        assert _volumes(kube) == {
            name: (uid, moved[claim], policy)
            for name, (uid, claim, policy) in volumes_before.items()
        }
        wait_until(
            lambda: _running(kube, "alice-exp-5") and _running(kube, "alice-exp-5-5"),
            timeout_s=20,
            what="the renamed environments to run again",
        )
        apps = client.AppsV1Api(kube)
        assert apps.read_namespaced_deployment("alice-exp-5", NAMESPACE).spec.replicas == 1
        assert ANNOTATION_RENAMED_REPLICAS not in (
            apps.read_namespaced_deployment("alice-exp-5", NAMESPACE).metadata.annotations
        )
        hosts = {
            i.metadata.name: i.spec.rules[0].host
            for i in client.NetworkingV1Api(kube).list_namespaced_ingress(NAMESPACE).items
        }
        assert hosts == {
            "alice-exp-5": f"exp-alice-3.{DOMAIN}",
            "alice-exp-5-5": f"exp-5-alice-5.{DOMAIN}",
        }
        renamed_view = await read_model.environment("alice", "exp")
        assert renamed_view is not None
        assert renamed_view.url == f"https://exp-alice-3.{DOMAIN}/"
        # A second run finds nothing left to do.
        assert (await renamer.plan()).renames == []
    finally:
        await connection.aclose()
        await cluster.close()

    # The new worker takes it from there: bob's kept volume is reattached (the same volume),
    # alice's renamed environment is deleted as any other.
    harness.start_worker()
    harness.send(_command("bob", "keep", "again"))
    assert isinstance(harness.wait_for_result("again"), EnvironmentReady), harness.logs()
    bob_volume = next(n for n, (_, claim, _) in _volumes(kube).items() if claim == "bob-keep-3")
    assert volumes_before[bob_volume][1] == "bob-keep"
    harness.send(DeleteEnvironment(request_id="del", actor=ALICE, owner="alice", name="exp"))
    deleted = harness.wait_for_result("del")
    assert isinstance(deleted, EnvironmentDeleted), harness.logs()
    assert deleted.volume_kept
    assert "alice-exp-5" not in _names(kube)["deployments"]
    assert "alice-exp-5-5" in _names(kube)["deployments"]


def _command(owner: str, env: str, request_id: str = "old") -> CreateEnvironment:
    return CreateEnvironment(
        request_id=request_id,
        actor=ALICE.model_copy(update={"user_id": owner}),
        owner=owner,
        name=env,
        image="pytorch",
        cpu="1",
        memory="2Gi",
        volume_size="1Gi",
    )


def test_the_worker_is_told_which_deployments_still_have_their_old_names() -> None:
    deployments = [
        _object("Deployment", "alice-exp", "alice", "exp")[1],
        _object("Deployment", "alice-lab-5", "alice", "lab")[1],
        {"metadata": {"name": "alice-other", "labels": {}}},
    ]
    assert named_the_old_way(deployments) == ["alice-exp"]


class _CrashingRenamer(Renamer):
    """Stops, as a killed run would, once the first volume is between its two claims."""

    async def _claim_moved_volume(self, rename: Rename) -> None:
        raise RuntimeError("killed")


@pytest.mark.asyncio
async def test_a_run_that_stopped_half_way_is_finished_by_the_next_losing_nothing(
    harness: WorkerHarness, kube: client.ApiClient, redis_url: str
) -> None:
    cluster = await Cluster.connect(harness.kubesim.kubeconfig)
    connection = aioredis.Redis.from_url(redis_url)
    read_model = ReadModel(connection)
    try:
        volumes_before = await _old_cluster(cluster, read_model, kube)
        crashing = _CrashingRenamer(cluster, NAMESPACE, DOMAIN, read_model, lambda _: None)
        with pytest.raises(RuntimeError, match="killed"):
            await crashing.apply(await crashing.plan())
        # alice's "exp-5": old claim gone, its volume kept and marked, the new Deployment at
        # zero; the rest not started.
        volumes = client.CoreV1Api(kube).list_persistent_volume().items
        marked = [v for v in volumes if (v.metadata.annotations or {}).get(ANNOTATION_RENAMING_TO)]
        assert [v.spec.persistent_volume_reclaim_policy for v in marked] == ["Retain"]
        apps = client.AppsV1Api(kube)
        assert apps.read_namespaced_deployment("alice-exp-5-5", NAMESPACE).spec.replicas == 0

        renamer = Renamer(cluster, NAMESPACE, DOMAIN, read_model, lambda _: None, poll_s=0.05)
        plan = await renamer.plan()
        assert [(r.owner, r.env) for r in plan.renames] == [
            ("alice", "exp-5"),
            ("alice", "exp"),
            ("bob", "keep"),
        ]
        await renamer.apply(plan)
        moved = {
            "alice-exp": "alice-exp-5",
            "alice-exp-5": "alice-exp-5-5",
            "bob-keep": "bob-keep-3",
        }
        assert _volumes(kube) == {
            name: (uid, moved[claim], policy)
            for name, (uid, claim, policy) in volumes_before.items()
        }
        wait_until(
            lambda: _running(kube, "alice-exp-5") and _running(kube, "alice-exp-5-5"),
            timeout_s=20,
            what="both of alice's environments to run again",
        )
        assert (await renamer.plan()).renames == []
    finally:
        await connection.aclose()
        await cluster.close()
