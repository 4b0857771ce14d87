"""An environment's URL opens for its owner and admins only: the signed tickets and sessions
(pure), and the gateway's auth endpoint asked exactly as ingress-nginx asks it, on a real
Redis. tests/e2e/test_environment_urls.py puts a real nginx in front."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from akros_gateway.app import create_app
from akros_gateway.environment_auth import (
    Credential,
    Signed,
    Verdict,
    may_open,
    new_ticket,
    session_for,
    sign,
    target_of,
    verify,
)
from akros_gateway.settings import GatewaySettings
from akros_msgs import Actor, Role, Source
from akros_readmodel import EnvironmentStatus, ReadModel
from tests.gateway.conftest import Api, bearer, issue
from tests.gateway.helpers import as_worker, create_body

DOMAIN = "research.akros.local"
ALICE_LAB = f"lab-alice-3.{DOMAIN}"
BOB_LAB = f"lab-bob-3.{DOMAIN}"
SECRET = b"k" * 32
NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def _actor(user: str, role: Role = Role.RESEARCHER) -> Actor:
    return Actor(user_id=user, source=Source.HTTP, role=role)


# --- pure ------------------------------------------------------------------------------


def test_a_signed_ticket_verifies_for_its_host_until_it_expires() -> None:
    ticket = new_ticket(_actor("alice"), ALICE_LAB, NOW, ttl_s=60)
    value = sign(ticket, SECRET)
    assert verify(value, SECRET, Credential.TICKET, ALICE_LAB, NOW) == ticket
    assert verify(value, SECRET, Credential.TICKET, ALICE_LAB.upper(), NOW) == ticket
    assert verify(value, SECRET, Credential.TICKET, ALICE_LAB, NOW + timedelta(seconds=60)) is None


def test_a_ticket_opens_no_other_host_is_no_session_and_needs_our_key() -> None:
    value = sign(new_ticket(_actor("alice"), ALICE_LAB, NOW, ttl_s=60), SECRET)
    assert verify(value, SECRET, Credential.TICKET, BOB_LAB, NOW) is None
    assert verify(value, SECRET, Credential.SESSION, ALICE_LAB, NOW) is None
    assert verify(value, b"x" * 32, Credential.TICKET, ALICE_LAB, NOW) is None


def test_an_altered_or_malformed_value_verifies_to_nothing() -> None:
    ticket = new_ticket(_actor("alice"), ALICE_LAB, NOW, ttl_s=60)
    admin = Signed(**{**ticket.__dict__, "role": Role.ADMIN})
    body, _, mac = sign(ticket, SECRET).partition(".")
    forged_body = sign(admin, SECRET).partition(".")[0]
    for value in (f"{forged_body}.{mac}", f"{body}.{mac[:-2]}", body, "", ".", "a.b", "%%.%%"):
        assert verify(value, SECRET, Credential.TICKET, ALICE_LAB, NOW) is None, value


def test_a_session_keeps_who_and_where_and_lives_longer() -> None:
    ticket = new_ticket(_actor("root", Role.ADMIN), ALICE_LAB, NOW, ttl_s=60)
    session = session_for(ticket, NOW, ttl_s=3600)
    value = sign(session, SECRET)
    later = NOW + timedelta(minutes=59)
    assert verify(value, SECRET, Credential.SESSION, ALICE_LAB, later) == session
    assert (session.user, session.role, session.host) == ("root", Role.ADMIN, ALICE_LAB)


@pytest.mark.parametrize(
    ("host", "who", "verdict"),
    [
        (ALICE_LAB, _actor("alice"), Verdict.ALLOW),
        (ALICE_LAB, _actor("root", Role.ADMIN), Verdict.ALLOW),
        (ALICE_LAB, _actor("bob"), Verdict.FORBIDDEN),
        (ALICE_LAB, None, Verdict.UNAUTHENTICATED),
        # jan's "peter-lab" and jan-peter's "lab": each host is its own owner's alone.
        (f"peter-lab-jan-9.{DOMAIN}", _actor("jan-peter"), Verdict.FORBIDDEN),
        (f"lab-jan-peter-3.{DOMAIN}", _actor("jan"), Verdict.FORBIDDEN),
        (f"lab-jan-peter-3.{DOMAIN}", _actor("jan-peter"), Verdict.ALLOW),
        (f"akros.{DOMAIN}", _actor("root", Role.ADMIN), Verdict.FORBIDDEN),
        ("lab-alice-3.elsewhere.example", _actor("alice"), Verdict.FORBIDDEN),
    ],
)
def test_only_the_owner_and_admins_may_open_an_environments_host(
    host: str, who: Actor | None, verdict: Verdict
) -> None:
    assert may_open(host, DOMAIN, who) is verdict


def test_the_target_is_the_original_urls_host_and_its_ticket() -> None:
    target = target_of(f"https://{ALICE_LAB.upper()}/lab/tree?x=1&akros_ticket=abc.def")
    assert target is not None
    assert (target.host, target.ticket) == (ALICE_LAB, "abc.def")
    assert target_of("/no/host") is None
    assert target_of("") is None


# --- the endpoint, asked as ingress-nginx asks it ------------------------------------------


def _ingress_nginx_headers(url: str, **client_headers: str) -> dict[str, str]:
    """What ingress-nginx's auth location sends the auth-url (its nginx.tmpl): the client's
    own headers (proxy_pass_request_headers on), Host set to the auth-url's host, the
    original request in X-Original-URL and X-Original-Method, and no body."""
    parts = urlsplit(url)
    return {
        **client_headers,
        "Host": "api-gateway.akros-system.svc.cluster.local",
        "X-Original-URL": url,
        "X-Original-Method": "GET",
        "X-Sent-From": "nginx-ingress-controller",
        "X-Real-IP": "10.0.0.7",
        "X-Forwarded-For": "10.0.0.7",
        "X-Auth-Request-Redirect": parts.path + (f"?{parts.query}" if parts.query else ""),
    }


def _check(api: Api, url: str, **client_headers: str) -> tuple[int, dict[str, str]]:
    # A fresh cookie jar each time: only the Cookie header the test sends is sent.
    api.client.cookies.clear()
    answer = api.client.get(
        "/v1/auth/environment",
        params={"host": urlsplit(url).netloc},  # as the Ingress's auth-url names it
        headers=_ingress_nginx_headers(url, **client_headers),
    )
    return answer.status_code, dict(answer.headers)


def _ready(api: Api, redis_url: str, owner_headers: dict[str, str], owner: str) -> str:
    """The owner's environment "lab", ready as the worker reports it; its URL."""
    api.client.post("/v1/environments", json=create_body(), headers=owner_headers)
    url = f"https://lab-{owner}-3.{DOMAIN}/"

    async def ready(model: ReadModel) -> None:
        view = await model.environment(owner, "lab")
        assert view is not None
        await model.put_environment(
            view.model_copy(update={"status": EnvironmentStatus.READY, "url": url})
        )

    as_worker(redis_url, ready)
    return url


