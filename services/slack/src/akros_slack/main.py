"""`akros-slack`: the Slack app beside its event consumers, in Socket Mode or HTTP mode.

Resources (Redis, the Web API client, the bolt app) are created at start, never at import.
"""

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from akros_bus import Bus, configure_logging, get_logger
from akros_bus.runner import serve
from akros_intake import Intake
from akros_msgs import CommandResult, Groups, UnderusedEnvironment
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


class SlackService:
    def __init__(self, settings: SlackSettings) -> None:
        self.settings = settings
        self.bus = Bus(settings)
        self._door: FrontDoor | None = None
        self.bus.consume(RESULTS, Groups.SLACK, concurrency=16)(self._on_result)
        self.bus.consume(NOTIFICATIONS, Groups.SLACK)(self._on_notification)

    @property
    def door(self) -> FrontDoor:
        if self._door is None:
            raise RuntimeError("the Slack app has not started")
        return self._door

    async def _on_result(self, event: CommandResult) -> None:
        await self.door.on_result(event)

    async def _on_notification(self, event: UnderusedEnvironment) -> None:
        await self.door.on_underused(event)

    def _bolt_app(self, client: AsyncWebClient) -> AsyncApp:
        secret = self.settings.slack_signing_secret
        return AsyncApp(
            client=client,
            signing_secret=secret.get_secret_value() if secret else None,
            # Socket Mode frames come over the app's own authenticated WebSocket, unsigned.
            request_verification_enabled=self.settings.slack_mode is SlackMode.HTTP,
            logger=logging.getLogger("akros.slack.bolt"),
        )

    async def _serve_http(self, app: AsyncApp) -> None:
        settings = self.settings
        web_app = app.web_app(path=settings.slack_path)
        web_app.middlewares.append(refuse_unreadable_timestamps)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.slack_host, settings.slack_port).start()
            _log.info("slack app listening", mode="http", port=settings.slack_port)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    async def _serve_socket(self, app: AsyncApp) -> None:
        token = self.settings.slack_app_token
        if token is None:
            raise RuntimeError("socket mode needs AKROS_SLACK_APP_TOKEN")
        handler = AsyncSocketModeHandler(app, token.get_secret_value())
        await handler.connect_async()  # type: ignore[no-untyped-call]  # slack-bolt leaves it unannotated
        _log.info("slack app listening", mode="socket")
        try:
            await asyncio.Event().wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]  # slack-bolt leaves it unannotated

    async def run(self) -> None:
        settings = self.settings
        client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
        await self.bus.connect()
        read_model = ReadModel(self.bus.redis)
        self._door = FrontDoor(
            intake=Intake(
                read_model,
                self.bus,
                load_catalog(settings.catalog_file),
                load_quotas(settings.quota_file),
            ),
            read_model=read_model,
            store=SlackStore(self.bus.redis),
            directory=directory_of(settings),
            client=client,
            keep_hours=settings.keep_hours,
        )
        app = self._bolt_app(client)
        listeners.Listeners(self._door, settings.slack_channels).register(app)

        async def front_door() -> None:
            if settings.slack_mode is SlackMode.HTTP:
                await self._serve_http(app)
            else:
                await self._serve_socket(app)

        await serve(self.bus, background=[front_door])


def main() -> None:
    settings = SlackSettings()
    configure_logging(settings.service_name, settings.log_level)
    asyncio.run(SlackService(settings).run())


if __name__ == "__main__":
    main()
