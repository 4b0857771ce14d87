"""Garbage collection kept off the way of requests.

CPython's cyclic collector runs inside whatever code allocates at the moment, so its pauses
land on the event loop: a young collection costs a millisecond or two, a full one as long as
it takes to walk every tracked object. In the worker, full collections were 18-80 ms pauses in
the middle of a burst of creates (measured with ``gc.callbacks``), each one delaying every
command behind it. So a service

- freezes what start-up built (modules, clients, settings: alive as long as the process) out
  of the collector's walks, and
- turns off automatic full collections, and runs one itself once a minute at a quiet moment
  (no message, request or usage cycle for half a second: what ``Activity`` is told), or
  regardless once it is a minute overdue, so cyclic garbage still cannot pile up.

Young collections stay automatic: they are short, and they free most cyclic garbage.

Both are the process's own policy, so only a service's entry point freezes (never a test or
a tool that serves a bus in its own process), and the scheduled collections run only where
automatic ones were turned off.
"""

import asyncio
import contextlib
import gc
import math
import time
from collections.abc import Iterator

FULL_COLLECTION_EVERY_S = 60.0
QUIET_AFTER_S = 0.5
LONGEST_DELAY_S = 60.0
_CHECK_EVERY_S = 0.25
# Generation-1 collections before an automatic full one: never, for a service's lifetime.
_NO_AUTOMATIC_FULL_COLLECTION = 1_000_000_000


class Activity:
    """When the service last had work arriving (a message, a request), and whether it is in
    the middle of a longer piece of work of its own (the monitor's usage cycle)."""

    def __init__(self) -> None:
        self._last = -math.inf
        self._busy = 0

    def note(self) -> None:
        self._last = time.monotonic()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Not idle while inside, nor for a moment after."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self.note()

    def idle_s(self, now: float | None = None) -> float:
        if self._busy:
            return 0.0
        return (time.monotonic() if now is None else now) - self._last


def full_collection_due(
    since_last_s: float,
    idle_s: float,
    *,
    every_s: float = FULL_COLLECTION_EVERY_S,
    quiet_after_s: float = QUIET_AFTER_S,
    longest_delay_s: float = LONGEST_DELAY_S,
) -> bool:
    """Whether to run a full collection now: its time has come and the service is quiet, or
    it has waited for a quiet moment as long as it may."""
    if since_last_s < every_s:
        return False
    return idle_s >= quiet_after_s or since_last_s >= every_s + longest_delay_s


def freeze_startup_objects() -> None:
    """Move everything alive now out of the collector's walks; full collections from now on
    only when ``collect_fully_when_quiet`` runs them."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NO_AUTOMATIC_FULL_COLLECTION)


def automatic_full_collections_off() -> bool:
    """Whether ``freeze_startup_objects`` ran in this process."""
    return gc.get_threshold()[2] >= _NO_AUTOMATIC_FULL_COLLECTION


async def collect_fully_when_quiet(activity: Activity) -> None:
    """Run the full collections that ``freeze_startup_objects`` took off automatic; where it
    did not run, the collector's own schedule stands and this returns at once."""
    if not automatic_full_collections_off():
        return
    last = time.monotonic()
    while True:
        await asyncio.sleep(_CHECK_EVERY_S)
        now = time.monotonic()
        if full_collection_due(now - last, activity.idle_s(now)):
            gc.collect()
            last = time.monotonic()
