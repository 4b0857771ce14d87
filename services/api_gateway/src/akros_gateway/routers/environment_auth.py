"""An environment's URL opens for its owner and admins only: the check the ingress controller
asks before every request to an environment's host (ingress-nginx ``auth-url``), the page it
sends a browser without credentials to (``auth-signin``), and the sign-in URL a researcher
opens the environment with (``POST /v1/environments/{name}/open``). The decisions are in
``akros_gateway.environment_auth``."""

import html
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse

from akros_gateway.context import ActorDep, BearerDep, Gateway, GatewayDep, token_actor
from akros_gateway.environment_auth import (
    SESSION_COOKIE,
    USER_HEADER,
    Credential,
    Signed,
    Target,
    Verdict,
    actor_of,
    may_open,
    new_ticket,
    session_cookie,
    session_for,
    sign,
    sign_in_url,
    target_of,
    verify,
)
from akros_gateway.errors import ErrorBody, UnauthenticatedError, responses
from akros_gateway.routers.environments import UserFilter, environment_view
from akros_gateway.schemas import SignInUrl
from akros_gateway.sign_in_store import use_ticket
from akros_intake import ConflictError, ForbiddenError, InvalidError, NotFoundError
from akros_msgs import Actor
from akros_policy.naming import split_environment_host
from akros_readmodel import EnvironmentStatus

router = APIRouter(tags=["environment access"])

SIGN_IN_PATH = "/v1/auth/sign-in"


@router.post(
    "/v1/environments/{name}/open",
    response_model=SignInUrl,
    responses=responses(ForbiddenError, NotFoundError, ConflictError, InvalidError),
    summary="A URL that opens an environment signed in",
    description="The environment's URL with a one-time sign-in ticket (valid for "
    "`AKROS_SIGN_IN_TICKET_TTL_S`, 60 s): the first request to it sets a session cookie for "
    "the environment's host alone, so the browser stays signed in there. Only a ready "
    "environment opens (409 otherwise). Its owner and admins may ask (admins name the owner "
    "with `user`); the URL signs in whoever asked.",
)
async def open_environment(
    name: str, actor: ActorDep, gateway: GatewayDep, user: UserFilter = None
) -> SignInUrl:
    view = await environment_view(gateway, actor, user or actor.user_id, name)
    if view.status is not EnvironmentStatus.READY or view.url is None:
        raise ConflictError(f"'{name}' is {view.status.value}: it opens once it is ready.")
    config = gateway.sign_in
    ticket = new_ticket(actor, urlsplit(view.url).netloc, _now(), config.ticket_ttl_s)
    return SignInUrl(
        url=sign_in_url(view.url, sign(ticket, config.secret)),
        expires_at=datetime.fromtimestamp(ticket.expires_at, UTC),
    )


