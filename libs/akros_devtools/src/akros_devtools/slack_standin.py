"""A local stand-in for the Slack Web API: records every call and answers it like Slack would,
so tests and benchmarks assert the exact calls the app made without ever reaching Slack.
Also what Slack sends: signed slash commands and interaction payloads.

The app's Web API client is pointed here through its ``base_url`` (AKROS_SLACK_API_URL);
``response_url`` answers of slash commands are posted here too, under /respond/.
"""

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import WSMsgType, web

BOT_USER = "UAKROSBOT"


@dataclass(frozen=True)
class Call:
    method: str
    args: dict[str, Any]
    answer: dict[str, Any]


class SlackStandIn:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._view_ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.socket_mode_url: str | None = None
        """Where apps.connections.open sends the app: a SocketModeStandIn's URL."""

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/respond/{name}"

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": "BAKROS", "team_id": "TAKROS"}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.socket_mode_url}
        if method == "chat.postMessage":
            # A user id as channel posts to that user's DM with the app: Slack names the DM.
            channel = "D" + str(args["channel"])
            return {"ok": True, "channel": channel, "ts": f"{next(self._ts)}.000100"}
        if method == "chat.update":
            return {"ok": True, "channel": args["channel"], "ts": args["ts"]}
        if method in {"views.open", "views.publish"}:
            return {"ok": True, "view": {"id": f"V{next(self._view_ids)}", **args.get("view", {})}}
        return {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = dict(parse_qsl(raw))
                for key in ("view", "blocks"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                if self.path.startswith("/respond/"):
                    method, answer = "response_url", {}
                    body, content_type = b"ok", "text/plain"
                else:
                    method = self.path.removeprefix("/api/").split("?")[0]
                    answer = standin._answer(method, args)
                    body, content_type = json.dumps(answer).encode(), "application/json"
                with standin._lock:
                    standin.calls.append(Call(method, args, answer))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the recorded calls are what tests look at."""

        return Handler

    def made(self, *, without: tuple[str, ...] = ("auth.test",)) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method not in without]

    def methods(self) -> list[str]:
        return [c.method for c in self.made()]

    def settle(self, quiet_s: float = 0.3, timeout_s: float = 10) -> None:
        """Wait until no call has come for ``quiet_s``: the work of earlier steps (Home
        refreshes after outcomes) is done, so what follows is only the next step's."""
        deadline = time.monotonic() + timeout_s
        seen = -1
        while time.monotonic() < deadline and seen != len(self.calls):
            seen = len(self.calls)
            time.sleep(quiet_s)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def wait_for(
        self, predicate: Callable[[list[Call]], bool], timeout_s: float = 15
    ) -> list[Call]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            calls = self.made()
            if predicate(calls):
                return calls
            time.sleep(0.02)
        raise AssertionError(f"Slack calls never matched; made: {self.methods()}")

    def last(self, method: str) -> Call:
        return [c for c in self.made() if c.method == method][-1]


@contextmanager
def running_standin() -> Iterator[SlackStandIn]:
    standin = SlackStandIn()
    thread = threading.Thread(target=standin._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        standin._server.shutdown()
        standin._server.server_close()
        thread.join(timeout=5)


def signed_headers(secret: str, body: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request with: v0=HMAC-SHA256(secret, "v0:<ts>:<body>")."""
    sent_at = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{sent_at}:{body}".encode(), hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": sent_at,
        "X-Slack-Signature": f"v0={digest.hexdigest()}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def slash_command_body(user: str, text: str, *, response_url: str, channel: str = "CLAB") -> str:
    """The form Slack posts for ``/akros <text>``."""
    return urlencode(
        {
            "command": "/akros",
            "text": text,
            "user_id": user,
            "team_id": "TAKROS",
            "channel_id": channel,
            "trigger_id": f"trigger-{user}-{time.monotonic_ns()}",
            "response_url": response_url,
            "api_app_id": "AAKROS",
        }
    )


def interaction_body(payload: dict[str, Any]) -> str:
    """The form Slack posts for a button press or a modal submission."""
    return urlencode({"payload": json.dumps(payload)})


class SocketModeStandIn:
    """Slack's end of Socket Mode: the app connects to it over a WebSocket (after asking
    apps.connections.open where); ``send`` hands the app an envelope, as Slack does for a
    slash command or an interaction, and returns the app's acknowledgement."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._socket: web.WebSocketResponse | None = None
        self._connected = threading.Event()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def start(self) -> "SocketModeStandIn":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1})
        self._connected.set()
        async for frame in socket:
            if frame.type is WSMsgType.TEXT:
                ack = json.loads(frame.data)
                if waiting := self._acks.pop(ack.get("envelope_id", ""), None):
                    waiting.set_result(ack)
        return socket

    def wait_connected(self, timeout_s: float = 30) -> bool:
        return self._connected.wait(timeout_s)

    async def _send(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        if self._socket is None:
            raise RuntimeError("the app has not connected")
        envelope_id = uuid.uuid4().hex
        waiting = self._loop.create_future()
        self._acks[envelope_id] = waiting
        await self._socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
            }
        )
        return await asyncio.wait_for(waiting, timeout=10)

    def send(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """``kind``: slash_commands, interactive or events_api."""
        return asyncio.run_coroutine_threadsafe(self._send(kind, payload), self._loop).result()

    def stop(self) -> None:
        async def close() -> None:
            if self._socket is not None:
                await self._socket.close()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


def create_form_values(
    name: str | None,
    *,
    image: str = "pytorch",
    cpu: str = "2",
    memory: str = "8Gi",
    gpus: str = "0",
    volume_size: str = "20Gi",
) -> dict[str, Any]:
    """The ``state.values`` Slack sends when the environment form is submitted (without the
    name input when ``name`` is None, as in the shrink form)."""

    def typed(field: str, value: str) -> dict[str, Any]:
        return {field: {field: {"type": "plain_text_input", "value": value}}}

    return {
        **(typed("name", name) if name is not None else {}),
        "image": {"image": {"type": "static_select", "selected_option": {"value": image}}},
        "gpus": {"gpus": {"type": "number_input", "value": gpus}},
        **typed("cpu", cpu),
        **typed("memory", memory),
        "dedicated_cores": {"dedicated_cores": {"type": "checkboxes", "selected_options": []}},
        **typed("volume_size", volume_size),
    }
