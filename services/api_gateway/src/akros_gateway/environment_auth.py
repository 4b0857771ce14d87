"""Who may open an environment's URL, and the signed tickets a browser signs in with: pure
decisions, no I/O (the Redis parts, a ticket's single use and the secret, are in
``routers.environment_auth``).

The ingress controller asks the gateway about every request to an environment's host
(ingress-nginx's ``auth-url``): 2xx lets it through, 401 means no or bad credentials, 403 that
the caller is somebody else. Credentials are the platform's bearer token, or a session cookie
of that host. A browser gets the cookie by opening a sign-in URL on the environment's host,
minted by ``POST /v1/environments/{name}/open``: it carries a ticket valid for a minute and
for one use, which the auth endpoint exchanges for the session cookie (ingress-nginx passes
the auth answer's Set-Cookie on to the browser).

Tickets and sessions are HMAC-SHA256-signed JSON (the standard library's ``hmac``, compared
in constant time). A library such as itsdangerous would give the same in more code to learn;
what we need is one payload shape, an expiry we check ourselves, and a host and a kind inside
the signed part, so a session of one host never opens another and a sign-in ticket is never
taken for a session.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import parse_qs, urlsplit

from akros_msgs import Actor, Role, Source
from akros_policy import may_act_on
from akros_policy.naming import split_environment_host

SESSION_COOKIE = "akros_session"
TICKET_PARAMETER = "akros_ticket"
USER_HEADER = "X-Akros-User"
"""The auth answer's header naming who was let in; the Ingress passes it to the environment
(auth-response-headers), replacing whatever the client sent under that name."""


class Credential(StrEnum):
    """What a signed value is for: a sign-in ticket is exchanged once for a session; only a
    session opens the environment on later requests."""

    TICKET = "ticket"
    SESSION = "session"


@dataclass(frozen=True)
class Signed:
    """What a ticket or a session says, once its signature and expiry are checked."""

    kind: Credential
    user: str
    role: Role
    host: str
    expires_at: int
    """Seconds since the epoch."""
    nonce: str
    """A ticket's single-use key (a session's is unused but keeps the shape one)."""


def sign(signed: Signed, secret: bytes) -> str:
    payload = json.dumps(
        {
            "k": signed.kind.value,
            "u": signed.user,
            "r": signed.role.value,
            "h": signed.host,
            "e": signed.expires_at,
            "n": signed.nonce,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    body = _b64(payload)
    return f"{body}.{_b64(_mac(body, secret))}"


def verify(value: str, secret: bytes, kind: Credential, host: str, now: datetime) -> Signed | None:
    """What ``value`` says if it is a ``kind`` signed with ``secret`` for ``host`` and not yet
    expired at ``now``; None for anything else (forged, altered, expired, another host's,
    the other kind, not ours at all)."""
    body, dot, mac = value.partition(".")
    if not dot:
        return None
    try:
        if not hmac.compare_digest(_unb64(mac), _mac(body, secret)):
            return None
        fields = json.loads(_unb64(body))
        signed = Signed(
            kind=Credential(fields["k"]),
            user=str(fields["u"]),
            role=Role(fields["r"]),
            host=str(fields["h"]),
            expires_at=int(fields["e"]),
            nonce=str(fields["n"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if signed.kind is not kind or signed.host != host.lower():
        return None
    if now.timestamp() >= signed.expires_at:
        return None
    return signed


def new_ticket(actor: Actor, host: str, now: datetime, ttl_s: float) -> Signed:
    """A one-time sign-in ticket for ``actor`` on ``host``, valid for ``ttl_s``."""
    return Signed(
        kind=Credential.TICKET,
        user=actor.user_id,
        role=actor.role,
        host=host.lower(),
        expires_at=int(now.timestamp() + ttl_s),
        nonce=secrets.token_urlsafe(16),
    )


def session_for(ticket: Signed, now: datetime, ttl_s: float) -> Signed:
    """The session a browser gets for a ticket: the same person and host, a longer life."""
    return Signed(
        kind=Credential.SESSION,
        user=ticket.user,
        role=ticket.role,
        host=ticket.host,
        expires_at=int(now.timestamp() + ttl_s),
        nonce=ticket.nonce,
    )


def sign_in_url(environment_url: str, ticket: str) -> str:
    """The environment's own URL with the ticket: opening it signs the browser in."""
    return f"{environment_url.rstrip('/')}/?{TICKET_PARAMETER}={ticket}"


def session_cookie(session: str, ttl_s: float) -> str:
    """The Set-Cookie value of a session: no Domain, so it is the environment's host's alone
    (a sibling environment never receives it); Secure (every Ingress serves TLS); HttpOnly
    (the notebook's scripts cannot read it); Lax, so a link from elsewhere still opens."""
    return (
        f"{SESSION_COOKIE}={session}; Max-Age={int(ttl_s)}; Path=/; Secure; HttpOnly; SameSite=Lax"
    )


@dataclass(frozen=True)
class Target:
    """The request the ingress controller asks about, from its X-Original-URL."""

    host: str
    ticket: str | None


def target_of(original_url: str | None) -> Target | None:
    """The host and any sign-in ticket of the original request (ingress-nginx sends
    ``X-Original-URL: $scheme://$http_host$request_uri``), or None without a usable URL."""
    if not original_url:
        return None
    try:
        parts = urlsplit(original_url)
    except ValueError:
        return None
    if not parts.netloc:
        return None
    tickets = parse_qs(parts.query).get(TICKET_PARAMETER)
    return Target(host=parts.netloc.lower(), ticket=tickets[-1] if tickets else None)


class Verdict(StrEnum):
    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"


def may_open(host: str, domain: str, who: Actor | None) -> Verdict:
    """Whether ``who`` (None: no valid credentials) may open the environment at ``host``:
    its owner and admins may; a host that is no environment's opens for nobody."""
    if who is None:
        return Verdict.UNAUTHENTICATED
    environment = split_environment_host(host, domain)
    if environment is None:
        return Verdict.FORBIDDEN
    owner, _ = environment
    return Verdict.ALLOW if may_act_on(who, owner) else Verdict.FORBIDDEN


def actor_of(signed: Signed) -> Actor:
    return Actor(user_id=signed.user, source=Source.HTTP, role=signed.role)


def _mac(body: str, secret: bytes) -> bytes:
    return hmac.new(secret, body.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
