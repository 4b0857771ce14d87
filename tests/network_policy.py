"""NetworkPolicies read as the CNI reads them, for tests of deploy/'s policies and the
worker's: a pod is isolated in a direction once any policy selects it for that direction;
then only what some policy allows passes, and a connection needs both the source's egress
and the target's ingress to allow it."""

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Policy = Mapping[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace and labels, and its IP for ipBlock peers) or, without a namespace,
    an address outside the cluster's pods."""

    namespace: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = "10.42.0.10"


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


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other.ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(excluded) for excluded in block.get("except") or []
        )
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": other.namespace}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    # Without a namespaceSelector a podSelector selects pods of the policy's own namespace.
    elif other.namespace != policy_namespace:
        return False
    if "podSelector" in peer and not _selects(peer["podSelector"], other.labels):
        return False
    return "namespaceSelector" in peer or "podSelector" in peer


def _port_matches(rule: Mapping[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports") or []
    return not ports or any(
        p.get("port") in (None, port) and p.get("protocol", "TCP") == protocol for p in ports
    )


def _allowed(
    policies: Sequence[Policy],
    direction: str,
    pod: Endpoint,
    other: Endpoint,
    port: int,
    protocol: str,
) -> bool:
    if pod.namespace is None:
        return True
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and _selects(p["spec"]["podSelector"], pod.labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            if not _port_matches(rule, port, protocol):
                continue
            peers = rule.get(peers_key) or []
            if not peers or any(
                _peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers
            ):
                return True
    return False


def admits(policies: Sequence[Policy], target: Endpoint, source: Endpoint, port: int) -> bool:
    """Whether the target's ingress policies let the source in on the TCP port."""
    return _allowed(policies, "Ingress", target, source, port, "TCP")


def lets_out(
    policies: Sequence[Policy], source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the source's egress policies let it reach the target's port."""
    return _allowed(policies, "Egress", source, target, port, protocol)


def connects(
    policies: Sequence[Policy], source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether a connection passes both ends' policies."""
    return lets_out(policies, source, target, port, protocol) and _allowed(
        policies, "Ingress", target, source, port, protocol
    )
