"""Two lanes on one event loop: a command's way to its first cluster write goes first.

asyncio runs whatever is ready in arrival order. In a burst the worker holds a hundred
commands at once, and the rest of each one's work (its Service, Ingress and NetworkPolicy,
its pod's events, the ready notice) queued in front of the next command's first write: that
queueing, not the work itself, was the platform's overhead. So the way from a command's
arrival to its first write is *urgent*, and the work after it is *background*: a background
step starts only while no command is on its urgent way, and only a few run at once, so little
of it can stand between a new command and its first write.

Background work cannot starve: the commands waiting for it hold the consumer's slots, and a
worker whose slots are full reads no new commands, so the urgent lane empties.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

DEFAULT_URGENT_SLOTS = 4
DEFAULT_BACKGROUND_SLOTS = 8
# A command's urgent way takes milliseconds; one that takes longer is stuck on a blip.
MAX_CALM_WAIT_S = 0.5


class Lanes:
    def __init__(
        self,
        urgent_slots: int = DEFAULT_URGENT_SLOTS,
        background_slots: int = DEFAULT_BACKGROUND_SLOTS,
    ) -> None:
        self._urgent = 0
        self._calm = asyncio.Event()
        self._calm.set()
        self._urgent_slots = asyncio.Semaphore(urgent_slots)
        self._background_slots = asyncio.Semaphore(background_slots)

    @property
    def urgent_now(self) -> int:
        """How many commands are on their urgent way now, waiting ones included."""
        return self._urgent

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[Callable[[], None]]:
        """Run the enclosed code (awaits included) ahead of any background step, until it
        calls the function this yields (its first write is next) or ends.

        A few at a time, first come first served: each of the code's round trips to Redis
        costs one turn of the event loop, and a turn is as long as every task runnable in it.
        With a burst's hundred commands interleaved, a round trip took ~6 ms instead of 0.1."""
        self._urgent += 1
        self._calm.clear()
        holds_slot = False
        ended = False

        def end() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            if holds_slot:
                self._urgent_slots.release()
            self._urgent -= 1
            if not self._urgent:
                self._calm.set()

        try:
            await self._urgent_slots.acquire()
            holds_slot = True
            yield end
        finally:
            end()

    async def calm(self, at_most_s: float = MAX_CALM_WAIT_S) -> None:
        """Return once no command is on its urgent way (at once when none is), or after
        ``at_most_s``. The watches wait for it before each event: reading and decoding a
        burst's pod events in between would stand in front of the next command's first write.
        The bound is for a command whose urgent way is stuck (Redis or the API down while it
        records its start): it delays the watch by that much, never holds it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._calm.wait(), at_most_s)

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Wait for a background slot and for no urgent work, then run the enclosed step.

        The slot is taken first, so when the urgent lane empties only the slot holders wake,
        not every waiting step at once."""
        async with self._background_slots:
            await self._calm.wait()
            yield
