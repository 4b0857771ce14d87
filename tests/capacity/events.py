"""CapacityChanged events built from a few GPU nodes, as the monitor would publish them."""

from datetime import datetime

from akros_msgs import SYSTEM_ACTOR, CapacityChanged, NodeCapacity, Resources, ResourceUse

GI = 1024**3


def gpu_node(name: str, gpus: int = 8, **requested: Resources) -> NodeCapacity:
    return NodeCapacity(
        node=name,
        allocatable=Resources(cpu_millis=64_000, memory_bytes=512 * GI, gpus=gpus),
        requested=ResourceUse(**requested),
        labels={"akros.io/pool": "gpu"},
    )


def gpus(count: int) -> Resources:
    """``count`` GPUs with a CPU and a GiB each, as a small researcher pod asks."""
    return Resources(cpu_millis=count * 1000, memory_bytes=count * GI, gpus=count)


def capacity_event(
    *nodes: NodeCapacity, observed_at: datetime, pending_researchers: Resources | None = None
) -> CapacityChanged:
    total = Resources()
    use = ResourceUse()
    for node in nodes:
        total = total + node.allocatable
        use = ResourceUse(
            researchers=use.researchers + node.requested.researchers,
            services=use.services + node.requested.services,
            inference=use.inference + node.requested.inference,
            other=use.other + node.requested.other,
        )
    return CapacityChanged(
        request_id="capacity",
        actor=SYSTEM_ACTOR,
        observed_at=observed_at,
        nodes=list(nodes),
        allocatable=total,
        requested=use,
        pending=pending_researchers or Resources(),
        pending_researchers=pending_researchers or Resources(),
    )
