"""Pure decisions of the worker over objects as the API returns them (plain dicts)."""

from typing import Any

from akros_k8s_worker.objects import GPU_PRODUCT_LABEL, GPU_RESOURCE
from akros_msgs import Resources
from akros_msgs.quantity import QuantityError, cpu_millicores, memory_bytes
from akros_policy import Holding
from akros_policy.naming import LABEL_ENV


def node_allocatable(node: dict[str, Any]) -> Resources:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    try:
        return Resources(
            cpu_millis=cpu_millicores(allocatable.get("cpu", "0")),
            memory_bytes=memory_bytes(allocatable.get("memory", "0")),
            gpus=int(allocatable.get(GPU_RESOURCE, "0")),
        )
    except (QuantityError, ValueError):
        return Resources()


def never_fits(
    request: Resources,
    gpu_model: str | None,
    nodes: list[dict[str, Any]],
    volume_nodes: frozenset[str] | None = None,
) -> str | None:
    """Why no node of the cluster could ever hold ``request``, even empty; None if one could.

    Checked before creating anything, so an impossible request fails in a second with a reason
    instead of waiting for the start timeout. ``volume_nodes``: the only nodes a reattached
    volume can be mounted on (its node affinity; see akros_k8s_worker.volumes), None if any.
    """
    candidates = [
        node
        for node in nodes
        if gpu_model is None
        or ((node.get("metadata") or {}).get("labels") or {}).get(GPU_PRODUCT_LABEL) == gpu_model
    ]
    if not candidates:
        return f"no node has GPUs of model {gpu_model}"
    if volume_nodes is not None:
        return pinned_never_fits(request, gpu_model, candidates, volume_nodes)
    if any(request.fits_within(node_allocatable(node)) for node in candidates):
        return None
    largest = max((node_allocatable(node) for node in candidates), key=_size_order(request))
    asked = request.describe()
    return (
        f"no node can ever fit {asked}; the largest node offers {largest.describe()}. "
        "Ask for less, or split the work across environments."
    )


def pinned_never_fits(
    request: Resources,
    gpu_model: str | None,
    candidates: list[dict[str, Any]],
    volume_nodes: frozenset[str],
) -> str | None:
    """``never_fits`` when the kept work volume is stored on ``volume_nodes`` alone."""
    where = ", ".join(sorted(volume_nodes)) or "no node of the cluster"
    delete = "or delete the volume (purge it) to start on any node."
    pinned = [n for n in candidates if (n.get("metadata") or {}).get("name") in volume_nodes]
    if not pinned:
        having = f"GPUs of model {gpu_model}" if gpu_model else "room for it"
        return f"the kept work volume is stored on {where}, which has no {having}; {delete}"
    if any(request.fits_within(node_allocatable(node)) for node in pinned):
        return None
    largest = max((node_allocatable(node) for node in pinned), key=_size_order(request))
    return (
        f"the kept work volume is stored on {where}, which can never fit {request.describe()}; "
        f"it offers {largest.describe()}. Ask for what it offers, {delete}"
    )


def _size_order(request: Resources) -> Any:
    """Orders nodes by how much of the scarcest requested dimension they offer."""

    def key(offer: Resources) -> tuple[int, int, int]:
        if request.gpus:
            return (offer.gpus, offer.cpu_millis, offer.memory_bytes)
        return (offer.cpu_millis, offer.memory_bytes, offer.gpus)

    return key


def deployment_requests(deployment: dict[str, Any]) -> Resources:
    """The resources one replica of ``deployment`` requests (all containers summed)."""
    template = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    total = Resources()
    for container in template.get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        total = total + Resources(
            cpu_millis=cpu_millicores(requests.get("cpu", "0")),
            memory_bytes=memory_bytes(requests.get("memory", "0")),
            gpus=int(requests.get(GPU_RESOURCE, "0")),
        )
    return total


def is_stopped(deployment: dict[str, Any]) -> bool:
    """Scaled to zero: a stopped environment (StopEnvironment)."""
    return bool((deployment.get("spec") or {}).get("replicas", 1) == 0)


def cluster_holding(deployments: list[dict[str, Any]], excluding: str) -> Holding:
    """What an owner holds according to the cluster, not counting environment ``excluding``
    (the one being applied, so a redelivered command is not refused by its own objects). A
    stopped environment counts as one, and holds no resources."""
    counted = [
        d
        for d in deployments
        if ((d.get("metadata") or {}).get("labels") or {}).get(LABEL_ENV) != excluding
    ]
    return Holding(
        resources=sum((deployment_requests(d) for d in counted if not is_stopped(d)), Resources()),
        environments=len(counted),
    )