def _session_of(set_cookie: str) -> str:
    cookie = SimpleCookie()
    cookie.load(set_cookie)
    return cookie["akros_session"].value


def test_bearer_tokens_open_the_owners_and_admins_requests_only(api: Api, redis_url: str) -> None:
    url = _ready(api, redis_url, api.alice, "alice")
    assert _check(api, url)[0] == 401
    assert _check(api, url, Authorization="Bearer akros_not-a-token")[0] == 401
    status, headers = _check(api, url + "lab?kernel=1", **api.alice)
    assert (status, headers["x-akros-user"]) == (200, "alice")
    assert _check(api, url, **api.bob)[0] == 403
    status, headers = _check(api, url, **api.admin)
    assert (status, headers["x-akros-user"]) == (200, "admin")


def test_a_sign_in_url_is_exchanged_once_for_a_cookie_of_that_host_alone(
    api: Api, redis_url: str
) -> None:
    url = _ready(api, redis_url, api.alice, "alice")
    opened = api.client.post("/v1/environments/lab/open", headers=api.alice)
    assert opened.status_code == 200, opened.text
    sign_in = opened.json()["url"]
    assert sign_in.startswith(url + "?akros_ticket=")

    status, headers = _check(api, sign_in)
    assert (status, headers["x-akros-user"]) == (200, "alice")
    set_cookie = headers["set-cookie"]
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= {
        part.strip().lower() for part in set_cookie.split(";")
    }
    assert "domain=" not in set_cookie.lower()  # the host's own cookie, no sibling's
    cookie = f"akros_session={_session_of(set_cookie)}"

    assert _check(api, url + "lab", Cookie=cookie)[0] == 200
    # The same sign-in URL again: its ticket is spent, only the cookie it set still opens.
    assert _check(api, sign_in)[0] == 401
    status, headers = _check(api, sign_in, Cookie=cookie)
    assert status == 200
    assert "set-cookie" not in headers
    # alice's cookie is no credential on bob's environment's host.
    _ready(api, redis_url, api.bob, "bob")
    assert _check(api, f"https://{BOB_LAB}/", Cookie=cookie)[0] == 401
    assert _check(api, url, Cookie="akros_session=forged.value")[0] == 401


