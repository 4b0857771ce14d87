"""Objects created at start: the cluster file's `objects:` and `serve --manifests` files."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from akros_devtools import wait_until
from akros_devtools.platform import PLATFORM_MANIFESTS
from akros_kubesim.cluster import ClusterFileError, parse_cluster
from akros_kubesim.testing import run_kubesim


def test_the_cluster_file_lists_objects_to_create_after_the_nodes() -> None:
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}]
    config_ = parse_cluster(
        {"nodes": [{"name": "n", "cpu": 4, "memory": "8Gi"}], "objects": objects}
    )
    assert config_.objects == tuple(objects)


@pytest.mark.parametrize(
    ("objects", "reason"),
    [
        ({"kind": "Namespace"}, "objects must be a list"),
        ([{"kind": "Namespace", "metadata": {"name": "x"}}], "objects[0]: a manifest needs"),
        ([{"apiVersion": "v1", "kind": "Namespace"}], "objects[0]: a manifest needs metadata"),
    ],
)
def test_malformed_start_objects_are_refused_with_the_entry(objects: object, reason: str) -> None:
    with pytest.raises(ClusterFileError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_cluster({"nodes": [], "objects": objects})


def test_an_object_kubesim_cannot_serve_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    manifest = tmp_path / "crd.yaml"
    manifest.write_text(
        yaml.safe_dump({"apiVersion": "x/v1", "kind": "Thing", "metadata": {"name": "t"}})
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "akros_kubesim",
            "serve",
            "--port",
            "0",
            "--manifests",
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "does not serve x/v1 Thing" in result.stderr


def test_the_platform_manifests_run_auto_inference_at_the_lowest_priority() -> None:
    arguments = tuple(a for path in PLATFORM_MANIFESTS for a in ("--manifests", str(path)))
    with run_kubesim(extra_args=arguments) as cluster:
        api = config.new_client_from_config(str(cluster.kubeconfig))
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        priority = client.SchedulingV1Api(api).read_priority_class("akros-auto-inference")
        assert (priority.value, priority.preemption_policy) == (-100, "Never")
        apps.patch_namespaced_deployment_scale(
            "auto-inference", "akros-inference", {"spec": {"replicas": 2}}
        )
        wait_until(
            lambda: len(core.list_namespaced_pod("akros-inference").items) == 2,
            timeout_s=10,
            what="two auto-inference pods",
        )
        pods = core.list_namespaced_pod("akros-inference").items
        assert {(p.spec.priority, p.metadata.labels["akros.io/kind"]) for p in pods} == {
            (-100, "inference")
        }
        api.close()
