"""deploy/'s NetworkPolicies, together with the ones the worker builds for each environment
and service, admit what the platform needs and nothing else, read as the CNI reads them."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from akros_k8s_worker.objects import (
    RKE2_DNS_POD_LABELS,
    RKE2_INGRESS_CONTROLLER_POD_LABELS,
    EnvironmentNetwork,
    environment_objects,
)
from akros_k8s_worker.service_objects import ServicePlatform, service_objects
from akros_k8s_worker.settings import WorkerSettings
from akros_msgs import Actor, CreateEnvironment, Role, Source
from akros_msgs.services import ServiceSpec
from akros_policy import CatalogImage
from tests.network_policy import Endpoint, admits, connects, lets_out

POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "base" / "networkpolicies.yaml"

MONITOR = Endpoint(
    "akros-system", {"app.kubernetes.io/name": "monitor", "app.kubernetes.io/part-of": "akros"}
)
GATEWAY = Endpoint(
    "akros-system", {"app.kubernetes.io/name": "api-gateway", "app.kubernetes.io/part-of": "akros"}
)
INGRESS_CONTROLLER = Endpoint(
    "kube-system",
    {**RKE2_INGRESS_CONTROLLER_POD_LABELS, "app.kubernetes.io/instance": "rke2-ingress-nginx"},
)
COREDNS = Endpoint("kube-system", {**RKE2_DNS_POD_LABELS}, ip="10.42.0.3")
METRICS_SERVER = Endpoint("kube-system", {"app.kubernetes.io/name": "rke2-metrics-server"})
INTERNET = Endpoint(None, ip="140.82.112.3")


@pytest.fixture(scope="module")
def policies() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(POLICIES.read_text()) if d]


@pytest.mark.parametrize("namespace", ["cattle-monitoring-system", "monitoring"])
def test_prometheus_scrapes_the_monitors_metrics_port(
    policies: list[dict[str, Any]], namespace: str
) -> None:
    prometheus = Endpoint(namespace, {"app.kubernetes.io/name": "prometheus"})
    assert admits(policies, MONITOR, prometheus, 9102)


def test_prometheus_reaches_no_other_port_of_the_monitor_and_nobody_else_its_metrics(
    policies: list[dict[str, Any]],
) -> None:
    prometheus = Endpoint("monitoring", {"app.kubernetes.io/name": "prometheus"})
    assert not admits(policies, MONITOR, prometheus, 8081)
    researcher = Endpoint("akros-envs", {"akros.io/kind": "environment"})
    assert not admits(policies, MONITOR, researcher, 9102)


def test_redis_admits_the_platforms_pods_only(policies: list[dict[str, Any]]) -> None:
    redis = Endpoint("akros-system", {"app.kubernetes.io/name": "redis"})
    worker = Endpoint("akros-system", {"app.kubernetes.io/part-of": "akros"})
    assert admits(policies, redis, worker, 6379)
    assert not admits(
        policies, redis, Endpoint("akros-envs", {"akros.io/kind": "environment"}), 6379
    )


def test_the_gateway_admits_the_ingress_controllers_pods_not_all_of_kube_system(
    policies: list[dict[str, Any]],
) -> None:
    assert admits(policies, GATEWAY, INGRESS_CONTROLLER, 8080)
    assert not admits(policies, GATEWAY, METRICS_SERVER, 8080)
    assert not admits(policies, GATEWAY, COREDNS, 8080)


def test_deploy_selects_the_ingress_controller_and_dns_as_the_worker_does_by_default(
    policies: list[dict[str, Any]],
) -> None:
    """One cluster, one answer to "which pods are the ingress controller and the DNS"."""
    network = EnvironmentNetwork()
    peers = [
        peer
        for policy in policies
        for rule in [*policy["spec"].get("ingress", []), *policy["spec"].get("egress", [])]
        for peer in rule.get("from", rule.get("to", []))
        if "kube-system" in str(peer.get("namespaceSelector"))
    ]
    assert peers
    expected = [dict(network.ingress_controller_pod_labels), dict(network.dns_pod_labels)]
    for peer in peers:
        assert peer["namespaceSelector"] == {
            "matchLabels": {"kubernetes.io/metadata.name": network.dns_namespace}
        }
        assert peer["podSelector"]["matchLabels"] in expected


# -- akros-envs -------------------------------------------------------------------------------

# The worker as deploy/ runs it: its defaults, which deploy/base/k8s-worker.yaml keeps.
ENV_PLATFORM = WorkerSettings(storage_class="local-path").platform()


def _environment(owner: str, name: str) -> tuple[Endpoint, dict[str, Any]]:
    command = CreateEnvironment(
        request_id=f"req-{owner}-{name}",
        actor=Actor(user_id=owner, source=Source.HTTP, role=Role.RESEARCHER),
        owner=owner,
        name=name,
        image="pytorch",
        cpu="2",
        memory="8Gi",
    )
    objects = environment_objects(command, CatalogImage(image="r/p:1", port=8888), ENV_PLATFORM)
    labels = objects.deployment["spec"]["template"]["metadata"]["labels"]
    return Endpoint("akros-envs", labels), objects.network_policy


def test_environments_reach_dns_and_their_owners_environments_and_nothing_else(
    policies: list[dict[str, Any]],
) -> None:
    alice_exp, first = _environment("alice", "exp")
    alice_lab, second = _environment("alice", "lab")
    bob_lab, third = _environment("bob", "lab")
    everything = [*policies, first, second, third]
    assert lets_out(everything, alice_exp, COREDNS, 53, "UDP")
    assert connects(everything, alice_exp, alice_lab, 8888)
    assert not connects(everything, alice_exp, bob_lab, 8888)
    for elsewhere, port in (
        (INTERNET, 443),
        (GATEWAY, 8080),
        (Endpoint("akros-system", {"app.kubernetes.io/name": "redis"}), 6379),
        (Endpoint("akros-services", {"akros.io/kind": "service"}), 8080),
        (METRICS_SERVER, 443),
    ):
        assert not connects(everything, alice_exp, elsewhere, port), elsewhere
    assert connects(everything, INGRESS_CONTROLLER, alice_exp, 8888)


def test_a_pod_in_akros_envs_that_no_environment_policy_selects_is_shut_both_ways(
    policies: list[dict[str, Any]],
) -> None:
    stray = Endpoint("akros-envs", {"app": "left-behind"})
    assert not lets_out(policies, stray, INTERNET, 443)
    assert not lets_out(policies, stray, COREDNS, 53, "UDP")
    assert not admits(policies, stray, INGRESS_CONTROLLER, 8888)


# -- akros-services and akros-inference --------------------------------------------------------


def _service(name: str, ports: list[dict[str, Any]]) -> tuple[Endpoint, list[dict[str, Any]]]:
    spec = ServiceSpec.model_validate(
        {"name": name, "image": "registry.akros.local/team/pricer:3", "ports": ports}
    )
    objects = service_objects(
        spec, ServicePlatform(namespace="akros-services", run_as_user=1000, run_as_group=100)
    )
    labels = objects.deployment["spec"]["template"]["metadata"]["labels"]
    own = [objects.network_policy] if objects.network_policy else []
    return Endpoint("akros-services", labels), own


def test_a_service_serves_the_ports_its_spec_declares_to_anyone_and_no_other(
    policies: list[dict[str, Any]],
) -> None:
    pricer, own = _service("pricer", [{"port": 80, "target_port": 8080}])
    everything = [*policies, *own]
    assert admits(everything, pricer, INTERNET, 8080), "a NodePort client from outside"
    assert admits(everything, pricer, INGRESS_CONTROLLER, 8080)
    assert not admits(everything, pricer, INTERNET, 9090)
    worker, _ = _service("worker", [])
    assert connects(everything, worker, pricer, 8080), "services call each other"


def test_a_service_resolves_names_and_reaches_nothing_outside_its_namespace(
    policies: list[dict[str, Any]],
) -> None:
    pricer, own = _service("pricer", [{"port": 8080}])
    everything = [*policies, *own]
    assert lets_out(everything, pricer, COREDNS, 53, "UDP")
    assert lets_out(everything, pricer, COREDNS, 53, "TCP")
    alice_exp, _ = _environment("alice", "exp")
    for elsewhere, port in ((INTERNET, 443), (alice_exp, 8888), (GATEWAY, 8080)):
        assert not lets_out(everything, pricer, elsewhere, port), elsewhere


def test_a_service_without_ports_accepts_nothing(policies: list[dict[str, Any]]) -> None:
    batch, own = _service("batch", [])
    assert own == []
    assert not admits(policies, batch, INTERNET, 8080)
    assert not admits(policies, batch, Endpoint("akros-services", {}), 8080)


def test_auto_inference_resolves_names_and_is_otherwise_shut_both_ways(
    policies: list[dict[str, Any]],
) -> None:
    inference = Endpoint(
        "akros-inference",
        {"app.kubernetes.io/name": "auto-inference", "akros.io/kind": "inference"},
    )
    assert lets_out(policies, inference, COREDNS, 53, "UDP")
    assert not lets_out(policies, inference, INTERNET, 443)
    assert not lets_out(policies, inference, Endpoint("akros-envs", {}), 8888)
    assert not admits(policies, inference, INGRESS_CONTROLLER, 8000)
    assert not admits(policies, inference, INTERNET, 8000)
