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
from akros_msgs import Actor, Source, new_request_id, request_id_of_key
from akros_readmodel import ReadModel


@dataclass(frozen=True)
class SignInConfig:
    """What the environment URL check needs: the domain the environments' hosts are under,
    the secret tickets and sessions are signed with, and how long each lives."""

    domain: str
    secret: bytes
    ticket_ttl_s: float
    session_ttl_s: float


@dataclass(frozen=True)
class Gateway:
    redis: Redis
    bus: Bus
    read_model: ReadModel
    intake: Intake
    tokens: TokenStore
    metrics: GatewayMetrics
    sign_in: SignInConfig
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


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
"""The bearer token sent, if any, not yet checked (``token_actor`` checks it)."""


async def _actor(gateway: GatewayDep, credentials: BearerDep) -> Actor:
    if credentials is None:
        raise UnauthenticatedError("Missing bearer token: send 'Authorization: Bearer <token>'.")
    actor = await token_actor(gateway, credentials.credentials)
    if actor is None:
        raise UnauthenticatedError("Invalid or revoked token.")
    return actor


async def token_actor(gateway: Gateway, token: str) -> Actor | None:
    """Who a bearer token belongs to, or None for a token that is not (or no longer) valid:
    the one token check, used by every route and by the environment URL check."""
    record = await gateway.tokens.lookup(token)
    return (
        None if record is None else Actor(user_id=record.user, source=Source.HTTP, role=record.role)
    )


ActorDep = Annotated[Actor, Depends(_actor)]


async def _admin(actor: ActorDep) -> Actor:
    if not is_admin(actor):
        raise ForbiddenError("Only admins may do this.")
    return actor


AdminDep = Annotated[Actor, Depends(_admin)]


async def _request_id(
    actor: ActorDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="Your id for this request: a retry with the same key is answered "
            "with the original request and changes nothing. Keys are yours: another user's "
            "same key is a request of theirs. The request id answered is made from it",
        ),
    ] = None,
) -> str:
    if idempotency_key is None:
        return new_request_id()
    return request_id_of_key(actor.user_id, idempotency_key)


RequestIdDep = Annotated[str, Depends(_request_id)]
