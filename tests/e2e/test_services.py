"""In-house services end to end: HTTP -> gateway -> Redis -> worker -> kubesim, and back."""

from typing import Any

import pytest
from kubernetes import client

from akros_devtools import wait_until
from akros_msgs import Resources
from tests.e2e.conftest import Running

NAMESPACE = "akros-services"
pytestmark = pytest.mark.cluster
QUOTES = "akros.io/service=quotes"  # the service's objects, whatever else the namespace holds
SPEC: dict[str, Any] = {
    "name": "quotes",
    "image": "registry.local/quotes:1",
    "ports": [{"port": 80, "target_port": 8000}],
    "resources": {"cpu": "250m", "memory": "256Mi"},
    "autoscaling": {"min_replicas": 1, "max_replicas": 3, "cpu_utilisation": 75},
}


def _settled(running: Running, answer: Any, admin: dict[str, str]) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    document: dict[str, Any] = running.settle(answer.json()["request_id"], admin)
    return document


def _pods(running: Running) -> list[str]:
    pods = client.CoreV1Api(running.kube).list_namespaced_pod(
        NAMESPACE, label_selector="akros.io/service=quotes"
    )
    return sorted(p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp)


def test_an_admin_deploys_updates_and_deletes_a_service_through_the_api(
    running: Running,
) -> None:
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    apps = client.AppsV1Api(running.kube)
    autoscaling = client.AutoscalingV2Api(running.kube)

    created = running.http.post("/v1/services", json=SPEC, headers=admin)
    assert _settled(running, created, admin)["status"] == "applied"
    view = running.http.get("/v1/services/quotes", headers=admin).json()
    assert view["status"] == "deployed"
    assert view["autoscaler"]["max_replicas"] == 3
    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler("quotes", NAMESPACE)
    assert hpa.spec.metrics[0].resource.target.average_utilization == 75
    wait_until(lambda: len(_pods(running)) == 1, timeout_s=15, what="the service's pod")
    deployment = apps.read_namespaced_deployment("quotes", NAMESPACE)
    pods_before = _pods(running)

    unchanged = running.http.put("/v1/services/quotes", json=SPEC, headers=admin)
    assert _settled(running, unchanged, admin)["status"] == "applied"
    after = apps.read_namespaced_deployment("quotes", NAMESPACE)
    assert after.metadata.generation == deployment.metadata.generation
    assert _pods(running) == pods_before

    more = {**SPEC, "autoscaling": {**SPEC["autoscaling"], "max_replicas": 6}}
    updated = running.http.put("/v1/services/quotes", json=more, headers=admin)
    assert _settled(running, updated, admin)["status"] == "applied"
    hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler("quotes", NAMESPACE)
    assert hpa.spec.max_replicas == 6
    template = apps.read_namespaced_deployment("quotes", NAMESPACE).spec.template
    assert template == deployment.spec.template  # the pods were not restarted

    deleted = running.http.delete("/v1/services/quotes", headers=admin)
    assert _settled(running, deleted, admin)["status"] == "applied"
    assert running.http.get("/v1/services/quotes", headers=admin).status_code == 404
    assert apps.list_namespaced_deployment(NAMESPACE, label_selector=QUOTES).items == []
    assert (
        autoscaling.list_namespaced_horizontal_pod_autoscaler(
            NAMESPACE, label_selector=QUOTES
        ).items
        == []
    )
    core = client.CoreV1Api(running.kube)
    assert core.list_namespaced_service(NAMESPACE, label_selector=QUOTES).items == []


def test_a_bad_spec_is_refused_at_the_gateway_and_nothing_reaches_the_cluster(
    running: Running,
) -> None:
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}

    answer = running.http.post(
        "/v1/services",
        json={**SPEC, "name": "dup", "ports": [{"port": 80}, {"port": 80}]},
        headers=admin,
    )

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body.ports"
    deployments = client.AppsV1Api(running.kube).list_namespaced_deployment(
        NAMESPACE, label_selector="akros.io/service=dup"
    )
    assert [d.metadata.name for d in deployments.items] == []


def _pods_per_node(running: Running) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in client.CoreV1Api(running.kube).list_pod_for_all_namespaces().items:
        if pod.spec.node_name and pod.status.phase not in {"Succeeded", "Failed"}:
            counts[pod.spec.node_name] = counts.get(pod.spec.node_name, 0) + 1
    return counts


def test_the_cluster_endpoint_shows_each_simulated_node_with_its_requests_and_use(
    running: Running,
) -> None:
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    allocatable = {
        n.metadata.name: Resources.of(
            n.status.allocatable["cpu"],
            n.status.allocatable["memory"],
            int(n.status.allocatable.get("nvidia.com/gpu", "0")),
        )
        for n in client.CoreV1Api(running.kube).list_node().items
    }

    def nodes() -> list[dict[str, Any]]:
        answer = running.http.get("/v1/cluster", headers=admin)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["nodes"]
        return found

    def caught_up() -> bool:
        shown = nodes()
        return (
            {n["name"] for n in shown} == set(allocatable)
            and all(n["used"] for n in shown)
            and {n["name"]: n["pods"] for n in shown if n["pods"]} == _pods_per_node(running)
        )

    wait_until(caught_up, timeout_s=20, what="every node, its pods and use, from the monitor")
    for node in nodes():
        assert Resources.model_validate(node["allocatable"]) == allocatable[node["name"]]
        requested = Resources.model_validate(node["requested"])
        assert requested.fits_within(allocatable[node["name"]])
        assert node["used"]["cpu_millis"] > 0, "kubesim's nodes use a baseline at least"
