"""The cluster's capacity as a pure function of its nodes and pods (plain dicts, as the API
returns them).

Each pod is reduced once to a ``PodDemand`` (where it sits, whose it is, what it requests), so
the watch loop re-parses only the pod that changed; ``summarise`` then adds up plain integers,
which keeps a cycle over tens of thousands of pods in milliseconds. ``node_views`` adds up the
same reductions per node for the read model's cluster view (the dashboard's).
"""

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from akros_msgs import SYSTEM_ACTOR, CapacityChanged, NodeCapacity, Resources, ResourceUse
from akros_msgs.quantity import QuantityError, cpu_millicores, memory_bytes
from akros_policy.naming import LABEL_KIND, WorkloadKind
from akros_policy.placement import NodeSelectorTerms, nodes_allowed
from akros_readmodel import NodeView

GPU_RESOURCE = "nvidia.com/gpu"
RESEARCHERS = "researchers"
SERVICES = "services"
INFERENCE = "inference"
OTHER = "other"
_OWNER_OF_KIND = {
    WorkloadKind.ENVIRONMENT.value: RESEARCHERS,
    WorkloadKind.SERVICE.value: SERVICES,
    WorkloadKind.INFERENCE.value: INFERENCE,
}
_FINISHED = {"Succeeded", "Failed"}

Amounts = tuple[int, int, int]
"""(CPU millicores, memory bytes, GPUs): plain integers, summed without building models."""


@dataclass(frozen=True)
class PodDemand:
    """What one pod asks of the cluster: held on ``node``, or, when ``node`` is empty,
    waiting because the scheduler found no room for it."""

    owner: str
    amounts: Amounts
    node: str = ""
    claims: tuple[str, ...] = ()
    """A waiting researcher's claims ("namespace/name"): a bound local volume pins the pod
    to the node it is stored on, so only that node's room can take it."""


@dataclass(frozen=True)
class NodeInfo:
    name: str
    allocatable: Amounts
    schedulable: bool
    labels: Mapping[str, str]
    ready: bool


def _amounts(quantities: Mapping[str, Any]) -> Amounts:
    try:
        return (
            cpu_millicores(quantities.get("cpu", "0")),
            memory_bytes(quantities.get("memory", "0")),
            int(str(quantities.get(GPU_RESOURCE, "0"))),
        )
    except (QuantityError, ValueError):
        return (0, 0, 0)


def add_amounts(left: Amounts, right: Amounts) -> Amounts:
    return (left[0] + right[0], left[1] + right[1], left[2] + right[2])


def _at_least(left: Amounts, right: Amounts) -> Amounts:
    return (max(left[0], right[0]), max(left[1], right[1]), max(left[2], right[2]))


@functools.lru_cache(maxsize=4096)
def resources(amounts: Amounts) -> Resources:
    """One (frozen) Resources per distinct amount: environments mostly ask for the same few
    sizes, and building 20,000 a usage cycle was a tenth of the monitor's own share of it."""
    return Resources(cpu_millis=amounts[0], memory_bytes=amounts[1], gpus=amounts[2])


def pod_requests(pod: Mapping[str, Any]) -> Amounts:
    """What the scheduler reserves for ``pod``: its containers' requests summed, at least its
    largest init container's (they run one at a time, before the others), plus overhead."""
    spec = pod.get("spec") or {}
    total: Amounts = (0, 0, 0)
    for container in spec.get("containers") or []:
        total = add_amounts(
            total, _amounts((container.get("resources") or {}).get("requests") or {})
        )
    for container in spec.get("initContainers") or []:
        init = _amounts((container.get("resources") or {}).get("requests") or {})
        total = _at_least(total, init)
    return add_amounts(total, _amounts(spec.get("overhead") or {}))


def _is_unschedulable(status: Mapping[str, Any]) -> bool:
    return any(
        condition.get("type") == "PodScheduled"
        and condition.get("status") == "False"
        and condition.get("reason") == "Unschedulable"
        for condition in status.get("conditions") or []
    )


def pod_demand(pod: Mapping[str, Any]) -> PodDemand | None:
    """The pod's demand, or None for a pod that counts nowhere: finished, or not yet seen by
    the scheduler (it is bound or found unschedulable within milliseconds, and only that
    change is worth an event)."""
    status = pod.get("status") or {}
    if status.get("phase") in _FINISHED:
        return None
    node = str((pod.get("spec") or {}).get("nodeName") or "")
    if not node and not _is_unschedulable(status):
        return None
    metadata = pod.get("metadata") or {}
    owner = _OWNER_OF_KIND.get(str((metadata.get("labels") or {}).get(LABEL_KIND, "")), OTHER)
    return PodDemand(
        owner=owner,
        amounts=pod_requests(pod),
        node=node,
        claims=_claim_keys(pod, metadata) if not node and owner == RESEARCHERS else (),
    )


def _claim_keys(pod: Mapping[str, Any], metadata: Mapping[str, Any]) -> tuple[str, ...]:
    namespace = metadata.get("namespace", "")
    return tuple(
        f"{namespace}/{claim['claimName']}"
        for volume in (pod.get("spec") or {}).get("volumes") or []
        if (claim := volume.get("persistentVolumeClaim")) and claim.get("claimName")
    )


PinnedNode = Callable[[PodDemand], str | None]
"""The one node a waiting pod's bound volumes allow, or None (any node, or several)."""


