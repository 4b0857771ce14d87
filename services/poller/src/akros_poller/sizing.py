"""How many auto-inference replicas the cluster has room for: pure functions, no I/O.

Scale-down follows the room at once (counting researchers' pending demand, so a waiting
environment gets room in the same step); scale-up follows only once every recommendation of
the last ``scale_up_window_s`` allowed it, so alternating events never make it flap.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from akros_msgs import CapacityChanged, NodeCapacity, Resources


@dataclass(frozen=True)
class InferencePolicy:
    """Which Deployment is auto-inference, what a replica takes, and the limits it keeps."""

    namespace: str
    deployment: str
    per_replica: Resources
    headroom: Resources = field(default_factory=Resources)
    min_replicas: int = 0
    max_replicas: int = 100
    scale_up_window_s: float = 30.0
    node_labels: Mapping[str, str] = field(default_factory=dict)
    """Labels a node must carry to host a replica (the Deployment's nodeSelector)."""


@dataclass(frozen=True)
class Sizing:
    """What the poller remembers between events: the replica count it settled on and the
    room-based recommendations (observed-at time, replicas) inside the scale-up window."""

    replicas: int
    recommendations: tuple[tuple[float, int], ...] = ()


def _copies(room: Resources, per_replica: Resources) -> int:
    """How many ``per_replica`` fit in ``room``, judged by every resource a replica needs."""
    counts = [
        have // need
        for have, need in (
            (room.cpu_millis, per_replica.cpu_millis),
            (room.memory_bytes, per_replica.memory_bytes),
            (room.gpus, per_replica.gpus),
        )
        if need > 0
    ]
    return min(counts) if counts else 0


def _may_host(node: NodeCapacity, policy: InferencePolicy) -> bool:
    return node.schedulable and all(
        node.labels.get(key) == value for key, value in policy.node_labels.items()
    )


def replicas_that_fit(capacity: CapacityChanged, policy: InferencePolicy) -> int:
    """Replicas the eligible nodes hold beside everything that is not auto-inference, keeping
    ``headroom`` free and room for researchers' pending pods, within min and max.

    Counted both per node (a replica cannot span nodes) and in total (headroom and pending
    demand are cluster-wide); the smaller count wins. Pending demand that only one node can
    take (its volume is stored there) is kept free on that node, not anywhere: room on
    another node is no use to it.
    """
    per_node = 0
    room = Resources()
    pinned = Resources()
    for node in capacity.nodes:
        pinned = pinned + node.pending_researchers
        if not _may_host(node, policy):
            continue
        others = node.requested.total.minus(node.requested.inference)
        free = node.allocatable.minus(others).minus(node.pending_researchers)
        per_node += _copies(free, policy.per_replica)
        room = room + free
    anywhere = capacity.pending_researchers.minus(pinned)
    in_total = _copies(room.minus(anywhere).minus(policy.headroom), policy.per_replica)
    return max(policy.min_replicas, min(policy.max_replicas, per_node, in_total))


def observed_replicas(capacity: CapacityChanged, policy: InferencePolicy) -> int:
    """The replicas running now, judged from what auto-inference requests in the cluster."""
    return _copies(capacity.requested.inference, policy.per_replica)


def desired_replicas(capacity: CapacityChanged, policy: InferencePolicy, current: Sizing) -> Sizing:
    """The replica count after ``capacity``: down at once, up only to what every
    recommendation of the last ``scale_up_window_s`` allowed.

    A recommendation holds until the next one, so the last one from before the window still
    speaks for the window's start; with no history at all, the current size does.
    """
    now = capacity.observed_at.timestamp()
    window_start = now - policy.scale_up_window_s
    fit = replicas_that_fit(capacity, policy)
    history = current.recommendations or ((now, current.replicas),)
    known = [r for r in (*history, (now, fit)) if r[0] <= now]
    before = [r for r in known if r[0] <= window_start]
    recent = (*before[-1:], *(r for r in known if r[0] > window_start))
    if fit <= current.replicas:
        return Sizing(fit, recent)
    grown = max(current.replicas, min(replicas for _, replicas in recent))
    # min and max bind at once, whatever size was held before (a start below min, a new max).
    return Sizing(max(policy.min_replicas, min(policy.max_replicas, grown)), recent)


def is_stale(observed_at: float, now: float, stale_after_s: float) -> bool:
    """Capacity this old no longer describes the cluster: act on nothing older."""
    return now - observed_at > stale_after_s
