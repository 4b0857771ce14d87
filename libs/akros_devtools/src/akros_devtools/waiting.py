"""Waiting for something another process (or task) does: the one way tests and tools poll.

Each waits for a state that proves the thing happened and fails naming what never came, with
the last value seen; none of them is a pause that hopes something happened meanwhile.
"""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    produce: Callable[[], T],
    *,
    until: Callable[[T], object] = bool,
    timeout_s: float,
    interval_s: float = 0.05,
    what: str = "",
) -> T:
    """Call ``produce`` until ``until`` holds for its value (by default: the value is truthy)
    and return that value, or raise TimeoutError naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = produce()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"timed out after {timeout_s}s waiting for {what or produce!r}; "
                f"last seen: {value!r}"
            )
        time.sleep(interval_s)


def wait_until(
    condition: Callable[[], object], *, timeout_s: float, interval_s: float = 0.05, what: str = ""
) -> None:
    """Poll ``condition`` until it holds, or raise TimeoutError naming ``what``."""
    wait_for(condition, timeout_s=timeout_s, interval_s=interval_s, what=what or repr(condition))


async def wait_until_async(
    condition: Callable[[], object | Awaitable[object]],
    *,
    timeout_s: float,
    interval_s: float = 0.02,
    what: str = "",
) -> None:
    """``wait_until`` on an event loop: ``condition`` may be a coroutine function (a read of
    Redis), and the loop keeps running the tasks under test between polls."""
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = condition()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what or condition!r}")
        await asyncio.sleep(interval_s)
