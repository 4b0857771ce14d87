"""`akros-slack`: the Slack app beside its event consumers, in Socket Mode or HTTP mode.

Resources (Redis, the Web API client, the bolt app) are created in the service's lifespan
(``SlackService.open``), never at import.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

from aiohttp import web
from aiohttp.typedefs import Handler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from akros_bus import Bus, get_logger
from akros_bus.runner import Background, run_service
from akros_intake import Intake
from akros_intake.cluster_reads import connect_reader
from akros_msgs import CommandResult, Groups, Notification
from akros_msgs.streams import NOTIFICATIONS, RESULTS
from akros_policy import load_catalog, load_quotas
from akros_readmodel import ReadModel
from akros_slack import listeners
from akros_slack.frontdoor import FrontDoor
from akros_slack.identity import Directory, load_users_file
from akros_slack.settings import SlackMode, SlackSettings
from akros_slack.store import SlackStore

_log = get_logger("akros.slack")


def directory_of(settings: SlackSettings) -> Directory:
    """The settings' mapping wins over the file's for a Slack id both name."""
    from_file = load_users_file(settings.slack_users_file) if settings.slack_users_file else {}
    return Directory({**from_file, **settings.slack_users}, settings.slack_admins)


@web.middleware
async def refuse_unreadable_timestamps(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """401 for a request whose signing timestamp is not a number of seconds.

    bolt's signature check converts it with int() and answers a ValueError with 500; an
    unreadable timestamp is an unverifiable request like any other.
    """
    timestamp = request.headers.get("X-Slack-Request-Timestamp")
    if timestamp is not None and not timestamp.isdigit():
        return web.Response(status=401, text="invalid request")
    return await handler(request)


def bolt_app(settings: SlackSettings, client: AsyncWebClient) -> AsyncApp:
    """The bolt app on ``client``; it checks request signatures in HTTP mode only."""
    secret = settings.slack_signing_secret
    return AsyncApp(
        client=client,
        signing_secret=secret.get_secret_value() if secret else None,
        # Socket Mode frames come over the app's own authenticated WebSocket, unsigned.
        request_verification_enabled=settings.slack_mode is SlackMode.HTTP,
        logger=logging.getLogger("akros.slack.bolt"),
    )


class SlackService:
    """The Slack app and its consumers, built by ``open`` on a connected bus."""

    def __init__(
        self, settings: SlackSettings, *, bus: Bus, door: FrontDoor, app: AsyncApp
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.door = door
        self.app = app
        listeners.Listeners(door, settings.slack_channels).register(app)
        bus.consume(RESULTS, Groups.SLACK, concurrency=16)(self._on_result)
        bus.consume(NOTIFICATIONS, Groups.SLACK)(self._on_notification)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: SlackSettings) -> AsyncIterator[Self]:
        """The Slack app's lifespan: the Web API client, the connected bus, the front door
        and the bolt app on them; on the way out stop the bus."""
        client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
        bus = Bus(settings)
        reader = await connect_reader(settings)
        await bus.connect()
        try:
            read_model = ReadModel(bus.redis)
            door = FrontDoor(
                intake=Intake(
                    read_model,
                    bus,
                    load_catalog(settings.catalog_file),
                    load_quotas(settings.quota_file),
                    extend_by_s=settings.extend_by_s,
                ),
                read_model=read_model,
                store=SlackStore(bus.redis),
                directory=directory_of(settings),
                client=client,
                keep_hours=settings.keep_hours,
                environment_reader=reader,
            )
            yield cls(settings, bus=bus, door=door, app=bolt_app(settings, client))
        finally:
            await bus.stop()
            if reader is not None:
                await reader.cluster.close()

    async def _on_result(self, event: CommandResult) -> None:
        await self.door.on_result(event)

    async def _on_notification(self, event: Notification) -> None:
        await self.door.on_notification(event)

    async def _serve_http(self) -> None:
        settings = self.settings
        web_app = self.app.web_app(path=settings.slack_path)
        web_app.middlewares.append(refuse_unreadable_timestamps)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.slack_host, settings.slack_port).start()
            _log.info("slack app listening", mode="http", port=settings.slack_port)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _serve_socket(self) -> None:
        token = self.settings.slack_app_token
        if token is None:
            raise RuntimeError("socket mode needs AKROS_SLACK_APP_TOKEN")
        handler = AsyncSocketModeHandler(self.app, token.get_secret_value())
        await handler.connect_async()  # type: ignore[no-untyped-call]  # slack-bolt leaves it unannotated
        _log.info("slack app listening", mode="socket")
        try:
            await asyncio.Event().wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]  # slack-bolt leaves it unannotated

    async def _front_door(self) -> None:
        if self.settings.slack_mode is SlackMode.HTTP:
            await self._serve_http()
        else:
            await self._serve_socket()

    def background(self) -> Background:
        return [self._front_door]


def main() -> None:
    settings = SlackSettings()
    run_service(settings, SlackService.open(settings))


if __name__ == "__main__":
    main()
