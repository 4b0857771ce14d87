"""kubesim's default cluster is the team's RKE2 cluster as deploy/rke2 configures it."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from akros_kubesim.cluster import (
    SERVER_ROLE_LABELS,
    ClusterConfig,
    NodeSpec,
    load_cluster,
    node_object,
    parse_cluster,
    version_document,
)

RKE2 = Path(__file__).resolve().parents[2] / "deploy" / "rke2"


def _rke2_config(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((RKE2 / name).read_text())
    return document


def _labels_of(config: dict[str, Any]) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in config.get("node-label") or [])


def _taints_of(config: dict[str, Any]) -> list[dict[str, str]]:
    taints = []
    for entry in config.get("node-taint") or []:
        key_value, effect = entry.split(":")
        key, value = key_value.split("=", 1)
        taints.append({"key": key, "value": value, "effect": effect})
    return taints


def _config_file_for(spec: NodeSpec) -> str:
    if spec.role == "server":
        return "config-server.yaml"
    return "config-gpu-worker.yaml" if spec.gpus else "config-cpu-worker.yaml"


@pytest.fixture(scope="module")
def default_cluster() -> ClusterConfig:
    return load_cluster(None)


def test_every_default_node_has_the_labels_and_taints_of_its_rke2_config(
    default_cluster: ClusterConfig,
) -> None:
    for index, spec in enumerate(default_cluster.nodes):
        config = _rke2_config(_config_file_for(spec))
        node = node_object(spec, index, default_cluster.kubernetes_version)
        labels = node["metadata"]["labels"]
        assert _labels_of(config).items() <= labels.items(), spec.name
        assert node["spec"].get("taints", []) == _taints_of(config), spec.name


def test_the_default_cluster_has_each_kind_of_node_the_team_runs(
    default_cluster: ClusterConfig,
) -> None:
    kinds = sorted(_config_file_for(spec) for spec in default_cluster.nodes)
    assert kinds == [
        "config-cpu-worker.yaml",
        "config-gpu-worker.yaml",
        "config-gpu-worker.yaml",
        "config-server.yaml",
    ]


def test_the_control_plane_carries_the_role_labels_rke2_gives_a_server(
    default_cluster: ClusterConfig,
) -> None:
    (server,) = [s for s in default_cluster.nodes if s.role == "server"]
    labels = node_object(server, 0)["metadata"]["labels"]
    assert SERVER_ROLE_LABELS.items() <= labels.items()
    workers = [s for s in default_cluster.nodes if s.role != "server"]
    for worker in workers:
        worker_labels = node_object(worker, 0)["metadata"]["labels"]
        assert "node-role.kubernetes.io/control-plane" not in worker_labels


def test_gpu_nodes_carry_the_gpu_operators_feature_discovery_labels(
    default_cluster: ClusterConfig,
) -> None:
    gpu_nodes = [s for s in default_cluster.nodes if s.gpus]
    assert gpu_nodes
    for spec in gpu_nodes:
        labels = node_object(spec, 0)["metadata"]["labels"]
        assert labels["nvidia.com/gpu.present"] == "true"
        assert labels["nvidia.com/gpu.count"] == "8"
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
        assert labels["nvidia.com/gpu.memory"] == "81920"
        assert labels["nvidia.com/gpu.family"] == "ampere"
    cpu_labels = node_object(next(s for s in default_cluster.nodes if not s.gpus), 0)
    assert not any(k.startswith("nvidia.com/") for k in cpu_labels["metadata"]["labels"])


def test_the_cluster_reports_rke2s_build_of_a_current_release(
    default_cluster: ClusterConfig,
) -> None:
    assert default_cluster.kubernetes_version == "v1.37.1+rke2r1"
    assert version_document(default_cluster.kubernetes_version) == {
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.1+rke2r1",
    }
    node = node_object(default_cluster.nodes[0], 0, default_cluster.kubernetes_version)
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.1+rke2r1"


def test_a_cluster_file_may_name_another_version_but_not_a_malformed_one() -> None:
    assert parse_cluster({"kubernetesVersion": "v1.36.4"}).kubernetes_version == "v1.36.4"
    with pytest.raises(ValueError, match="not a version"):
        parse_cluster({"kubernetesVersion": "1.36"})


def test_a_node_role_other_than_agent_or_server_is_refused() -> None:
    with pytest.raises(ValueError, match="role must be agent or server"):
        parse_cluster({"nodes": [{"name": "n", "cpu": 1, "memory": "1Gi", "role": "etcd"}]})
