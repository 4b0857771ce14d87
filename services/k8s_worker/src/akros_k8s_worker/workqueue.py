"""A keyed work queue, as controller-runtime's (client-go's workqueue) is built.

Watch events, commands and timers only *add a key*; a worker takes a key, reconciles it from
what is there now, and says it is done. So:
- a key is queued once however often it is added (ten pod events before a worker gets to it
  are one reconcile);
- a key is never reconciled by two workers at once: added while it is being reconciled, it
  is marked dirty and queued again when that reconcile ends;
- keys added by commands are served before those of events and timers, so a burst of pod
  events never stands between a command and its work;
- `add_after` is a requeue-after timer (a start deadline, a retry's back-off): the earliest
  of several timers of a key wins;
- `failed` counts a key's consecutive failures and gives the back-off before its retry, so an
  error (Redis or the API away) delays that key and nothing else;
- commands go first all the way to their first cluster write, not only in the queue's order:
  a command in hand (`pressing`) or a key taken for a command (by its handler, `take`, or
  from the urgent keys), until its reconcile says its first write is next
  (`first_write_next`), keeps the queue from being *calm*, and the rest (other keys'
  reconciles, a reconcile's later writes, the watches' next event) waits for `calm`. On one
  event loop every runnable step shares each turn: in a burst of 100 creates, the responses
  to the earlier creates' later writes and their pods' events stood in front of the later
  creates' first writes for one to two seconds (bench/env_pipeline.py). Nothing starves:
  `calm` waits at most MAX_CALM_WAIT_S, which only a command stuck on a blip (Redis or the
  API away) takes;
- only COMMAND_SLOTS commands are on their way at once, first come first served: each of
  their round trips to Redis costs a turn of the event loop, and a turn is as long as every
  task runnable in it; with a burst's hundred commands interleaved, a round trip took ~6 ms
  instead of 0.1, and the first writes of all of them came late together.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

RETRY_FIRST_S = 0.05
RETRY_MAX_S = 10.0
# A command's way to its first write takes milliseconds; one that takes longer is stuck.
MAX_CALM_WAIT_S = 0.5
COMMAND_SLOTS = 4


def retry_backoff_s(failures: int) -> float:
    """50 ms doubling to 10 s: a Redis restart is retried within a fraction of a second of
    its end, a long outage costs a few calls a minute per key."""
    return float(min(RETRY_FIRST_S * 2 ** max(failures - 1, 0), RETRY_MAX_S))


class WorkQueue(Generic[K]):
    def __init__(
        self, most_other_at_once: int | None = None, command_slots: int = COMMAND_SLOTS
    ) -> None:
        """``most_other_at_once``: how many keys not a command's may be reconciled at once,
        so the workers beyond it are always free for a command's key; ``command_slots``: how
        many commands are on their way to their first write at once."""
        self._most_other = most_other_at_once
        self._command_slots = asyncio.Semaphore(command_slots)
        self._background_slots = asyncio.Semaphore(most_other_at_once or command_slots)
        self._on_first_write: dict[K, Callable[[], None]] = {}
        self._other_active: set[K] = set()
        self._urgent: deque[K] = deque()
        self._normal: deque[K] = deque()
        self._queued: dict[K, bool] = {}  # key -> urgent
        self._active: set[K] = set()
        self._dirty: dict[K, bool] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._pressing = 0
        self._pressing_keys: set[K] = set()
        self._calm = asyncio.Event()
        self._calm.set()
        self._calm_waiter = False  # one worker waits for calm; the rest only for keys

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: K, *, urgent: bool = False) -> None:
        if key in self._active:
            self._dirty[key] = self._dirty.get(key, False) or urgent
            return
        queued_urgent = self._queued.get(key)
        if queued_urgent is None:
            self._queued[key] = urgent
            (self._urgent if urgent else self._normal).append(key)
            self._wake()
        elif urgent and not queued_urgent:
            self._queued[key] = True
            self._normal.remove(key)
            self._urgent.append(key)
        self._update_calm()

    # -- commands first, to their first write ---------------------------------------------

    @contextlib.asynccontextmanager
    async def pressing(self) -> AsyncIterator[Callable[[], None]]:
        """A command is in hand: the queue is not calm, and the command holds one of the
        command slots (once it has one), until the enclosed code ends or calls the function
        this yields (to hand both to ``take``, which gives them up at the first write)."""
        self._pressing += 1
        self._update_calm()
        holds_slot = released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                if holds_slot:
                    self._command_slots.release()
                self._pressing -= 1
                self._update_calm()

        try:
            await self._command_slots.acquire()
            holds_slot = True
            yield release
        finally:
            release()

    def take(self, key: K, on_first_write: Callable[[], None] | None = None) -> bool:
        """Hand ``key`` to a command's own reconcile, out of its turn (False when a worker
        has it: then add it, urgent, for that worker to reconcile it again). Until its first
        write is next, the queue is not calm; ``on_first_write`` is called then, or when it
        is done, whichever comes first. The caller must call ``done`` with it."""
        if key in self._active:
            return False
        urgent = self._queued.pop(key, None)
        if urgent is not None:
            (self._urgent if urgent else self._normal).remove(key)
        self._active.add(key)
        self._pressing_keys.add(key)
        if on_first_write is not None:
            self.on_first_write(key, on_first_write)
        self._update_calm()
        return True

    def on_first_write(self, key: K, call: Callable[[], None]) -> None:
        """Call ``call`` too when the taken ``key``'s first write is next (or it is done)."""
        previous = self._on_first_write.get(key)
        if previous is None:
            self._on_first_write[key] = call
            return

        def both() -> None:
            previous()
            call()

        self._on_first_write[key] = both

    def first_write_next(self, key: K) -> None:
        """The reconcile of a command's key is about to make its first write: from here on
        it waits for calm like everything else."""
        self._pressing_keys.discard(key)
        if (on_first_write := self._on_first_write.pop(key, None)) is not None:
            on_first_write()
        self._update_calm()

    def is_pressing(self, key: K) -> bool:
        return key in self._pressing_keys

    async def calm(self, at_most_s: float = MAX_CALM_WAIT_S) -> None:
        """Return once no command is on its way to its first write (at once when none is),
        or after ``at_most_s``."""
        if self._calm.is_set():
            return  # the usual case: no task to make for the wait
        # asyncio.timeout, not wait_for, which on Python 3.11 can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most_s):
                await self._calm.wait()

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Run the enclosed step of a reconcile that is not a command's first write (a
        create's later writes) in one of ``most_other_at_once`` slots, once the queue is
        calm. The slot comes first, so the steps go in the order they asked: in a burst,
        the first creates' Deployments are written first, rather than every create's last
        write waiting for all the others' (their pods, and readiness, all came late)."""
        async with self._background_slots:
            await self.calm()
            yield

    def _update_calm(self) -> None:
        if self._pressing or self._pressing_keys or self._urgent:
            self._calm.clear()
        else:
            self._calm.set()

    def tracks(self, key: K) -> bool:
        """Whether ``key`` will be reconciled without being added: queued, being reconciled,
        or waiting for its timer."""
        return key in self._queued or key in self._active or key in self._timers

    def add_after(self, key: K, seconds: float) -> None:
        if seconds <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + seconds
        existing = self._timers.get(key)
        if existing is not None:
            if existing[0] <= due:
                return
            existing[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _wake(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    async def get(self) -> K:
        """The next key: a command's first; any other once the queue is calm (or has not
        been for MAX_CALM_WAIT_S). The caller must call ``done`` with it.

        A worker waiting for calm still takes a command's key the moment one is added, so
        no command ever waits for a worker that waits for calm."""
        loop = asyncio.get_running_loop()
        waiting_since: float | None = None
        while True:
            if self._urgent:
                key = self._urgent.popleft()
                self._pressing_keys.add(key)
                break
            timeout: float | None = None
            room = self._most_other is None or len(self._other_active) < self._most_other
            if self._normal and room and (waiting_since is not None or not self._calm_waiter):
                now = loop.time()
                waiting_since = now if waiting_since is None else waiting_since
                timeout = waiting_since + MAX_CALM_WAIT_S - now
                if self._calm.is_set() or timeout <= 0:
                    key = self._normal.popleft()
                    self._other_active.add(key)
                    break
            if timeout is None:
                await self._wait_for_work(None)
                continue
            self._calm_waiter = True
            try:
                await self._wait_for_work(timeout)
            finally:
                self._calm_waiter = False
        del self._queued[key]
        self._active.add(key)
        if self._urgent or self._normal:
            self._wake()
        self._update_calm()
        return key

    async def _wait_for_work(self, timeout: float | None) -> None:
        """Until a key is added (this worker is woken for it), the queue turns calm while
        keys wait for calm, or ``timeout``."""
        getter = asyncio.get_running_loop().create_future()
        self._getters.append(getter)
        calm = asyncio.ensure_future(self._calm.wait()) if timeout is not None else None
        try:
            await asyncio.wait(
                [getter] if calm is None else [getter, calm],
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except asyncio.CancelledError:
            if getter.done() and not getter.cancelled():
                self._wake()  # pass the wake-up on to another worker
            raise
        finally:
            if calm is not None:
                calm.cancel()
            if not getter.done():
                getter.cancel()

    def done(self, key: K) -> None:
        self._active.discard(key)
        self.first_write_next(key)
        if key in self._other_active:
            self._other_active.discard(key)
            if self._normal:
                self._wake()  # room for a waiting key
        self._update_calm()
        if key in self._dirty:
            self.add(key, urgent=self._dirty.pop(key))

    def failed(self, key: K) -> float:
        """Count a failure of ``key``'s reconcile and queue it again after the back-off."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = retry_backoff_s(failures)
        self.add_after(key, delay)
        return delay

    def succeeded(self, key: K) -> None:
        self._failures.pop(key, None)

    def forget_timer(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer[1].cancel()
