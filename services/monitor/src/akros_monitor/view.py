"""The monitor's picture of the cluster, kept current by the watches of nodes and pods.

Each watched object is reduced to what capacity depends on as it arrives, and a change is
signalled only when that reduction changed: a pod's status heartbeat or a node's condition
refresh does not wake the publisher (its readiness changing does).
"""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import akros_readmodel
from akros_kube import LISTING, SYNCED
from akros_monitor.capacity import (
    ClusterCapacity,
    NodeInfo,
    PodDemand,
    node_info,
    node_views,
    pinned_node_of,
    pod_demand,
    summarise,
)
from akros_monitor.usage import EnvironmentPod, environment_pod
from akros_policy.placement import NodeSelectorTerms, claim_volume_name, volume_node_selector

T = TypeVar("T")


def _key(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"


@dataclass
class WatchedSet(Generic[T]):
    """Objects of one kind, reduced by ``reduce`` (None: not worth keeping), applied from the
    events of Cluster.watch; a (re)list replaces the contents whole when it is complete."""

    reduce: Callable[[Mapping[str, Any]], T | None]
    items: dict[str, T] = field(default_factory=dict)
    synced: bool = False
    _listing: dict[str, T] | None = None

    def observe(self, event: str, obj: Mapping[str, Any]) -> bool:
        """Apply one watch event; True when what the set holds changed."""
        if event == LISTING:
            self._listing = {}
            return False
        if event == SYNCED:
            listed = self._listing or {}
            changed = listed != self.items or not self.synced
            self.items, self._listing, self.synced = listed, None, True
            return changed
        key = _key(obj)
        reduced = None if event == "DELETED" else self.reduce(obj)
        if self._listing is not None:
            if reduced is not None:
                self._listing[key] = reduced
            return False
        if reduced is None:
            return self.items.pop(key, None) is not None
        changed = self.items.get(key) != reduced
        self.items[key] = reduced
        return changed


def _bound_volume_key(claim: Mapping[str, Any]) -> str | None:
    """A bound claim reduced to its volume's key in ``ClusterView.volumes``."""
    volume = claim_volume_name(claim)
    return None if volume is None else _key({"metadata": {"name": volume}})


@dataclass
class ClusterView:
    nodes: WatchedSet[NodeInfo] = field(default_factory=lambda: WatchedSet(node_info))
    pods: WatchedSet[PodDemand] = field(default_factory=lambda: WatchedSet(pod_demand))
    claims: WatchedSet[str] = field(default_factory=lambda: WatchedSet(_bound_volume_key))
    volumes: WatchedSet[NodeSelectorTerms] = field(
        default_factory=lambda: WatchedSet(volume_node_selector)
    )
    """Claims and volumes only where a volume is pinned: a waiting researcher's pod whose
    local volume is stored on one node needs room on that node (see capacity.PodDemand)."""
    environment_pods: WatchedSet[EnvironmentPod] = field(
        default_factory=lambda: WatchedSet(environment_pod)
    )
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def observe_node(self, event: str, node: Mapping[str, Any]) -> None:
        if self.nodes.observe(event, node):
            self.changed.set()

    def observe_pod(self, event: str, pod: Mapping[str, Any]) -> None:
        # Usage is sampled on its own clock, so environment pods changing wakes nobody.
        self.environment_pods.observe(event, pod)
        if self.pods.observe(event, pod):
            self.changed.set()

    # Claims and volumes wake nobody: every environment's create binds one of each, which
    # would double the capacity events of a burst; a reattached volume exists before its pod,
    # whose own change (found unschedulable) publishes, and the heartbeat covers the rest.
    def observe_claim(self, event: str, claim: Mapping[str, Any]) -> None:
        self.claims.observe(event, claim)

    def observe_volume(self, event: str, volume: Mapping[str, Any]) -> None:
        self.volumes.observe(event, volume)

    @property
    def synced(self) -> bool:
        """Nodes and pods are listed; claims and volumes only refine where pending demand
        must go, so capacity is published without them (as before they are listed)."""
        return self.nodes.synced and self.pods.synced

    def capacity(self) -> ClusterCapacity:
        nodes = self.nodes.items.values()
        pinned = pinned_node_of(nodes, self.claims.items, self.volumes.items)
        return summarise(nodes, self.pods.items.values(), pinned)

    def read_model_view(
        self, node_usage: Mapping[str, tuple[int, int]] | None
    ) -> akros_readmodel.ClusterView:
        """The nodes as the read model shows them (GET /v1/cluster, the dashboard)."""
        return akros_readmodel.ClusterView(
            nodes=node_views(self.nodes.items.values(), self.pods.items.values(), node_usage)
        )