@router.get(
    "/v1/auth/environment",
    status_code=200,
    response_class=Response,
    responses={
        200: {
            "description": "Let the request through; `X-Akros-User` names who asked, and a "
            "sign-in answers with the session cookie in `Set-Cookie`",
            "headers": {USER_HEADER: {"schema": {"type": "string"}}},
            "content": {"text/plain": {"schema": {"type": "string", "maxLength": 0}}},
        },
        401: {"model": ErrorBody, "description": "No valid credentials"},
        403: {"model": ErrorBody, "description": "Not the environment's owner or an admin"},
        422: {"model": ErrorBody, "description": "No X-Original-URL"},
    },
    summary="May this request open an environment's URL? (the ingress controller asks)",
    description="ingress-nginx's `auth-url`: it sends the headers of every request to an "
    "environment's host, the original URL in `X-Original-URL`. Credentials are a bearer "
    "token, the session cookie of that host, or a sign-in ticket in the URL's "
    "`akros_ticket` (from `POST /v1/environments/{name}/open`, used once), which is "
    "answered with the session cookie. The environment is the one `host` names (each "
    "Ingress's auth-url carries its own); an X-Original-URL of another host is refused. "
    "2xx lets the request through; 401 means no valid credentials; 403 that the caller is "
    "neither the owner nor an admin.",
)
async def check_environment_request(
    request: Request,
    gateway: GatewayDep,
    bearer: BearerDep,
    host: Annotated[
        str,
        Query(
            max_length=253,
            description="The environment's host, as its Ingress's auth-url names it (the "
            "worker writes it): the host the request was routed to",
        ),
    ],
    x_original_url: Annotated[
        str,
        Header(
            max_length=8192,
            description="The request being checked: $scheme://$http_host$request_uri",
        ),
    ],
) -> Response:
    target = target_of(x_original_url)
    # X-Original-URL's host is the client's Host header, which need not be the host nginx
    # routed the request by (an absolute-form request line wins): the auth-url's is.
    if target is None or target.host.partition(":")[0] != host.lower():
        raise ForbiddenError("The request names another host than the one it was sent to.")
    config = gateway.sign_in
    cookie: str | None = None
    who = await _ticket_holder(gateway, target)
    if who is not None:
        now = _now()
        ticket_session = session_for(who, now, config.session_ttl_s)
        cookie = session_cookie(sign(ticket_session, config.secret), config.session_ttl_s)
        actor: Actor | None = actor_of(who)
    else:
        actor = await _credentials_holder(gateway, request, bearer, target)
    verdict = may_open(target.host, config.domain, actor)
    if verdict is Verdict.UNAUTHENTICATED:
        raise UnauthenticatedError("Sign in: open the environment with `akros env open NAME`.")
    if verdict is Verdict.FORBIDDEN:
        raise ForbiddenError("This environment opens only for its owner and admins.")
    assert actor is not None  # an ALLOW names who
    response = Response(
        status_code=200, media_type="text/plain", headers={USER_HEADER: actor.user_id}
    )
    if cookie is not None:
        response.headers["Set-Cookie"] = cookie
    return response


@router.get(
    SIGN_IN_PATH,
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}},
        422: {"model": ErrorBody, "description": "An `rd` too long to be a URL we made"},
    },
    summary="Where a browser without credentials is sent (ingress-nginx `auth-signin`)",
    description="A page saying how to open the environment in `rd` signed in.",
)
async def sign_in_page(
    gateway: GatewayDep,
    rd: Annotated[
        str | None, Query(max_length=2048, description="The URL the browser asked for")
    ] = None,
) -> HTMLResponse:
    target = target_of(rd)
    environment = split_environment_host(target.host, gateway.sign_in.domain) if target else None
    if environment is None:
        what, command = "this environment", "akros env open NAME"
    else:
        owner, name = environment
        command = f"akros env open {name}"
        what = f"the environment '{name}' of {owner}"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sign in</title></head>"
        f"<body><h1>Sign in to open {html.escape(what)}</h1>"
        "<p>An environment's URL opens only for its owner and admins. Open it signed in "
        f"with <code>{html.escape(command)}</code> (an admin adds <code>--user OWNER</code>), "
        "which asks the platform for a one-time sign-in URL and opens it in your browser.</p>"
        "</body></html>"
    )
    return HTMLResponse(page)


async def _ticket_holder(gateway: Gateway, target: Target) -> Signed | None:
    """The ticket in the original URL, if it is a valid one for that host used now for the
    first time (a reloaded sign-in URL falls back to the cookie it set)."""
    if target.ticket is None:
        return None
    config = gateway.sign_in
    ticket = verify(target.ticket, config.secret, Credential.TICKET, target.host, _now())
    if ticket is None or not await use_ticket(gateway.redis, ticket.nonce, config.ticket_ttl_s):
        return None
    return ticket


async def _credentials_holder(
    gateway: Gateway, request: Request, bearer: BearerDep, target: Target
) -> Actor | None:
    """Who the request's bearer token or, failing that, its session cookie names."""
    if bearer is not None:
        actor = await token_actor(gateway, bearer.credentials)
        if actor is not None:
            return actor
    session = request.cookies.get(SESSION_COOKIE)
    if session is None:
        return None
    signed = verify(session, gateway.sign_in.secret, Credential.SESSION, target.host, _now())
    return None if signed is None else actor_of(signed)


def _now() -> datetime:
    return datetime.now(UTC)
