"""Running a service: its lifespan, signals, graceful drain, a liveness endpoint, and the
event loop every service runs on.

Every consumer service has one shape: a lifespan (an async context manager) creates its
resources (the cluster client, the connected bus, what is built on them) and yields the fully
built service, its handlers registered; ``serve`` runs it until a signal and drains it; the
lifespan's exit closes what it created. The gateway's FastAPI lifespan has the same shape.
FastStream's own application (``FastStream(broker, lifespan=...)``, its ``on_startup`` hooks)
is not used: it starts and stops the broker itself, while the Bus creates its consumer groups
before the broker starts and drains its own in-flight handlers before it stops; and it calls
the lifespan through FastDepends, which the Bus turns off.

The liveness endpoint is a few lines on asyncio's own server rather than an ASGI server,
because uvicorn installs its own SIGTERM handling and the graceful drain below must own it.
"""

import asyncio
import json
import signal
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Literal, Protocol, TypeVar

import uvloop

from akros_bus.bus import Bus
from akros_bus.collector import collect_fully_when_quiet, freeze_startup_objects
from akros_bus.logs import configure_logging, get_logger
from akros_bus.settings import BusSettings

_log = get_logger("akros.runner")
_REQUEST_LINE_LIMIT = 8192
T = TypeVar("T")
Background = Sequence[Callable[[], Coroutine[Any, Any, None]]]
"""Coroutines run beside a service's consumers (watch loops, periodic publishers)."""

EVENT_LOOP: Final[Literal["uvloop"]] = "uvloop"
"""The event loop of every service, chosen here once: uvloop, for its lower overhead per I/O
callback, which is what a service with many requests in flight spends its time on.
``run_until_complete`` runs the consumer services and the gateway's commands on it; the
gateway hands it to uvicorn as its ``loop`` option."""


class Service(Protocol):
    """A consumer service as its lifespan yields it: built, its handlers registered."""

    @property
    def bus(self) -> Bus: ...

    def background(self) -> Background:
        """What runs beside the consumers, cancelled on shutdown before they drain."""
        ...


async def _answer_probe(
    bus: Bus, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        request_line = await asyncio.wait_for(reader.readline(), timeout=5)
        method, path, *_ = [*request_line.decode("latin-1", errors="replace").split(" "), "", ""]
        if method != "GET" or path.split("?")[0] not in {"/healthz", "/livez", "/readyz"}:
            status, body = "404 Not Found", {"error": "GET /healthz"}
        elif await bus.healthy():
            status, body = "200 OK", {"status": "ok", "consumer": bus.settings.consumer_name}
        else:
            status, body = "503 Service Unavailable", {"status": "unhealthy"}
        payload = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(
    bus: Bus,
    *,
    background: Background = (),
    stop_event: asyncio.Event | None = None,
    own_process: bool = False,
) -> None:
    """Consume until SIGTERM/SIGINT (or ``stop_event``), then drain gracefully.

    ``background`` coroutines (watch loops, periodic publishers) run beside the consumers and
    are cancelled on shutdown, before the consumers drain. ``own_process``: the process is
    this service's (its entry point), so what start-up built is frozen out of the garbage
    collector's walks (akros_bus.collector); a test serving in its own process says False.
    """
    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    await bus.start()
    probe = None
    if bus.settings.health_port:
        probe = await asyncio.start_server(
            lambda r, w: _answer_probe(bus, r, w),
            host=bus.settings.health_host,
            port=bus.settings.health_port,
            limit=_REQUEST_LINE_LIMIT,
        )
    if own_process:
        freeze_startup_objects()
    tasks = [asyncio.create_task(job()) for job in background]
    tasks.append(asyncio.create_task(collect_fully_when_quiet(bus.activity)))
    _log.info("service running", health_port=bus.settings.health_port or None)
    try:
        await stop.wait()
    finally:
        _log.info("shutting down: finishing messages in flight")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if probe is not None:
            probe.close()
        await bus.stop()
        _log.info("stopped")


def run_until_complete(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the services' event loop (``EVENT_LOOP``) and return its result."""
    return uvloop.run(main)


async def serve_within(
    lifespan: AbstractAsyncContextManager[Service],
    *,
    stop_event: asyncio.Event | None = None,
    own_process: bool = False,
) -> None:
    """Enter ``lifespan``, serve the service it yields until a signal (or ``stop_event``),
    drain it, then leave the lifespan."""
    async with lifespan as service:
        await serve(
            service.bus,
            background=service.background(),
            stop_event=stop_event,
            own_process=own_process,
        )


def run_service(settings: BusSettings, lifespan: AbstractAsyncContextManager[Service]) -> None:
    """The body of a consumer service's console entry point: ``lifespan`` builds the service
    (it is entered on the event loop, never at import)."""
    configure_logging(settings.service_name, settings.log_level)
    run_until_complete(serve_within(lifespan, own_process=True))


def run(bus: Bus, *, background: Background = ()) -> None:
    """The entry point of a service that is a bus alone, its handlers registered at import."""
    configure_logging(bus.settings.service_name, bus.settings.log_level)
    run_until_complete(serve(bus, background=background, own_process=True))
