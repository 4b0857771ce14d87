"""The keyed work queue: dedup, one reconcile per key at a time, commands first, timers."""

import asyncio

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
