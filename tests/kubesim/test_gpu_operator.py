"""GPU utilisation is served as the GPU operator serves it: a dcgm-exporter DaemonSet with one
pod per GPU node, found through the API, each exporting only its own node's GPUs."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from akros_kubesim.testing import RunningKubesim, run_kubesim
from tests.kubesim.test_client_api import eventually

EXPORTERS = "gpu-operator"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
CLUSTER = {
    "nodes": [
        {"name": "gpu-a", "cpu": 16, "memory": "64Gi", "nvidia.com/gpu": 2, "taints": [GPU_TAINT]},
        {"name": "gpu-b", "cpu": 16, "memory": "64Gi", "nvidia.com/gpu": 2, "taints": [GPU_TAINT]},
        {"name": "cpu-a", "cpu": 8, "memory": "32Gi"},
    ]
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKubesim]:
    path = Path(tmp_path_factory.mktemp("cluster")) / "cluster.yaml"
    path.write_text(yaml.safe_dump(CLUSTER))
    with run_kubesim(path, pod_start_seconds=0.1) as running:
        yield running


@pytest.fixture(scope="module")
def core(cluster: RunningKubesim) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture(scope="module")
def apps(cluster: RunningKubesim) -> Iterator[client.AppsV1Api]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield client.AppsV1Api(api)
    api.close()


def _running_exporters(core: client.CoreV1Api) -> dict[str, str]:
    """Node name -> exporter pod name, for exporter pods that run."""
    pods = core.list_namespaced_pod(EXPORTERS, label_selector="app=nvidia-dcgm-exporter").items
    return {
        p.spec.node_name: p.metadata.name
        for p in pods
        if p.status.phase == "Running" and not p.metadata.deletion_timestamp
    }


def _scrape(core: client.CoreV1Api, pod: str) -> str:
    text: str = core.connect_get_namespaced_pod_proxy_with_path(f"{pod}:9400", EXPORTERS, "metrics")
    return text


def _gpu_pod(name: str, gpus: int) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)}
    return {
        "metadata": {"name": name, "annotations": {"kubesim.akros.io/gpu-utilization": "77"}},
        "spec": {
            "tolerations": [GPU_TOLERATION],
            "nodeSelector": {"kubernetes.io/hostname": "gpu-b"},
            "containers": [
                {"name": "main", "image": "python:3.11", "resources": {"limits": limits}}
            ],
        },
    }


def test_each_gpu_node_runs_one_exporter_pod_and_no_other_node_does(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    running = eventually(lambda: (found := _running_exporters(core)) and len(found) == 2 and found)
    assert set(running) == {"gpu-a", "gpu-b"}
    daemonset = apps.read_namespaced_daemon_set("nvidia-dcgm-exporter", EXPORTERS)
    assert daemonset.status.desired_number_scheduled == 2
    pod = core.read_namespaced_pod(running["gpu-a"], EXPORTERS)
    assert pod.metadata.owner_references[0].kind == "DaemonSet"
    assert pod.metadata.name.startswith("nvidia-dcgm-exporter-")
    service = core.read_namespaced_service("nvidia-dcgm-exporter", EXPORTERS)
    assert service.spec.selector == {"app": "nvidia-dcgm-exporter"}


def test_each_exporter_serves_only_its_own_nodes_gpus_with_the_pods_that_hold_them(
    core: client.CoreV1Api,
) -> None:
    core.create_namespaced_pod("default", _gpu_pod("trainer", 1))
    eventually(lambda: core.read_namespaced_pod("trainer", "default").status.phase == "Running")
    exporters = eventually(
        lambda: (found := _running_exporters(core)) and len(found) == 2 and found
    )
    on_a, on_b = _scrape(core, exporters["gpu-a"]), _scrape(core, exporters["gpu-b"])
    utilisation_a = [line for line in on_a.splitlines() if line.startswith("DCGM_FI_DEV_GPU_UTIL{")]
    utilisation_b = [line for line in on_b.splitlines() if line.startswith("DCGM_FI_DEV_GPU_UTIL{")]
    assert len(utilisation_a) == len(utilisation_b) == 2
    assert all('Hostname="gpu-a"' in line for line in utilisation_a)
    assert all('Hostname="gpu-b"' in line for line in utilisation_b)
    held = [line for line in utilisation_b if 'pod="trainer"' in line]
    assert len(held) == 1
    assert held[0].endswith(" 77")
    assert 'namespace="default"' in held[0]
    assert 'container="main"' in held[0]
    assert "trainer" not in on_a


def test_a_silenced_exporter_and_any_other_pod_refuse_the_connection(
    cluster: RunningKubesim, core: client.CoreV1Api
) -> None:
    exporters = eventually(
        lambda: (found := _running_exporters(core)) and len(found) == 2 and found
    )
    cluster.admin("PUT", "/_kubesim/dcgm/silent", {"nodes": ["gpu-a"]})
    try:
        with pytest.raises(ApiException) as refused:
            _scrape(core, exporters["gpu-a"])
        assert refused.value.status == 503
        assert "connection refused" in refused.value.body
        assert "DCGM_FI_DEV_GPU_UTIL" in _scrape(core, exporters["gpu-b"])
    finally:
        cluster.admin("PUT", "/_kubesim/dcgm/silent", {"nodes": []})
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "w", "image": "nginx:1"}]}},
    )
    eventually(lambda: core.read_namespaced_pod("web", "default").status.phase == "Running")
    with pytest.raises(ApiException) as not_an_exporter:
        core.connect_get_namespaced_pod_proxy_with_path("web:80", "default", "metrics")
    assert not_an_exporter.value.status == 503


def test_a_node_that_gains_a_gpu_label_gains_an_exporter_and_loses_it_with_the_label(
    core: client.CoreV1Api,
) -> None:
    eventually(lambda: len(_running_exporters(core)) == 2)
    label = {"metadata": {"labels": {"nvidia.com/gpu.deploy.dcgm-exporter": "true"}}}
    core.patch_node("cpu-a", label)
    eventually(lambda: "cpu-a" in _running_exporters(core))
    core.patch_node(
        "cpu-a", {"metadata": {"labels": {"nvidia.com/gpu.deploy.dcgm-exporter": None}}}
    )
    eventually(
        lambda: "cpu-a" not in _running_exporters(core) and len(_running_exporters(core)) == 2
    )


def test_a_changed_exporter_template_replaces_the_pods(
    core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    before = eventually(lambda: (found := _running_exporters(core)) and len(found) == 2 and found)
    patch = {"spec": {"template": {"metadata": {"annotations": {"rolled": "yes"}}}}}
    apps.patch_namespaced_daemon_set("nvidia-dcgm-exporter", EXPORTERS, patch)

    def replaced() -> bool:
        now = _running_exporters(core)
        return len(now) == 2 and not set(now.values()) & set(before.values())

    eventually(replaced, timeout=20)
    for name in _running_exporters(core).values():
        assert core.read_namespaced_pod(name, EXPORTERS).metadata.annotations == {"rolled": "yes"}


def test_a_cluster_file_without_the_gpu_operator_has_no_exporters(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(CLUSTER | {"gpuOperator": False}))
    with run_kubesim(path) as running:
        api = config.new_client_from_config(config_file=str(running.kubeconfig))
        try:
            namespaces = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        finally:
            api.close()
    assert EXPORTERS not in namespaces
