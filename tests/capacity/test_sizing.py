"""The poller's decisions: room per resource, limits, stabilisation and staleness."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from akros_msgs import CapacityChanged, NodeCapacity, Resources
from akros_poller.sizing import (
    InferencePolicy,
    Sizing,
    desired_replicas,
    is_stale,
    observed_replicas,
    replicas_that_fit,
)
from tests.capacity.events import GI, capacity_event, gpu_node, gpus

START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
REPLICA = Resources(cpu_millis=4000, memory_bytes=32 * GI, gpus=1)
POLICY = InferencePolicy(
    namespace="akros-inference",
    deployment="auto-inference",
    per_replica=REPLICA,
    scale_up_window_s=10,
)


def _capacity(
    *nodes: NodeCapacity, at_s: float = 0, pending_researchers: Resources | None = None
) -> CapacityChanged:
    observed_at = START + timedelta(seconds=at_s)
    return capacity_event(*nodes, observed_at=observed_at, pending_researchers=pending_researchers)


def test_every_free_gpu_becomes_a_replica_and_inference_does_not_count_against_itself() -> None:
    capacity = _capacity(gpu_node("a", inference=REPLICA), gpu_node("b"))
    assert replicas_that_fit(capacity, POLICY) == 16


def test_the_scarcest_resource_decides_and_a_replica_never_spans_nodes() -> None:
    tight_cpu = Resources(cpu_millis=62_000)  # 2 CPUs left on node a: no replica fits there
    capacity = _capacity(gpu_node("a", services=tight_cpu), gpu_node("b", gpus=3))
    assert replicas_that_fit(capacity, POLICY) == 3


def test_headroom_pending_researchers_min_max_and_node_labels_shape_the_room() -> None:
    capacity = _capacity(gpu_node("a"), gpu_node("b"), pending_researchers=gpus(4))
    assert replicas_that_fit(capacity, POLICY) == 12
    assert replicas_that_fit(capacity, replace(POLICY, headroom=Resources(gpus=2))) == 10
    assert replicas_that_fit(capacity, replace(POLICY, max_replicas=5)) == 5
    full = _capacity(gpu_node("a", researchers=gpus(8)))
    assert replicas_that_fit(full, replace(POLICY, min_replicas=2)) == 2
    assert replicas_that_fit(capacity, replace(POLICY, node_labels={"akros.io/pool": "cpu"})) == 0


def test_scale_down_is_immediate_and_scale_up_waits_for_a_whole_window() -> None:
    busy = _capacity(gpu_node("a"), gpu_node("b", researchers=gpus(4)), at_s=1)
    sizing = desired_replicas(busy, POLICY, Sizing(16))
    assert sizing.replicas == 12

    sizes = []
    for at_s in (5, 10.5, 15.5):
        free = _capacity(gpu_node("a"), gpu_node("b"), at_s=at_s)
        sizing = desired_replicas(free, POLICY, sizing)
        sizes.append(sizing.replicas)
    assert sizes == [12, 12, 16]


def test_without_a_window_room_is_taken_at_once() -> None:
    busy = _capacity(gpu_node("a"), gpu_node("b", researchers=gpus(4)), at_s=1)
    free = _capacity(gpu_node("a"), gpu_node("b"), at_s=1.2)
    policy = replace(POLICY, scale_up_window_s=0)
    sizing = desired_replicas(busy, policy, Sizing(16))
    assert desired_replicas(free, policy, sizing).replicas == 16


def test_alternating_room_keeps_the_lower_size_until_the_room_lasts() -> None:
    sizing = Sizing(16)
    sizes = []
    for step in range(20):
        researchers = gpus(4) if step % 2 == 0 else Resources()
        capacity = _capacity(gpu_node("a", researchers=researchers), gpu_node("b"), at_s=step)
        sizing = desired_replicas(capacity, POLICY, sizing)
        sizes.append(sizing.replicas)
    assert sizes == [12] * 20


def test_without_history_the_current_size_speaks_for_the_window() -> None:
    free = _capacity(gpu_node("a"), gpu_node("b"), at_s=100)
    assert desired_replicas(free, POLICY, Sizing(3)).replicas == 3
    assert desired_replicas(free, replace(POLICY, min_replicas=5), Sizing(3)).replicas == 5


def test_observed_replicas_and_staleness() -> None:
    capacity = _capacity(gpu_node("a", inference=_times(REPLICA, 3)))
    assert observed_replicas(capacity, POLICY) == 3
    assert is_stale(observed_at=100, now=116, stale_after_s=15)
    assert not is_stale(observed_at=100, now=114, stale_after_s=15)


def _times(resources: Resources, count: int) -> Resources:
    total = Resources()
    for _ in range(count):
        total = total + resources
    return total


def test_a_waiting_environment_pinned_to_a_full_node_leaves_the_other_nodes_to_inference() -> None:
    """Its volume is stored on node a, which researchers fill: room on b is no use to it."""
    pinned = gpu_node("a", researchers=gpus(8)).model_copy(update={"pending_researchers": gpus(4)})
    capacity = _capacity(pinned, gpu_node("b"), pending_researchers=gpus(4))
    assert replicas_that_fit(capacity, POLICY) == 8
    inference_on_its_node = gpu_node(
        "a", inference=Resources(cpu_millis=16_000, memory_bytes=128 * GI, gpus=4)
    ).model_copy(update={"pending_researchers": gpus(4)})
    capacity = _capacity(inference_on_its_node, gpu_node("b"), pending_researchers=gpus(4))
    assert replicas_that_fit(capacity, POLICY) == 12, "the 4 GPUs it needs are freed on a"
