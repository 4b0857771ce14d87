"""Scheduling decisions as pure functions: which node fits a pod, and whom to preempt."""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from akros_kubesim.quantity import QuantityError, millicores, whole_units
from akros_kubesim.selectors import node_selector_terms_match
from akros_kubesim.storage import VOLUME_NODE_CONFLICT, volume_conflict

Resources = dict[str, int]  # cpu in millicores, memory in bytes, everything else in units


def _amount(name: str, value: object) -> int:
    try:
        return millicores(value) if name == "cpu" else whole_units(value)
    except QuantityError:
        return 0


def pod_requests(pod: Mapping[str, Any]) -> Resources:
    """What a pod reserves: the sum over its containers, at least the largest init container."""
    spec = pod.get("spec") or {}
    total: Counter[str] = Counter()
    for container in spec.get("containers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] += _amount(name, value)
    for container in spec.get("initContainers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total[name], _amount(name, value))
    total["pods"] = 1
    return dict(total)


def node_allocatable(node: Mapping[str, Any]) -> Resources:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return {name: _amount(name, value) for name, value in allocatable.items()}


def occupies_node(pod: Mapping[str, Any]) -> bool:
    """Bound pods hold their resources until they finish."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


def requested_on_nodes(pods: Iterable[Mapping[str, Any]]) -> dict[str, Resources]:
    used: dict[str, Counter[str]] = {}
    for pod in pods:
        if occupies_node(pod):
            used.setdefault(pod["spec"]["nodeName"], Counter()).update(pod_requests(pod))
    return {node: dict(counter) for node, counter in used.items()}


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key")
        if not key:
            if toleration.get("operator") == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if toleration.get("operator") == "Exists" or toleration.get("value", "") == taint.get(
            "value", ""
        ):
            return True
    return False


def _untolerated_taint(pod: Mapping[str, Any], node: Mapping[str, Any]) -> dict[str, Any] | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return dict(taint)
    return None


def _selector_matches(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    selector = spec.get("nodeSelector") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not all(labels.get(key) == value for key, value in selector.items()):
        return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
        or {}
    ).get("nodeSelectorTerms")
    return required is None or node_selector_terms_match(required, node)


def placement_failure(pod: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """Why the pod may never run on the node regardless of load (selector, taints), or None."""
    if (node.get("spec") or {}).get("unschedulable"):
        return "node(s) were unschedulable"
    if not _selector_matches(pod, node):
        return "node(s) didn't match Pod's node affinity/selector"
    taint = _untolerated_taint(pod, node)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    return None


def resource_failures(
    requests: Resources, allocatable: Mapping[str, int], used: Mapping[str, int]
) -> list[str]:
    failures = []
    for name, amount in requests.items():
        if amount and used.get(name, 0) + amount > allocatable.get(name, 0):
            failures.append("Too many pods" if name == "pods" else f"Insufficient {name}")
    return failures


def _free_share(
    requests: Resources, allocatable: Mapping[str, int], used: Mapping[str, int]
) -> float:
    """Share of cpu and memory left after placing the pod; higher spreads load (LeastAllocated)."""
    shares = []
    for name in ("cpu", "memory"):
        capacity = allocatable.get(name, 0)
        if capacity:
            shares.append((capacity - used.get(name, 0) - requests.get(name, 0)) / capacity)
    return sum(shares) / len(shares) if shares else 0.0


@dataclass(frozen=True)
class Decision:
    node: str | None
    message: str
    # Where the next search starts, so that successive pods spread over a large cluster.
    next_start: int = 0


def feasible_nodes_to_find(total: int) -> int:
    """How many fitting nodes to find before choosing, as kube-scheduler's adaptive
    percentageOfNodesToScore: all of a small cluster, a shrinking share of a large one."""
    if total < 100:
        return total
    percentage = max(50 - total // 125, 5)
    return max(total * percentage // 100, 100)


def choose_node(
    pod: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    allocatable: Mapping[str, Resources],
    used: Mapping[str, Mapping[str, int]],
    start: int = 0,
    volume_selectors: Sequence[Mapping[str, Any]] = (),
) -> Decision:
    """The node with the most room left among the first fitting ones found from `start`,
    or None and the scheduler's explanation of why no node fits. `volume_selectors` are the
    node affinities of the pod's bound volumes (a local volume exists on one node only)."""
    requests = pod_requests(pod)
    wanted_amounts = [(name, amount) for name, amount in requests.items() if amount]
    pod_spec = pod.get("spec") or {}
    constrained = bool(pod_spec.get("nodeSelector")) or bool(volume_selectors)
    reasons: Counter[str] = Counter()
    best: tuple[float, str] | None = None
    wanted, found, examined = feasible_nodes_to_find(len(nodes)), 0, 0
    empty: dict[str, int] = {}
    for offset in range(len(nodes)):
        node = nodes[(start + offset) % len(nodes)]
        examined += 1
        name = node["metadata"]["name"]
        node_spec = node.get("spec") or empty
        # The common case (no selector, untainted schedulable node) skips the full check.
        if constrained or node_spec.get("taints") or node_spec.get("unschedulable"):
            failure = placement_failure(pod, node)
            if failure is None and volume_conflict(volume_selectors, node):
                failure = VOLUME_NODE_CONFLICT
            if failure:
                reasons[failure] += 1
                continue
        room = allocatable.get(name, empty)
        taken = used.get(name, empty)
        if any(taken.get(r, 0) + amount > room.get(r, 0) for r, amount in wanted_amounts):
            reasons.update(resource_failures(requests, room, taken))
            continue
        score = (_free_share(requests, room, taken), name)
        if best is None or score[0] > best[0] or (score[0] == best[0] and name < best[1]):
            best = score
        found += 1
        if found >= wanted:
            break
    next_start = (start + examined) % len(nodes) if nodes else 0
    if best is not None:
        return Decision(best[1], "", next_start)
    detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return Decision(None, f"0/{len(nodes)} nodes are available: {detail}.", next_start)


def pod_priority(pod: Mapping[str, Any]) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


@dataclass(frozen=True)
class Preemption:
    node: str
    victims: tuple[Mapping[str, Any], ...]


def victims_still_terminating(
    pod: Mapping[str, Any], pods_on_nominated_node: Iterable[Mapping[str, Any]]
) -> bool:
    """A pod nominated to a node where lower-priority pods are still terminating may not
    preempt again: they are the room it made (the default scheduler's eligibility check)."""
    priority = pod_priority(pod)
    return any(
        (p.get("metadata") or {}).get("deletionTimestamp") and pod_priority(p) < priority
        for p in pods_on_nominated_node
    )


def choose_preemption(
    pod: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    allocatable: Mapping[str, Resources],
    pods_on_node: Mapping[str, Sequence[Mapping[str, Any]]],
    volume_selectors: Sequence[Mapping[str, Any]] = (),
) -> Preemption | None:
    """The node where evicting the fewest, least important lower-priority pods makes room.

    As the default scheduler does: remove every lower-priority pod, check the fit, then give
    back (reprieve) as many victims as still fit, most important first.
    """
    if (pod.get("spec") or {}).get("preemptionPolicy") == "Never":
        return None
    priority = pod_priority(pod)
    requests = pod_requests(pod)
    candidates: list[tuple[tuple[int, int, str], Preemption]] = []
    for node in nodes:
        name = node["metadata"]["name"]
        if placement_failure(pod, node) is not None or volume_conflict(volume_selectors, node):
            continue
        room = allocatable.get(name, {})
        residents = [p for p in pods_on_node.get(name, ()) if occupies_node(p)]
        lower = sorted(
            (p for p in residents if pod_priority(p) < priority), key=pod_priority, reverse=True
        )
        kept = [p for p in residents if pod_priority(p) >= priority]
        used = requested_on_nodes(kept).get(name, {})
        if resource_failures(requests, room, used):
            continue
        victims = []
        for resident in lower:
            with_resident = dict(Counter(used) + Counter(pod_requests(resident)))
            if resource_failures(requests, room, with_resident):
                victims.append(resident)
            else:
                used = with_resident
        if not victims:
            continue
        rank = (max(pod_priority(v) for v in victims), len(victims), name)
        candidates.append((rank, Preemption(name, tuple(victims))))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[0])[1]
