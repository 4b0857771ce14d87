"""The poller process: capacity events in, scale commands out.

Only the newest event of a read counts, and nothing older than what was already used or
older than ``capacity_stale_after_s`` (a redelivery, a backlog after a restart). When fresh
events stop, the size is held, a warning logged and the status hash says ``holding``.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Self

from redis.exceptions import RedisError

from akros_bus import Bus, get_logger
from akros_bus.runner import Background, run_service
from akros_msgs import (
    SYSTEM_ACTOR,
    CapacityChanged,
    Groups,
    ScaleDeployment,
    new_request_id,
)
from akros_msgs.streams import CAPACITY
from akros_poller.settings import PollerSettings
from akros_poller.sizing import Sizing, desired_replicas, is_stale, observed_replicas

_log = get_logger("akros.poller")
STATUS_KEY = "akros:poller:status"
"""A Redis hash: state (following / holding), replicas, last_capacity_at, stale_for_s."""


class Poller:
    """The poller, built by ``open`` on a connected bus."""

    def __init__(self, settings: PollerSettings, *, bus: Bus) -> None:
        self.settings = settings
        self.policy = settings.policy()
        self.bus = bus
        self.sizing: Sizing | None = None
        """The size last decided; None until the first fresh capacity event."""
        self.holding = False
        self._newest_observed_at = 0.0
        self._fresh_at = time.monotonic()
        self._commanded: tuple[int, float] | None = None
        bus.consume_batch(CAPACITY, Groups.POLLER)(self._on_capacity)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: PollerSettings) -> AsyncIterator[Self]:
        """The poller's lifespan: connect the bus; on the way out stop it."""
        bus = Bus(settings)
        await bus.connect()
        try:
            yield cls(settings, bus=bus)
        finally:
            await bus.stop()

    async def _on_capacity(self, events: list[CapacityChanged]) -> None:
        # The capacity stream carries this one type: a second would fail this registration's
        # type check, and one no consumer knows is dead-lettered before it reaches here.
        capacity = max(events, key=lambda event: event.observed_at)
        observed_at = capacity.observed_at.timestamp()
        if observed_at <= self._newest_observed_at:
            return  # redelivered or out of order: a newer picture was used already
        if is_stale(observed_at, time.time(), self.settings.capacity_stale_after_s):
            _log.info("ignoring stale capacity", observed_at=capacity.observed_at.isoformat())
            return
        self._newest_observed_at = observed_at
        self._fresh_at = time.monotonic()
        current = self.sizing or Sizing(observed_replicas(capacity, self.policy))
        if self.holding:
            self.holding = False
            # Nothing is known of the gap: room must last a whole window again to grow.
            current = Sizing(current.replicas)
            _log.info("capacity events resumed; following the room again")
        self.sizing = desired_replicas(capacity, self.policy, current)
        await self._command(self.sizing.replicas, capacity)

    async def _command(self, replicas: int, capacity: CapacityChanged) -> None:
        now = time.monotonic()
        if self._commanded is not None:
            last_replicas, at = self._commanded
            if last_replicas == replicas and now - at < self.settings.reassert_interval_s:
                return
        await self.bus.publish(
            ScaleDeployment(
                request_id=new_request_id(),
                actor=SYSTEM_ACTOR,
                namespace=self.policy.namespace,
                deployment=self.policy.deployment,
                replicas=replicas,
                reason=(
                    f"capacity observed at {capacity.observed_at.isoformat()}: "
                    f"{capacity.pending_researchers.describe()} pending for researchers"
                ),
            )
        )
        self._commanded = (replicas, now)
        _log.info("scale commanded", replicas=replicas, deployment=self.policy.deployment)

    async def _report_status(self) -> None:
        while True:
            stale_for = time.monotonic() - self._fresh_at
            if stale_for > self.settings.capacity_stale_after_s and not self.holding:
                self.holding = True
                _log.warning(
                    "no fresh capacity events; holding auto-inference at its current size",
                    stale_for_s=round(stale_for, 1),
                    replicas=self.sizing.replicas if self.sizing else None,
                )
            last = (
                datetime.fromtimestamp(self._newest_observed_at, UTC).isoformat()
                if self._newest_observed_at
                else ""
            )
            try:
                await self.bus.redis.hset(
                    STATUS_KEY,
                    mapping={
                        "state": "holding" if self.holding else "following",
                        "replicas": "" if self.sizing is None else str(self.sizing.replicas),
                        "last_capacity_at": last,
                        "stale_for_s": f"{stale_for:.1f}",
                    },
                )
            except RedisError as error:
                _log.warning("could not write the poller status", error=repr(error))
            await asyncio.sleep(self.settings.status_interval_s)

    def background(self) -> Background:
        return [self._report_status]


def main() -> None:
    settings = PollerSettings()
    run_service(settings, Poller.open(settings))


if __name__ == "__main__":
    main()