def pinned_node_of(
    nodes: Iterable[NodeInfo],
    claim_volumes: Mapping[str, str],
    volume_selectors: Mapping[str, NodeSelectorTerms],
) -> PinnedNode:
    """``PinnedNode`` from the claims ("namespace/name" -> bound volume's name) and the
    volumes' node affinity (volume name -> required terms) the monitor watches."""
    named = [(node.name, node.labels) for node in nodes]

    def pinned(demand: PodDemand) -> str | None:
        selectors = [
            volume_selectors[volume]
            for claim in demand.claims
            if (volume := claim_volumes.get(claim)) is not None and volume in volume_selectors
        ]
        if not selectors:
            return None
        allowed = nodes_allowed(selectors, named)
        return next(iter(allowed)) if len(allowed) == 1 else None

    return pinned


def _no_pins(_: PodDemand) -> str | None:
    return None


def _is_ready(status: Mapping[str, Any]) -> bool:
    return any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )


def node_info(node: Mapping[str, Any]) -> NodeInfo:
    metadata = node.get("metadata") or {}
    status = node.get("status") or {}
    return NodeInfo(
        name=str(metadata.get("name", "")),
        allocatable=_amounts(status.get("allocatable") or {}),
        schedulable=not (node.get("spec") or {}).get("unschedulable", False),
        labels=dict(metadata.get("labels") or {}),
        ready=_is_ready(status),
    )


@dataclass(frozen=True)
class ClusterCapacity:
    """Everything a CapacityChanged event says, without its envelope."""

    nodes: tuple[NodeCapacity, ...]
    allocatable: Resources
    requested: ResourceUse
    pending: Resources
    pending_researchers: Resources

    def event(self, *, request_id: str, observed_at: datetime) -> CapacityChanged:
        return CapacityChanged(
            request_id=request_id,
            actor=SYSTEM_ACTOR,
            observed_at=observed_at,
            nodes=list(self.nodes),
            allocatable=self.allocatable,
            requested=self.requested,
            pending=self.pending,
            pending_researchers=self.pending_researchers,
        )


def _use(by_owner: Mapping[str, Amounts]) -> ResourceUse:
    zero: Amounts = (0, 0, 0)
    return ResourceUse(
        researchers=resources(by_owner.get(RESEARCHERS, zero)),
        services=resources(by_owner.get(SERVICES, zero)),
        inference=resources(by_owner.get(INFERENCE, zero)),
        other=resources(by_owner.get(OTHER, zero)),
    )


def summarise(
    nodes: Iterable[NodeInfo], demands: Iterable[PodDemand], pinned: PinnedNode = _no_pins
) -> ClusterCapacity:
    """Per node and in total: allocatable, requested by owner, and pending demand, with the
    part of researchers' pending demand that only one node can take (``pinned``) per node.

    A pod bound to a node the monitor does not know (yet) counts in the totals only.
    """
    known = sorted(nodes, key=lambda n: n.name)
    per_node: dict[str, dict[str, Amounts]] = {node.name: {} for node in known}
    pinned_pending: dict[str, Amounts] = {}
    in_total: dict[str, Amounts] = {}
    pending: Amounts = (0, 0, 0)
    pending_researchers: Amounts = (0, 0, 0)
    for demand in demands:
        if demand.node:
            in_total[demand.owner] = add_amounts(
                in_total.get(demand.owner, (0, 0, 0)), demand.amounts
            )
            on_node = per_node.get(demand.node)
            if on_node is not None:
                on_node[demand.owner] = add_amounts(
                    on_node.get(demand.owner, (0, 0, 0)), demand.amounts
                )
        else:
            pending = add_amounts(pending, demand.amounts)
            if demand.owner == RESEARCHERS:
                pending_researchers = add_amounts(pending_researchers, demand.amounts)
                if demand.claims and (node_name := pinned(demand)) in per_node:
                    pinned_pending[node_name] = add_amounts(
                        pinned_pending.get(node_name, (0, 0, 0)), demand.amounts
                    )
    allocatable: Amounts = (0, 0, 0)
    for node in known:
        allocatable = add_amounts(allocatable, node.allocatable)
    return ClusterCapacity(
        nodes=tuple(
            NodeCapacity(
                node=node.name,
                allocatable=resources(node.allocatable),
                requested=_use(per_node[node.name]),
                schedulable=node.schedulable,
                labels=dict(node.labels),
                pending_researchers=resources(pinned_pending.get(node.name, (0, 0, 0))),
            )
            for node in known
        ),
        allocatable=resources(allocatable),
        requested=_use(in_total),
        pending=resources(pending),
        pending_researchers=resources(pending_researchers),
    )


def cluster_capacity(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> ClusterCapacity:
    """The capacity of a cluster with these nodes and pods."""
    demands = (demand for pod in pods if (demand := pod_demand(pod)) is not None)
    return summarise((node_info(node) for node in nodes), demands)


def node_views(
    nodes: Iterable[NodeInfo],
    demands: Iterable[PodDemand],
    used: Mapping[str, tuple[int, int]] | None,
) -> list[NodeView]:
    """Each node, by name: readiness, allocatable, what the pods bound to it request and how
    many they are, and, when metrics.k8s.io is served (``used`` not None: CPU millicores and
    memory bytes per node), its use; a node the metrics leave out has no use either."""
    requested: dict[str, Amounts] = {}
    pods: dict[str, int] = {}
    for demand in demands:
        if demand.node:
            requested[demand.node] = add_amounts(
                requested.get(demand.node, (0, 0, 0)), demand.amounts
            )
            pods[demand.node] = pods.get(demand.node, 0) + 1
    views = []
    for node in sorted(nodes, key=lambda n: n.name):
        use = None if used is None else used.get(node.name)
        views.append(
            NodeView(
                name=node.name,
                ready=node.ready,
                allocatable=resources(node.allocatable),
                requested=resources(requested.get(node.name, (0, 0, 0))),
                used=None if use is None else resources((use[0], use[1], 0)),
                pods=pods.get(node.name, 0),
            )
        )
    return views
