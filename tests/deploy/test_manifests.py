"""deploy/: every rendering is valid Kubernetes and applies to a cluster (kubesim)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client, config

from akros_devtools.platform import LOCAL_PATH_STORAGE_CLASS
from akros_kubesim.cluster import load_cluster
from akros_kubesim.testing import RunningKubesim, run_kubesim
from akros_policy import load_catalog, load_quotas
from tests.deploy.rendering import KUSTOMIZATIONS, ROOT
from tests.deploy.rendering import kubectl as _kubectl
from tests.deploy.rendering import render as _render

# RKE2's current minor releases; the schemas ship with kubernetes-validate.
KUBERNETES_VERSIONS = ["1.31.0", "1.33.0"]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(
    kustomization: str, version: str, tmp_path: Path
) -> None:
    objects = _render(kustomization, tmp_path)
    assert objects
    for document in objects:
        kubernetes_validate.validate(document, version, strict=True)


def test_the_external_redis_overlay_runs_no_redis_and_reads_its_url_from_a_secret(
    tmp_path: Path,
) -> None:
    objects = _render("overlays/external-redis", tmp_path)
    assert not [o for o in objects if o["metadata"]["name"] == "redis"]
    deployments = [
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] in {"k8s-worker", "api-gateway"}
    ]
    assert len(deployments) == 2
    for deployment in deployments:
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        [url] = [e for e in container["env"] if e["name"] == "AKROS_REDIS_URL"]
        assert url == {
            "name": "AKROS_REDIS_URL",
            "valueFrom": {"secretKeyRef": {"key": "url", "name": "akros-redis"}},
        }


def test_the_gateway_worker_and_monitor_read_one_catalog_from_the_shared_config_map(
    tmp_path: Path,
) -> None:
    readers = {"api-gateway", "k8s-worker", "monitor"}
    deployments: list[Any] = [
        o
        for o in _render("base", tmp_path)
        if o["kind"] == "Deployment" and o["metadata"]["name"] in readers
    ]
    assert len(deployments) == len(readers)
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        catalog = {"name": "AKROS_CATALOG_FILE", "value": "/etc/akros/catalog.yaml"}
        assert catalog in container["env"], deployment["metadata"]["name"]
        [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/akros"]
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["configMap"] == {"name": "akros-config"}


def _cluster_wide_rules(objects: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    """The rules of every ClusterRole bound to service account ``account``."""
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ClusterRole"}
    return [
        rule
        for binding in objects
        if binding["kind"] == "ClusterRoleBinding"
        and any(subject["name"] == account for subject in binding["subjects"])
        for rule in roles[binding["roleRef"]["name"]]["rules"]
    ]


def _allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in rules
    )


def test_only_the_monitor_reads_pods_and_metrics_across_the_cluster(tmp_path: Path) -> None:
    objects: list[Any] = _render("base", tmp_path)

    worker = _cluster_wide_rules(objects, "k8s-worker")
    monitor = _cluster_wide_rules(objects, "akros-monitor")

    # Nodes for the fail-fast check, storage classes to name the one a Pending claim lacks,
    # a kept volume's node affinity for the never-fits check.
    assert worker == [
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
        {
            "apiGroups": ["storage.k8s.io"],
            "resources": ["storageclasses"],
            "verbs": ["list", "watch"],
        },
        {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get"]},
    ]
    for resource in ("nodes", "pods"):
        assert _allows(monitor, "", resource, "watch")
        assert _allows(monitor, "metrics.k8s.io", resource, "list")
    for resource in ("persistentvolumeclaims", "persistentvolumes"):
        assert _allows(monitor, "", resource, "watch")
    assert {verb for rule in monitor for verb in rule["verbs"]} <= {"get", "list", "watch"}


def test_the_gateway_only_reads_environments_pods_logs_and_events(tmp_path: Path) -> None:
    objects: list[Any] = _render("base", tmp_path)
    assert _cluster_wide_rules(objects, "api-gateway") == []
    bindings = [
        o
        for o in objects
        if o["kind"] == "RoleBinding"
        and any(subject["name"] == "api-gateway" for subject in o["subjects"])
    ]
    assert [(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in bindings] == [
        ("akros-envs", "akros-environments-reader")
    ]
    [role] = [
        o
        for o in objects
        if o["kind"] == "Role" and o["metadata"]["name"] == "akros-environments-reader"
    ]
    rules = role["rules"]
    assert {verb for rule in rules for verb in rule["verbs"]} == {"get", "list"}
    assert _allows(rules, "", "pods", "list")
    assert _allows(rules, "", "pods/log", "get")
    assert _allows(rules, "", "events", "list")
    # What the events of an environment are about: its volume claim and its Deployment.
    assert _allows(rules, "", "persistentvolumeclaims", "list")
    assert _allows(rules, "apps", "deployments", "list")
    assert not any("secrets" in rule["resources"] for rule in rules)
    [gateway] = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "api-gateway"
    ]
    assert gateway["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningKubesim]:
    with run_kubesim(pod_start_seconds=0.2) as running:
        yield running


def test_the_base_applies_to_a_cluster_and_its_deployments_run(
    cluster: RunningKubesim, tmp_path: Path
) -> None:
    rendered = _kubectl("kustomize", str(ROOT / "deploy" / "base"), home=tmp_path)
    _kubectl(
        "--kubeconfig", str(cluster.kubeconfig), "apply", "-f", "-", home=tmp_path, stdin=rendered
    )

    configuration = client.Configuration()
    config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        deployments = client.AppsV1Api(api).list_namespaced_deployment("akros-system").items
        assert sorted(d.metadata.name for d in deployments) == [
            "api-gateway",
            "dashboard",
            "k8s-worker",
            "monitor",
            "poller",
            "redis",
        ]
        roles = client.RbacAuthorizationV1Api(api).list_namespaced_role("akros-envs").items
        assert sorted(r.metadata.name for r in roles) == [
            "akros-environments-reader",
            "akros-environments-writer",
        ]
        budgets = client.PolicyV1Api(api).list_namespaced_pod_disruption_budget("akros-system")
        assert sorted(b.metadata.name for b in budgets.items) == ["api-gateway", "k8s-worker"]
        admission = client.AdmissionregistrationV1Api(api)
        policies = admission.list_validating_admission_policy().items
        bindings = admission.list_validating_admission_policy_binding().items
        assert sorted(p.metadata.name for p in policies) == sorted(
            b.spec.policy_name for b in bindings
        )
        assert len(policies) == 2
        namespaces = client.CoreV1Api(api).read_namespace("akros-envs")
        assert namespaces.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"


LOCAL_PATH_STORAGE = ROOT / "deploy" / "rke2" / "local-path-storage.yaml"


def _local_path_storage() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(LOCAL_PATH_STORAGE.read_text()) if doc]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_local_path_provisioner_install_validates_and_pins_its_image(version: str) -> None:
    objects = _local_path_storage()
    for document in objects:
        kubernetes_validate.validate(document, version, strict=True)
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("rancher/local-path-provisioner:v")


def test_kubesims_default_cluster_loads_the_storage_class_the_rke2_install_creates() -> None:
    """So do the cluster files of the benchmarks (akros_devtools' LOCAL_PATH_STORAGE_CLASS)."""
    [installed] = [o for o in _local_path_storage() if o["kind"] == "StorageClass"]
    assert installed["volumeBindingMode"] == "WaitForFirstConsumer"
    assert installed["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }
    default_classes = [o for o in load_cluster(None).objects if o["kind"] == "StorageClass"]
    assert default_classes == [installed]
    assert yaml.safe_load(LOCAL_PATH_STORAGE_CLASS)["objects"] == [installed]


def test_the_local_path_provisioner_install_applies_to_a_cluster(
    cluster: RunningKubesim, tmp_path: Path
) -> None:
    _kubectl(
        "--kubeconfig",
        str(cluster.kubeconfig),
        "apply",
        "-f",
        str(LOCAL_PATH_STORAGE),
        home=tmp_path,
    )
    configuration = client.Configuration()
    config.load_kube_config(str(cluster.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        [storage_class] = client.StorageV1Api(api).list_storage_class().items
        assert storage_class.provisioner == "rancher.io/local-path"
        deployments = client.AppsV1Api(api).list_namespaced_deployment("local-path-storage")
        assert [d.metadata.name for d in deployments.items] == ["local-path-provisioner"]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_rendering_names_the_storage_class_that_the_rke2_install_creates(
    kustomization: str, tmp_path: Path
) -> None:
    """The worker has no default class, so a rendering without one would not start."""
    [installed] = [o for o in _local_path_storage() if o["kind"] == "StorageClass"]
    [worker] = [
        o
        for o in _render(kustomization, tmp_path)
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "k8s-worker"
    ]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    assert {"name": "AKROS_STORAGE_CLASS", "value": installed["metadata"]["name"]} in container[
        "env"
    ]


def test_the_config_maps_catalog_and_quotas_load_as_the_services_read_them(
    tmp_path: Path,
) -> None:
    """A flow mapping's unquoted comma once split a profile's description into a key of
    its own, which the catalog refuses: every service reading the file would not start."""
    [config_map] = [
        o
        for o in _render("base", tmp_path)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "akros-config"
    ]
    for key in ("catalog.yaml", "quotas.yaml"):
        (tmp_path / key).write_text(config_map["data"][key])
    catalog = load_catalog(tmp_path / "catalog.yaml")
    assert catalog.profiles["cpu-small"].description == "Notebooks, light work"
    assert load_quotas(tmp_path / "quotas.yaml").default.environments == 5
