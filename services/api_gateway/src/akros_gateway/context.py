"""What every request handler works with, created once in the app's lifespan, and the
``Annotated`` dependencies that hand it and the authenticated caller to handlers."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis

from akros_bus import Bus
from akros_gateway.access import is_admin
from akros_gateway.errors import UnauthenticatedError
from akros_gateway.metrics import GatewayMetrics
from akros_gateway.tokens import TokenStore
from akros_intake import ForbiddenError, Intake
from akros_intake.cluster_reads import EnvironmentReader
from akros_msgs import Actor, Source, new_request_id
from akros_readmodel import ReadModel


@dataclass(frozen=True)
class Gateway:
    redis: Redis
    bus: Bus
    read_model: ReadModel
    intake: Intake
    tokens: TokenStore
    metrics: GatewayMetrics
    host_paths_enabled: bool = False
    environment_reader: EnvironmentReader | None = None
    """Read-only access to the environments' pods, logs and events; None without a cluster
    configuration, when those routes answer 503."""


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(_gateway)]

# auto_error=False: a missing or malformed header gets our own 401 body, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="A token from `akros-gateway token issue`")


async def _actor(
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Actor:
    if credentials is None:
        raise UnauthenticatedError("Missing bearer token: send 'Authorization: Bearer <token>'.")
    record = await gateway.tokens.lookup(credentials.credentials)
    if record is None:
        raise UnauthenticatedError("Invalid or revoked token.")
    return Actor(user_id=record.user, source=Source.HTTP, role=record.role)


ActorDep = Annotated[Actor, Depends(_actor)]


async def _admin(actor: ActorDep) -> Actor:
    if not is_admin(actor):
        raise ForbiddenError("Only admins may do this.")
    return actor


AdminDep = Annotated[Actor, Depends(_admin)]


async def _request_id(
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Your id for this request: a retry with the same key is answered "
            "with the original request and changes nothing",
        ),
    ] = None,
) -> str:
    return idempotency_key or new_request_id()


RequestIdDep = Annotated[str, Depends(_request_id)]
