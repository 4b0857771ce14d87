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
  error (Redis or the API away) delays that key and nothing else.
"""

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

RETRY_FIRST_S = 0.05
RETRY_MAX_S = 10.0


def retry_backoff_s(failures: int) -> float:
    """50 ms doubling to 10 s: a Redis restart is retried within a fraction of a second of
    its end, a long outage costs a few calls a minute per key."""
    return float(min(RETRY_FIRST_S * 2 ** max(failures - 1, 0), RETRY_MAX_S))


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._urgent: deque[K] = deque()
        self._normal: deque[K] = deque()
        self._queued: dict[K, bool] = {}  # key -> urgent
        self._active: set[K] = set()
        self._dirty: dict[K, bool] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._getters: deque[asyncio.Future[None]] = deque()

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
        """The next key, commands' first; the caller must call ``done`` with it."""
        while not (self._urgent or self._normal):
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled():
                    self._wake()  # pass the wake-up on to another worker
                raise
        key = self._urgent.popleft() if self._urgent else self._normal.popleft()
        del self._queued[key]
        self._active.add(key)
        if self._urgent or self._normal:
            self._wake()
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
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
