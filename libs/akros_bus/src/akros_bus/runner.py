"""Running a consumer service: signals, graceful drain, and a liveness endpoint.

The liveness endpoint is a few lines on asyncio's own server rather than an ASGI server,
because uvicorn installs its own SIGTERM handling and the graceful drain below must own it.
"""

import asyncio
import json
import signal
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import uvloop

from akros_bus.bus import Bus
from akros_bus.collector import collect_fully_when_quiet, freeze_startup_objects
from akros_bus.logs import configure_logging, get_logger

_log = get_logger("akros.runner")
_REQUEST_LINE_LIMIT = 8192


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
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    stop_event: asyncio.Event | None = None,
) -> None:
    """Consume until SIGTERM/SIGINT (or ``stop_event``), then drain gracefully.

    ``background`` coroutines (watch loops, periodic publishers) run beside the consumers and
    are cancelled on shutdown, before the consumers drain.
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


def run_forever(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's main coroutine on uvloop."""
    uvloop.run(main)


def run(bus: Bus, *, background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()) -> None:
    """The body of a consumer service's console entry point."""
    configure_logging(bus.settings.service_name, bus.settings.log_level)
    run_forever(serve(bus, background=background))