def test_only_the_owner_and_admins_get_a_sign_in_url_and_it_signs_in_whoever_asked(
    api: Api, redis_url: str
) -> None:
    url = _ready(api, redis_url, api.alice, "alice")
    refused = api.client.post("/v1/environments/lab/open?user=alice", headers=api.bob)
    assert refused.status_code == 403
    assert api.client.post("/v1/environments/lab/open", headers=api.bob).status_code == 404

    opened = api.client.post("/v1/environments/lab/open?user=alice", headers=api.admin)
    assert opened.status_code == 200, opened.text
    status, headers = _check(api, opened.json()["url"])
    assert (status, headers["x-akros-user"]) == (200, "admin")
    assert _check(api, url, Cookie=f"akros_session={_session_of(headers['set-cookie'])}")[0] == 200


def test_an_environment_that_is_not_ready_does_not_open(api: Api) -> None:
    api.client.post("/v1/environments", json=create_body(), headers=api.alice)
    answer = api.client.post("/v1/environments/lab/open", headers=api.alice)
    assert answer.status_code == 409
    assert "pending" in answer.json()["detail"]


def test_a_host_that_is_no_environments_opens_for_nobody(api: Api) -> None:
    assert _check(api, f"https://akros.{DOMAIN}/v1/me", **api.admin)[0] == 403
    assert _check(api, "https://lab-alice-3.elsewhere.example/", **api.alice)[0] == 403


def test_a_request_naming_another_host_than_its_ingresses_is_refused(
    api: Api, redis_url: str
) -> None:
    url = _ready(api, redis_url, api.alice, "alice")
    _ready(api, redis_url, api.bob, "bob")
    api.client.cookies.clear()
    # Routed to alice's Ingress (its auth-url names her host), X-Original-URL naming bob's.
    answer = api.client.get(
        "/v1/auth/environment",
        params={"host": urlsplit(url).netloc},
        headers=_ingress_nginx_headers(f"https://{BOB_LAB}/", **api.bob),
    )
    assert answer.status_code == 403


def test_a_revoked_token_no_longer_opens(api: Api, redis_url: str) -> None:
    url = _ready(api, redis_url, api.alice, "alice")
    second_token = bearer(issue(api.client, api.admin, "alice"))
    assert _check(api, url, **second_token)[0] == 200
    prefix = second_token["Authorization"].removeprefix("Bearer ")[:14]
    revoked = api.client.request("DELETE", f"/v1/tokens/{prefix}", headers=api.admin)
    assert revoked.status_code == 200, revoked.text
    assert _check(api, url, **second_token)[0] == 401


def test_the_sign_in_page_says_how_to_open_the_environment(api: Api) -> None:
    answer = api.client.get("/v1/auth/sign-in", params={"rd": f"https://{ALICE_LAB}/lab"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "akros env open lab" in answer.text
    assert "of alice" in answer.text
    # The names come from the URL the browser asked for: shown as text, never as markup.
    crafted = f"https://x<b>y-alice-5.{DOMAIN}/"
    escaped = api.client.get("/v1/auth/sign-in", params={"rd": crafted})
    assert "x&lt;b&gt;y" in escaped.text
    assert "<b>" not in escaped.text


def test_replicas_without_a_configured_key_share_one_through_redis(
    make_settings: Callable[..., GatewaySettings], redis_url: str
) -> None:
    first, second = make_settings(), make_settings()
    with TestClient(create_app(first)) as one, TestClient(create_app(second)) as other:
        assert first.bootstrap_admin_token_file is not None
        admin = bearer(first.bootstrap_admin_token_file.read_text().strip())
        api = Api(one, admin, bearer(issue(one, admin, "alice")), {}, {})
        url = _ready(api, redis_url, api.alice, "alice")
        sign_in = one.post("/v1/environments/lab/open", headers=api.alice).json()["url"]
        on_other = Api(other, admin, api.alice, {}, {})
        status, headers = _check(on_other, sign_in)
        assert status == 200
        cookie = f"akros_session={_session_of(headers['set-cookie'])}"
        assert _check(api, url, Cookie=cookie)[0] == 200


def test_a_configured_key_signs_and_a_different_one_refuses(
    make_settings: Callable[..., GatewaySettings], redis_url: str
) -> None:
    ours = make_settings(sign_in_secret="a" * 40)
    theirs = make_settings(sign_in_secret="b" * 40)
    with TestClient(create_app(ours)) as one, TestClient(create_app(theirs)) as other:
        assert ours.bootstrap_admin_token_file is not None
        admin = bearer(ours.bootstrap_admin_token_file.read_text().strip())
        api = Api(one, admin, bearer(issue(one, admin, "alice")), {}, {})
        _ready(api, redis_url, api.alice, "alice")
        sign_in = one.post("/v1/environments/lab/open", headers=api.alice).json()["url"]
        assert _check(Api(other, admin, api.alice, {}, {}), sign_in)[0] == 401
        assert _check(api, sign_in)[0] == 200
