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
    pod_demand,
    summarise,
)
from akros_monitor.usage import EnvironmentPod, environment_pod

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


@dataclass
class ClusterView:
    nodes: WatchedSet[NodeInfo] = field(default_factory=lambda: WatchedSet(node_info))
    pods: WatchedSet[PodDemand] = field(default_factory=lambda: WatchedSet(pod_demand))
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

    @property
    def synced(self) -> bool:
        return self.nodes.synced and self.pods.synced

    def capacity(self) -> ClusterCapacity:
        return summarise(self.nodes.items.values(), self.pods.items.values())

    def read_model_view(
        self, node_usage: Mapping[str, tuple[int, int]] | None
    ) -> akros_readmodel.ClusterView:
        """The nodes as the read model shows them (GET /v1/cluster, the dashboard)."""
        return akros_readmodel.ClusterView(
            nodes=node_views(self.nodes.items.values(), self.pods.items.values(), node_usage)
        )
