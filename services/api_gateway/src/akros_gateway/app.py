"""The FastAPI application: routers, error handlers, metrics, and the lifespan that creates
the Redis client, the bus and the read model, and loads the catalog and the quotas."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from akros_bus import Bus, get_logger
from akros_bus.collector import Activity, collect_fully_when_quiet
from akros_gateway.body_limit import BodyLimitMiddleware
from akros_gateway.context import Gateway, SignInConfig
from akros_gateway.errors import install_error_handlers
from akros_gateway.metrics import GatewayMetrics, MetricsMiddleware
from akros_gateway.routers import (
    cluster,
    environment_auth,
    environments,
    logs,
    me,
    operations,
    requests,
    services,
    tokens,
    usage,
    volumes,
)
from akros_gateway.settings import GatewaySettings
from akros_gateway.sign_in_store import sign_in_secret
from akros_gateway.tokens import TokenStore
from akros_intake import Intake
from akros_intake.cluster_reads import connect_reader
from akros_policy import load_catalog, load_quotas
from akros_readmodel import ReadModel

TITLE = "Akros API"
VERSION = "1"
DESCRIPTION = (
    "Research environments and in-house services on the team's cluster. Authenticate with "
    "`Authorization: Bearer <token>`. Commands are answered 202 with a request id; follow "
    "them at `/v1/requests/{id}`. Errors are JSON: `detail` for people, `code` for programs."
)

_log = get_logger("akros.gateway")
REDIS_CONNECTION_WAIT_S = 10.0


def create_app(settings: GatewaySettings) -> FastAPI:
    metrics = GatewayMetrics()
    activity = Activity()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Gateway]]:
        catalog, quotas = load_catalog(settings.catalog_file), load_quotas(settings.quota_file)
        # Requests wait for a free connection rather than failing: redis-py's default pool
        # (100, refusing beyond) answered a burst of 1,000 creates with 143 503s.
        redis = Redis.from_pool(
            BlockingConnectionPool.from_url(
                str(settings.redis_url),
                max_connections=settings.redis_max_connections,
                timeout=REDIS_CONNECTION_WAIT_S,
            )
        )
        bus = Bus(settings)
        reader = await connect_reader(settings)
        collector = asyncio.create_task(collect_fully_when_quiet(activity))
        try:
            await bus.connect()
            token_store = TokenStore(redis)
            if settings.bootstrap_admin_token_file is not None:
                path = settings.bootstrap_admin_token_file
                if await token_store.bootstrap_admin(path):
                    _log.info("no admin token existed: wrote a new one", path=str(path))
            read_model = ReadModel(redis)
            secret, configured = await sign_in_secret(redis, settings.sign_in_secret)
            if not configured:
                _log.warning(
                    "AKROS_SIGN_IN_SECRET is not set: environments' sign-ins are signed with a "
                    "key kept in Redis; set it from a Secret where Redis is shared"
                )
            yield {
                "gateway": Gateway(
                    redis=redis,
                    bus=bus,
                    read_model=read_model,
                    intake=Intake(
                        read_model,
                        bus,
                        catalog,
                        quotas,
                        settings.accept_concurrency,
                        extend_by_s=settings.extend_by_s,
                    ),
                    tokens=token_store,
                    metrics=metrics,
                    sign_in=SignInConfig(
                        domain=settings.domain,
                        secret=secret,
                        ticket_ttl_s=settings.sign_in_ticket_ttl_s,
                        session_ttl_s=settings.environment_session_ttl_s,
                    ),
                    host_paths_enabled=settings.allow_host_path,
                    environment_reader=reader,
                )
            }
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
            await bus.stop()
            await redis.aclose()
            if reader is not None:
                await reader.cluster.close()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    # Added last, so outermost: refused bodies are counted too.
    app.add_middleware(MetricsMiddleware, metrics=metrics, activity=activity)
    for router in (
        environments.router,
        environment_auth.router,
        logs.router,
        requests.router,
        volumes.router,
        me.router,
        tokens.router,
        operations.router,
        services.router,
        cluster.router,
        usage.router,
    ):
        app.include_router(router)
    return app
