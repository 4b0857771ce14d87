"""The worker's two lanes: a command's way to its first write goes before background steps."""

import asyncio

from akros_k8s_worker.lanes import Lanes
from tests.concurrency import most_inside_at_once


async def test_a_background_step_waits_while_a_command_is_on_its_urgent_way() -> None:
    lanes = Lanes()
    order: list[str] = []
    release = asyncio.Event()

    async def command() -> None:
        async with lanes.urgent():
            order.append("urgent starts")
            await release.wait()
            order.append("urgent ends")

    async def background() -> None:
        async with lanes.background():
            order.append("background runs")

    urgent_task = asyncio.create_task(command())
    await asyncio.sleep(0)
    background_task = asyncio.create_task(background())
    await asyncio.sleep(0.01)
    assert order == ["urgent starts"]
    release.set()
    await asyncio.gather(urgent_task, background_task)
    assert order == ["urgent starts", "urgent ends", "background runs"]


async def test_ending_the_urgent_way_early_lets_background_steps_run() -> None:
    lanes = Lanes()
    ran = asyncio.Event()

    async def background() -> None:
        async with lanes.background():
            ran.set()

    async with lanes.urgent() as first_write_next:
        task = asyncio.create_task(background())
        await asyncio.sleep(0.01)
        assert not ran.is_set()
        first_write_next()
        first_write_next()  # a second call changes nothing
        await asyncio.wait_for(ran.wait(), timeout=1)
        assert lanes.urgent_now == 0
    await task
    assert lanes.urgent_now == 0


async def test_urgent_ways_run_a_few_at_a_time_first_come_first_served() -> None:
    lanes = Lanes(urgent_slots=2)
    running = 0
    most = 0
    started: list[int] = []

    async def command(number: int) -> None:
        nonlocal running, most
        async with lanes.urgent():
            started.append(number)
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.005)
            running -= 1

    await asyncio.gather(*(command(n) for n in range(6)))
    assert most == 2
    assert started == list(range(6))
    # Waiting commands count as urgent: no background step slipped in between them.
    assert lanes.urgent_now == 0


async def test_background_steps_run_at_most_their_slots_at_once() -> None:
    lanes = Lanes(background_slots=3)
    assert await most_inside_at_once(lanes.background, 10) == 3


async def test_a_cancelled_wait_for_an_urgent_slot_gives_nothing_back_twice() -> None:
    lanes = Lanes(urgent_slots=1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with lanes.urgent():
            await hold.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert lanes.urgent_now == 1
    hold.set()
    await first
    assert lanes.urgent_now == 0
    # The one slot is free again, exactly once.
    async with lanes.urgent():
        assert lanes.urgent_now == 1


async def test_the_watches_wait_for_a_command_on_its_urgent_way_but_never_for_a_stuck_one() -> None:
    lanes = Lanes()
    stuck = asyncio.Event()  # never set: a command whose Redis call hangs

    async def stuck_command() -> None:
        async with lanes.urgent():
            await stuck.wait()

    command = asyncio.create_task(stuck_command())
    await asyncio.sleep(0)
    assert lanes.urgent_now == 1
    loop = asyncio.get_running_loop()
    began = loop.time()
    await asyncio.wait_for(lanes.calm(at_most_s=0.05), timeout=1)
    assert loop.time() - began >= 0.05
    assert lanes.urgent_now == 1  # it is still stuck; the watch went on without it
    command.cancel()
    await asyncio.gather(command, return_exceptions=True)
    # With no command on its way, calm returns at once.
    began = loop.time()
    await lanes.calm(at_most_s=10)
    assert loop.time() - began < 1
