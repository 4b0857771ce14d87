"""A researcher's environment that waits for the one node its local volume is stored on: the
capacity loop keeps room for it there, not anywhere (real processes on kubesim)."""

from typing import cast

from akros_bus.wire import DATA_FIELD
from akros_devtools import streams, wait_until
from akros_msgs import CapacityChanged, Groups
from akros_msgs.streams import CAPACITY
from tests.capacity.conftest import ALL_GPUS, CapacityLoop, LoopFactory

HOSTNAME = "kubernetes.io/hostname"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _keep_a_volume_on(loop: CapacityLoop, node: str) -> None:
    """A kept work volume stored on ``node``, as local-path leaves it, and its bound claim."""
    hostname = {"key": HOSTNAME, "operator": "In", "values": [node]}
    loop.core.create_persistent_volume(
        {
            "metadata": {"name": "kept-work"},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "hostPath": {"path": "/opt/local-path-provisioner/kept-work"},
                "nodeAffinity": {
                    "required": {"nodeSelectorTerms": [{"matchExpressions": [hostname]}]}
                },
            },
        }
    )
    loop.core.create_namespaced_persistent_volume_claim(
        "default",
        {
            "metadata": {"name": "kept"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": "kept-work",
                "resources": {"requests": {"storage": "10Gi"}},
            },
        },
    )
    wait_until(
        lambda: (
            loop.core.read_namespaced_persistent_volume_claim("kept", "default").status.phase
            == "Bound"
        ),
        timeout_s=10,
        what="the kept claim to bind",
    )


def _capacity_entries(loop: CapacityLoop) -> list[tuple[str, CapacityChanged]]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], loop.redis.xrange(CAPACITY.name))
    return [(entry_id.decode(), CAPACITY.parse(fields[DATA_FIELD])) for entry_id, fields in entries]


def _poller_has_handled(loop: CapacityLoop, entry: str) -> bool:
    through = streams.entry_id(entry)
    return streams.has_handled_through(loop.redis, CAPACITY.name, Groups.POLLER, through)


def test_inference_keeps_the_gpus_a_pinned_environment_cannot_use(
    start_loop: LoopFactory,
) -> None:
    loop = start_loop({"AKROS_SCALE_UP_WINDOW_S": "0.5"})
    loop.wait_for_replicas(ALL_GPUS, timeout_s=20)
    # Another researcher fills gpu-server-1 (inference there is preempted, then scaled away).
    loop.researcher_pod(
        "big", 8, tolerations=[GPU_TOLERATION], nodeSelector={HOSTNAME: "gpu-server-1"}
    )
    loop.wait_for_replicas(ALL_GPUS - 8)
    settled = len(loop.scale_commands())

    _keep_a_volume_on(loop, "gpu-server-1")
    work = {"name": "work", "persistentVolumeClaim": {"claimName": "kept"}}
    loop.researcher_pod("returning", 4, tolerations=[GPU_TOLERATION], volumes=[work])

    def pinned_seen() -> str | None:
        for entry_id, event in _capacity_entries(loop):
            by_node = {node.node: node.pending_researchers.gpus for node in event.nodes}
            if event.pending_researchers.gpus == 4 and by_node.get("gpu-server-1") == 4:
                return entry_id
        return None

    wait_until(lambda: pinned_seen() is not None, timeout_s=10, what="the pinned demand")
    entry_id = cast(str, pinned_seen())
    wait_until(
        lambda: _poller_has_handled(loop, entry_id), timeout_s=10, what="the poller to handle it"
    )

    # The 4 GPUs it waits for can only come from gpu-server-1; shrinking inference on
    # gpu-server-2 would leave them idle and the environment still waiting.
    assert loop.replicas() == ALL_GPUS - 8
    assert all(replicas == ALL_GPUS - 8 for replicas in loop.scale_commands()[settled:])
    returning = loop.core.read_namespaced_pod("returning", "default")
    assert returning.spec.node_name is None
    assert "volume node affinity conflict" in returning.status.conditions[0].message

    loop.delete_pod("big")
    wait_until(
        lambda: (
            loop.core.read_namespaced_pod("returning", "default").spec.node_name == "gpu-server-1"
        ),
        timeout_s=10,
        what="the environment to start on its volume's node",
    )
    loop.wait_for_replicas(ALL_GPUS - 4)
