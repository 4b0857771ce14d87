"""The worker's network settings: who reaches environments and what they reach, from AKROS_*."""

import pytest
from pydantic import ValidationError

from akros_k8s_worker.objects import EgressAllowance, EnvironmentNetwork
from akros_k8s_worker.settings import WorkerSettings


@pytest.fixture(autouse=True)
def _storage_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKROS_STORAGE_CLASS", "local-path")


def test_by_default_rke2s_ingress_controller_and_dns_and_no_allowlist() -> None:
    assert WorkerSettings().platform().network == EnvironmentNetwork(
        ingress_controller_namespace="kube-system",
        ingress_controller_pod_labels=(
            ("app.kubernetes.io/name", "rke2-ingress-nginx"),
            ("app.kubernetes.io/component", "controller"),
        ),
        dns_namespace="kube-system",
        dns_pod_labels=(("k8s-app", "kube-dns"),),
        egress_allowlist=(),
    )


def test_the_labels_and_the_allowlist_are_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKROS_INGRESS_CONTROLLER_NAMESPACE", "ingress-nginx")
    monkeypatch.setenv(
        "AKROS_INGRESS_CONTROLLER_POD_LABELS", '{"app.kubernetes.io/name": "ingress-nginx"}'
    )
    monkeypatch.setenv(
        "AKROS_ENVIRONMENT_EGRESS_ALLOWLIST",
        '[{"cidr": "10.8.0.0/16", "ports": [{"port": 443}, {"port": 3128, "protocol": "TCP"}]},'
        ' {"cidr": "192.168.50.0/24"}]',
    )
    network = WorkerSettings().platform().network
    assert network.ingress_controller_namespace == "ingress-nginx"
    assert network.ingress_controller_pod_labels == (("app.kubernetes.io/name", "ingress-nginx"),)
    assert network.egress_allowlist == (
        EgressAllowance(cidr="10.8.0.0/16", ports=((443, "TCP"), (3128, "TCP"))),
        EgressAllowance(cidr="192.168.50.0/24"),
    )


@pytest.mark.parametrize(
    "allowlist",
    [
        '[{"cidr": "10.8.0.1/16"}]',  # a host's address, not a network
        '[{"cidr": "example.org"}]',
        '[{"cidr": "10.8.0.0/16", "ports": [{"port": 0}]}]',
        '[{"cidr": "10.8.0.0/16", "ports": [{"port": 443, "protocol": "ICMP"}]}]',
        '[{"cidr": "10.8.0.0/16", "hosts": ["mirror"]}]',
    ],
)
def test_a_malformed_allowlist_stops_the_worker_at_start(
    allowlist: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKROS_ENVIRONMENT_EGRESS_ALLOWLIST", allowlist)
    with pytest.raises(ValidationError, match="environment_egress_allowlist"):
        WorkerSettings()


def test_an_empty_label_set_is_refused_since_it_would_select_every_pod_of_the_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AKROS_INGRESS_CONTROLLER_POD_LABELS", "{}")
    with pytest.raises(ValidationError, match="ingress_controller_pod_labels"):
        WorkerSettings()
