"""A service in the shape every consumer service has, against a real Redis, in-process: its
lifespan connects the bus and builds it, ``serve_within`` serves it until told to stop, and
the lifespan's exit comes last, after the background work is cancelled and the consumers
drained."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from akros_bus import Bus, BusSettings
from akros_bus.runner import Background, serve_within
from akros_devtools import wait_until_async
from akros_msgs import EnvironmentCommand
from akros_msgs.streams import ENVIRONMENT_COMMANDS
from tests.bus.helpers import create_command


class Recorder:
    """A service whose handler and background loop note what happens, in order."""

    def __init__(self, bus: Bus, events: list[str]) -> None:
        self.bus = bus
        self.events = events
        self.handled = asyncio.Event()
        bus.consume(ENVIRONMENT_COMMANDS, "lifespan-test")(self._on_command)

    async def _on_command(self, command: EnvironmentCommand) -> None:
        self.events.append(f"handled {command.request_id}")
        self.handled.set()

    async def _beside(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append("background cancelled")
            raise

    def background(self) -> Background:
        return [self._beside]


async def test_the_lifespan_builds_the_service_and_closes_after_it_drained(
    redis_url: str,
) -> None:
    events: list[str] = []
    built: list[Recorder] = []
    settings = BusSettings.model_validate(
        {"redis_url": redis_url, "service_name": "lifespan-test", "poll_interval_ms": 20}
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[Recorder]:
        bus = Bus(settings)
        await bus.connect()
        events.append("bus connected")
        try:
            built.append(Recorder(bus, events))
            yield built[0]
        finally:
            events.append(f"lifespan exit, consumers running: {bus.broker.running}")
            await bus.stop()  # serve drained it already: this one does nothing
            events.append("bus stopped")

    collector_before = (gc.get_threshold(), gc.get_freeze_count())
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_within(lifespan(), stop_event=stop))
    async with asyncio.timeout(10):
        await wait_until_async(lambda: bool(built), timeout_s=10, what="the service built")
        await built[0].bus.publish(create_command("lifespan-1", "lab"))
        await built[0].handled.wait()
        stop.set()
        await serving

    assert events == [
        "bus connected",
        "handled lifespan-1",
        "background cancelled",
        "lifespan exit, consumers running: False",
        "bus stopped",
    ]
    assert (gc.get_threshold(), gc.get_freeze_count()) == collector_before, (
        "served in a process that is not the service's own, the collector is left as it was"
    )
