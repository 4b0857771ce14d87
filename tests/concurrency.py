"""Measuring how many holders an async context manager lets in at once."""

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any


async def most_inside_at_once(
    enter: Callable[[], AbstractAsyncContextManager[Any]], holders: int, hold_s: float = 0.005
) -> int:
    """Run ``holders`` tasks that each hold ``enter()`` for ``hold_s``; the most inside at once."""
    inside = 0
    most = 0

    async def hold() -> None:
        nonlocal inside, most
        async with enter():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(hold_s)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(holders)))
    return most
