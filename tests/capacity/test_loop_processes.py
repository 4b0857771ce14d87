"""The capacity loop's promises, with real processes: limits hold, no flapping, and a poller
that loses its monitor holds the size."""

import time

from akros_devtools import wait_until
from tests.capacity.conftest import ALL_GPUS, LoopFactory


def test_max_replicas_caps_inference_even_when_every_gpu_is_free(start_loop: LoopFactory) -> None:
    loop = start_loop({"AKROS_SCALE_UP_WINDOW_S": "0.5", "AKROS_INFERENCE_MAX_REPLICAS": "5"})
    loop.wait_for_replicas(5)
    loop.poller_handled_through(1.5)
    assert loop.replicas() == 5
    assert max(loop.scale_commands()) == 5


def test_headroom_stays_free_and_min_replicas_stay_when_researchers_take_everything(
    start_loop: LoopFactory,
) -> None:
    loop = start_loop(
        {
            "AKROS_SCALE_UP_WINDOW_S": "0.5",
            "AKROS_HEADROOM_GPUS": "3",
            "AKROS_INFERENCE_MIN_REPLICAS": "2",
        }
    )
    loop.wait_for_replicas(ALL_GPUS - 3)

    loop.researcher_pod("big", gpus=ALL_GPUS - 4)
    loop.wait_for_replicas(2)
    loop.poller_handled_through(1.5)
    assert loop.replicas() == 2
    assert min(loop.scale_commands()) == 2


def test_alternating_room_never_makes_inference_flap(start_loop: LoopFactory) -> None:
    loop = start_loop({"AKROS_SCALE_UP_WINDOW_S": "3"})
    loop.wait_for_replicas(ALL_GPUS, timeout_s=20)
    before = len(loop.scale_commands())

    for round_number in range(8):
        loop.researcher_pod(f"flicker-{round_number}", gpus=4)
        time.sleep(0.3)
        loop.delete_pod(f"flicker-{round_number}")
        time.sleep(0.3)

    loop.poller_handled_through(0)  # the whole flicker decided on
    during = loop.scale_commands()[before:]
    assert during, "the first researcher pod must shrink inference at once"
    assert during == sorted(during, reverse=True), f"inference grew during the flicker: {during}"
    assert len(set(during)) <= 2, f"inference moved more than once: {during}"
    loop.wait_for_replicas(ALL_GPUS, timeout_s=15)


def test_a_poller_whose_monitor_died_holds_the_size_and_says_so(start_loop: LoopFactory) -> None:
    loop = start_loop({"AKROS_SCALE_UP_WINDOW_S": "0.5", "AKROS_CAPACITY_STALE_AFTER_S": "1.5"})
    loop.wait_for_replicas(ALL_GPUS, timeout_s=20)
    loop.platform.kill("monitor")
    wait_until(
        lambda: loop.poller_status().get("state") == "holding",
        timeout_s=10,
        what="the poller to report that it holds",
    )
    commands = len(loop.scale_commands())

    loop.researcher_pod("unseen", gpus=8)
    # Still holding, reporting so 2 s later: the pod unseen through that, not yet looked at.
    stale_for = float(loop.poller_status()["stale_for_s"])
    wait_until(
        lambda: float(loop.poller_status()["stale_for_s"]) >= stale_for + 2,
        timeout_s=10,
        what="the poller to report 2 s more without capacity",
    )
    assert loop.poller_status()["state"] == "holding"
    assert loop.replicas() == ALL_GPUS
    assert len(loop.scale_commands()) == commands
    assert (
        "holding auto-inference at its current size" in loop.platform.children["poller"].log_text()
    )

    loop.platform.start_service("monitor")
    loop.wait_for_replicas(ALL_GPUS - 8)
    wait_until(
        lambda: loop.poller_status().get("state") == "following",
        timeout_s=5,
        what="the poller to report that it follows the room again",
    )
