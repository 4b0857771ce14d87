"""The keyed work queue: dedup, one reconcile per key at a time, commands first, timers."""

import asyncio

from akros_k8s_worker.reconciler import waits_for_calm
from akros_k8s_worker.workqueue import WorkQueue, retry_backoff_s


async def test_a_key_added_many_times_is_queued_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(10):
        queue.add("alice/exp")
    queue.add("bob/lab")
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["alice/exp", "bob/lab"]


async def test_commands_keys_are_served_before_events_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("event-1")
    queue.add("event-2")
    queue.add("command", urgent=True)
    queue.add("event-2", urgent=True)  # a command for a key an event queued: moves up
    assert [await queue.get() for _ in range(3)] == ["command", "event-2", "event-1"]


async def test_a_key_being_reconciled_is_not_handed_out_again_until_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("alice/exp")
    key = await queue.get()
    queue.add("alice/exp")  # an event while it is being reconciled: nothing to hand out
    assert len(queue) == 0
    queue.done(key)  # ... until that reconcile ends; then it runs again, for the event
    assert len(queue) == 1
    assert await asyncio.wait_for(queue.get(), 1) == "alice/exp"


async def test_a_timer_adds_the_key_when_due_and_the_earliest_timer_wins() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("alice/exp", 60)
    queue.add_after("alice/exp", 0.01)
    assert queue.tracks("alice/exp")
    assert await asyncio.wait_for(queue.get(), 1) == "alice/exp"


async def test_a_failing_key_backs_off_and_success_resets_it() -> None:
    queue: WorkQueue[str] = WorkQueue()
    assert [queue.failed("k") for _ in range(3)] == [0.05, 0.1, 0.2]
    queue.succeeded("k")
    assert queue.failed("k") == 0.05
    assert retry_backoff_s(50) == 10.0


async def test_other_keys_wait_while_a_command_is_on_its_way_to_its_first_write() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("command", urgent=True)
    queue.add("event")
    assert await queue.get() == "command"
    waiting = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0.05)
    assert not waiting.done(), "an event's key is handed out before the command's first write"
    queue.first_write_next("command")
    assert await asyncio.wait_for(waiting, 1) == "event"


async def test_a_command_held_up_on_a_blip_delays_other_keys_only_for_a_bounded_time() -> None:
    queue: WorkQueue[str] = WorkQueue()
    async with queue.pressing():  # a command in hand that never finishes its way
        queue.add("event")
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await asyncio.wait_for(queue.get(), 2) == "event"
        assert 0.4 <= loop.time() - started < 1.5


async def test_a_worker_waiting_for_calm_still_takes_a_commands_key_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    async with queue.pressing():
        queue.add("event")
        waiting = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0.05)
        queue.add("command", urgent=True)
        assert await asyncio.wait_for(waiting, 0.3) == "command"


async def test_room_is_always_kept_for_a_commands_key() -> None:
    queue: WorkQueue[str] = WorkQueue(most_other_at_once=2)
    for index in range(4):
        queue.add(f"event-{index}")
    taken = [await queue.get(), await queue.get()]
    third = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0.05)
    assert not third.done(), "more than two event keys at once"
    queue.add("command", urgent=True)
    assert await asyncio.wait_for(third, 0.3) == "command"
    queue.first_write_next("command")
    queue.done(taken[0])
    assert await asyncio.wait_for(queue.get(), 0.3) == "event-2"


async def test_a_command_takes_its_key_out_of_turn_unless_a_worker_has_it() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("alice/exp")  # queued by a pod event
    queue.add("bob/lab")
    assert queue.take("alice/exp")
    assert len(queue) == 1, "the taken key is still queued as well"
    assert not queue.take("alice/exp"), "taken twice"
    busy = await queue.get()
    assert not queue.take(busy)
    queue.done("alice/exp")
    queue.done(busy)


async def test_only_a_few_commands_are_on_their_way_at_once_until_their_first_write() -> None:
    queue: WorkQueue[str] = WorkQueue(command_slots=2)
    first_writes: dict[str, asyncio.Event] = {}
    order: list[str] = []

    async def command(name: str) -> None:
        async with queue.pressing() as first_write_next:
            order.append(name)
            assert queue.take(name, first_write_next)
            first_writes[name] = asyncio.Event()
            await first_writes[name].wait()
            queue.first_write_next(name)  # hands its slot to the next command
            queue.done(name)

    tasks = [asyncio.ensure_future(command(f"c{index}")) for index in range(3)]
    while len(order) < 2:
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert order == ["c0", "c1"], "a third command ran while two held the slots"
    first_writes["c0"].set()
    while len(order) < 3:
        await asyncio.sleep(0.01)
    assert order == ["c0", "c1", "c2"]
    first_writes["c1"].set()
    first_writes["c2"].set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)


def test_a_watchs_list_is_fed_at_once_and_its_later_events_wait_for_calm() -> None:
    listing = False
    waits = []
    for event in ("LISTING", "ADDED", "ADDED", "SYNCED", "MODIFIED", "LISTING", "ADDED", "SYNCED"):
        listing, waited = waits_for_calm(event, listing=listing)
        waits.append(waited)
    assert waits == [False, False, False, False, True, False, False, False]
