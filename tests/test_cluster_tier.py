"""The real-cluster tier's own set-up and clean-up, on a kubesim that stands for a foreign
cluster (only its kubeconfig is used): it creates from deploy/ only what is absent, and leaves
the cluster as it found it, a failed run included."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from akros_kubesim.testing import RunningKubesim, run_kubesim
from tests.cluster import CREATED_BY, CREATED_BY_LABEL, KUBECONFIG_VARIABLE, ForeignCluster

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_NAMESPACES = ["akros-envs", "akros-inference", "akros-services"]


@pytest.fixture
def bare_cluster() -> Iterator[RunningKubesim]:
    """A kubesim with none of the platform's objects, as a cluster nobody set up for it."""
    with run_kubesim() as running:
        yield running


@pytest.fixture
def kube(bare_cluster: RunningKubesim) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(bare_cluster.kubeconfig))
    yield api
    api.close()


def _namespaces(kube: client.ApiClient) -> list[str]:
    listed = client.CoreV1Api(kube).list_namespace().items
    return sorted(n.metadata.name for n in listed if n.metadata.name.startswith("akros-"))


def _has_priority_class(kube: client.ApiClient) -> bool:
    try:
        client.SchedulingV1Api(kube).read_priority_class("akros-auto-inference")
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def _deployment(name: str, namespace: str) -> client.V1Deployment:
    labels = {"app": name}
    container = client.V1Container(name="main", image="registry.local/x:1")
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def _deployments(kube: client.ApiClient, namespace: str) -> list[str]:
    listed = client.AppsV1Api(kube).list_namespaced_deployment(namespace).items
    return sorted(d.metadata.name for d in listed)


def test_what_the_tier_created_and_what_its_tests_made_are_gone_after_it(
    bare_cluster: RunningKubesim, kube: client.ApiClient
) -> None:
    assert _namespaces(kube) == []
    cluster = ForeignCluster.prepare(bare_cluster.kubeconfig)
    assert _namespaces(kube) == PLATFORM_NAMESPACES
    labels = client.CoreV1Api(kube).read_namespace("akros-envs").metadata.labels
    assert labels[CREATED_BY_LABEL] == CREATED_BY
    assert _has_priority_class(kube)
    assert _deployments(kube, "akros-inference") == ["auto-inference"]

    apps = client.AppsV1Api(kube)
    apps.create_namespaced_deployment("akros-envs", _deployment("alice-exp", "akros-envs"))
    apps.patch_namespaced_deployment_scale(
        "auto-inference", "akros-inference", {"spec": {"replicas": 3}}
    )
    cluster.tidy()
    assert _deployments(kube, "akros-envs") == []
    assert apps.read_namespaced_deployment("auto-inference", "akros-inference").spec.replicas == 0
    assert client.CoreV1Api(kube).list_namespaced_pod("akros-envs").items == []

    cluster.release()
    assert _namespaces(kube) == []
    assert not _has_priority_class(kube)


def test_what_the_cluster_had_is_used_and_left_in_place(
    bare_cluster: RunningKubesim, kube: client.ApiClient
) -> None:
    core, apps = client.CoreV1Api(kube), client.AppsV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="akros-envs")))
    apps.create_namespaced_deployment("akros-envs", _deployment("theirs", "akros-envs"))
    cluster = ForeignCluster.prepare(bare_cluster.kubeconfig)
    assert CREATED_BY_LABEL not in (core.read_namespace("akros-envs").metadata.labels or {})

    apps.create_namespaced_deployment("akros-envs", _deployment("ours", "akros-envs"))
    cluster.tidy()
    assert _deployments(kube, "akros-envs") == ["theirs"]

    cluster.release()
    assert _namespaces(kube) == ["akros-envs"]
    assert _deployments(kube, "akros-envs") == ["theirs"]


def test_a_tier_run_that_fails_still_leaves_the_cluster_as_it_found_it(
    bare_cluster: RunningKubesim, kube: client.ApiClient, tmp_path: Path
) -> None:
    failing = tmp_path / "test_fails_midway.py"
    failing.write_text(
        "from kubernetes import client, config\n"
        "from tests.cluster import foreign_cluster\n\n"
        "def test_fails_after_making_things() -> None:\n"
        "    cluster = foreign_cluster()\n"
        "    assert cluster is not None\n"
        "    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))\n"
        "    body = {'metadata': {'name': 'left-over'}, 'spec': {'ports': [{'port': 80}]}}\n"
        "    client.CoreV1Api(api).create_namespaced_service('akros-envs', body)\n"
        "    raise AssertionError('a failure in the middle of the tier')\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", str(failing)],
        cwd=ROOT,
        env={**os.environ, KUBECONFIG_VARIABLE: str(bare_cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "a failure in the middle of the tier" in run.stdout
    assert _namespaces(kube) == []
    assert not _has_priority_class(kube)
