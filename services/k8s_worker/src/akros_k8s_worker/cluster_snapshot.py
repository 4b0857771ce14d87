"""The nodes' capacity for the dashboard: allocatable, requested by pods and used now.

Until the monitor service publishes capacity, the worker (which lists nodes already) writes
this snapshot to the read model every few seconds, with three list calls whatever the
cluster's size.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from akros_bus import get_logger
from akros_k8s_worker.objects import GPU_RESOURCE, Manifest
from akros_kube import Cluster, NotFoundError
from akros_msgs import Resources
from akros_msgs.quantity import cpu_millicores, memory_bytes
from akros_readmodel import ClusterView, NodeView, ReadModel

_log = get_logger("akros.cluster")
_FINISHED = {"Succeeded", "Failed"}


def _resources(quantities: dict[str, str]) -> Resources:
    return Resources(
        cpu_millis=cpu_millicores(str(quantities.get("cpu", "0"))),
        memory_bytes=memory_bytes(str(quantities.get("memory", "0"))),
        gpus=int(str(quantities.get(GPU_RESOURCE, "0"))),
    )


def _pod_requests(pod: Manifest) -> Resources:
    containers = (pod.get("spec") or {}).get("containers") or []
    return sum(
        (_resources((c.get("resources") or {}).get("requests") or {}) for c in containers),
        Resources(),
    )


def _ready(node: Manifest) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def cluster_view(
    nodes: Sequence[Manifest], pods: Sequence[Manifest], node_metrics: Sequence[Manifest] | None
) -> ClusterView:
    """Each node's allocatable, the requests of the pods bound to it (finished pods hold
    nothing) and, when metrics.k8s.io answers, its usage now."""
    requested: dict[str, Resources] = {}
    counts: dict[str, int] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in _FINISHED:
            continue
        requested[node] = requested.get(node, Resources()) + _pod_requests(pod)
        counts[node] = counts.get(node, 0) + 1
    used = {
        str((m.get("metadata") or {}).get("name")): _resources(m.get("usage") or {})
        for m in node_metrics or []
    }
    views = []
    for node in nodes:
        name = str((node.get("metadata") or {}).get("name"))
        views.append(
            NodeView(
                name=name,
                ready=_ready(node),
                allocatable=_resources((node.get("status") or {}).get("allocatable") or {}),
                requested=requested.get(name, Resources()),
                used=used.get(name),
                pods=counts.get(name, 0),
            )
        )
    return ClusterView(nodes=sorted(views, key=lambda v: v.name))


@dataclass
class ClusterObserver:
    cluster: Cluster
    read_model: ReadModel
    interval_s: float

    async def snapshot(self) -> ClusterView:
        nodes, _ = await self.cluster.list("Node")
        pods, _ = await self.cluster.list("Pod")
        try:
            metrics: list[Manifest] | None = (await self.cluster.list("NodeMetrics"))[0]
        except NotFoundError:  # no metrics-server on this cluster
            metrics = None
        return cluster_view(nodes, pods, metrics)

    async def run(self) -> None:
        while True:
            try:
                await self.read_model.put_cluster(await self.snapshot())
            except Exception:  # a failed round must not end the loop; the next one retries
                _log.exception("could not observe the cluster's capacity")
            await asyncio.sleep(self.interval_s)
