"""deploy/'s NetworkPolicies admit what the platform needs and nothing else, read as the CNI
reads them (a pod is isolated once any policy selects it; then only what some policy allows)."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

POLICIES = Path(__file__).resolve().parents[2] / "deploy" / "base" / "networkpolicies.yaml"


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        value, values = labels.get(expression["key"]), expression.get("values") or []
        operator = expression["operator"]
        if operator == "In" and value not in values:
            return False
        if operator == "NotIn" and value in values:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def _peer_matches(peer: Mapping[str, Any], namespace: str, pod: Mapping[str, str]) -> bool:
    namespace_labels = {"kubernetes.io/metadata.name": namespace}
    if "namespaceSelector" in peer and not _selects(peer["namespaceSelector"], namespace_labels):
        return False
    if "podSelector" in peer and not _selects(peer["podSelector"], pod):
        return False
    return "namespaceSelector" in peer or "podSelector" in peer


def admits(
    policies: Sequence[Mapping[str, Any]],
    target: tuple[str, Mapping[str, str]],
    source: tuple[str, Mapping[str, str]],
    port: int,
) -> bool:
    """Whether traffic from the source pod reaches the target pod's port (ingress only)."""
    target_namespace, target_labels = target
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == target_namespace
        and _selects(p["spec"]["podSelector"], target_labels)
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            ports = [p["port"] for p in rule.get("ports") or []]
            if ports and port not in ports:
                continue
            peers = rule.get("from") or []
            # Peers of a rule in the target's own namespace select pods there.
            if not peers or any(
                _peer_matches(peer, source[0], source[1])
                and ("namespaceSelector" in peer or source[0] == target_namespace)
                for peer in peers
            ):
                return True
    return False


@pytest.fixture(scope="module")
def policies() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(POLICIES.read_text()) if d]


MONITOR = (
    "akros-system",
    {"app.kubernetes.io/name": "monitor", "app.kubernetes.io/part-of": "akros"},
)


@pytest.mark.parametrize("namespace", ["cattle-monitoring-system", "monitoring"])
def test_prometheus_scrapes_the_monitors_metrics_port(
    policies: list[dict[str, Any]], namespace: str
) -> None:
    prometheus = (namespace, {"app.kubernetes.io/name": "prometheus"})
    assert admits(policies, MONITOR, prometheus, 9102)


def test_prometheus_reaches_no_other_port_of_the_monitor_and_nobody_else_its_metrics(
    policies: list[dict[str, Any]],
) -> None:
    prometheus = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
    assert not admits(policies, MONITOR, prometheus, 8081)
    researcher = ("akros-envs", {"akros.io/kind": "environment"})
    assert not admits(policies, MONITOR, researcher, 9102)


def test_redis_admits_the_platforms_pods_only(policies: list[dict[str, Any]]) -> None:
    redis = ("akros-system", {"app.kubernetes.io/name": "redis"})
    worker = ("akros-system", {"app.kubernetes.io/part-of": "akros"})
    assert admits(policies, redis, worker, 6379)
    assert not admits(policies, redis, ("akros-envs", {"akros.io/kind": "environment"}), 6379)
