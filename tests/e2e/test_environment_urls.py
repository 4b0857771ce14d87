"""An environment's URL opens only for its owner and admins, end to end: the worker writes the
environment's Ingress, a real nginx is configured from that Ingress the way ingress-nginx
configures its auth annotations (auth_request to the gateway's auth-url with the headers its
nginx.tmpl sets, the auth answer's Set-Cookie and auth-response-headers passed on, 401 sent
to auth-signin), in front of a small HTTP server standing in for the environment's Service,
with the real gateway, worker, kubesim and Redis behind it.

What this nginx does not do that ingress-nginx does: TLS (the Ingress's tls entry is the
controller's certificate, not the check's) and URL-escaping the sign-in's ``rd`` (that
needs the set-misc module Debian's nginx lacks). Every request goes to 127.0.0.1 with the
environment's host in the Host header."""

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from kubernetes import client

from akros_cli.main import run
from akros_devtools import wait_for
from akros_devtools.processes import free_port
from tests.e2e.conftest import NAMESPACE, Running, running_platform

ROOT = Path(__file__).resolve().parents[2]
AUTH = "nginx.ingress.kubernetes.io/"


def _nginx_binary() -> Path:
    """The project's own nginx, unpacked by scripts/ensure-tools.sh (AKROS_NGINX)."""
    given = os.environ.get("AKROS_NGINX")
    if given:
        return Path(given)
    paths = ROOT / ".akros" / "tools" / "paths"
    if not paths.exists() or "NGINX=" not in paths.read_text():
        subprocess.run([str(ROOT / "scripts" / "ensure-tools.sh")], check=True)
    for line in paths.read_text().splitlines():
        if line.startswith("NGINX="):
            return Path(line.removeprefix("NGINX="))
    raise AssertionError("scripts/ensure-tools.sh wrote no NGINX= line")


class _Environment(BaseHTTPRequestHandler):
    """The environment's server: answers every request with the headers it was sent."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer  # noqa: N815 -- http.server's handler names
    do_POST = _answer  # noqa: N815 -- http.server's handler names

    def log_message(self, format: str, *args: Any) -> None:
        return


def ingress_nginx_config(ingress: dict[str, Any], port: int, backend: str, state: Path) -> str:
    """nginx.conf for one Ingress, with the auth parts of ingress-nginx's nginx.tmpl: an
    internal auth location that proxies the client's headers (not its body) to auth-url
    with X-Original-URL, X-Original-Method and the rest; ``auth_request`` in the host's
    location, the auth answer's Set-Cookie added to the response (``always`` with
    auth-always-set-cookie), each auth-response-header set on the proxied request from the
    auth answer, and a 401 redirected to auth-signin with ``rd``."""
    annotations = ingress["metadata"]["annotations"]
    [rule] = ingress["spec"]["rules"]
    auth_url = annotations[f"{AUTH}auth-url"]
    always = " always" if annotations.get(f"{AUTH}auth-always-set-cookie") == "true" else ""
    response_headers = [
        h.strip() for h in annotations.get(f"{AUTH}auth-response-headers", "").split(",")
    ]
    passed = "\n".join(
        f"            auth_request_set $authHeader{i} $upstream_http_"
        f"{h.lower().replace('-', '_')};\n"
        f"            proxy_set_header '{h}' $authHeader{i};"
        for i, h in enumerate(h for h in response_headers if h)
    )
    temp = state / "nginx-temp"
    return f"""
daemon off;
master_process off;
pid {state}/nginx.pid;
error_log {state}/nginx-error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {state}/nginx-access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        server_name {rule["host"]};

        location = /_external-auth {{
            internal;
            proxy_pass_request_body     off;
            proxy_set_header            Content-Length          "";
            proxy_set_header            Host                    {urlsplit(auth_url).netloc};
            proxy_set_header            X-Original-URL          $scheme://$http_host$request_uri;
            proxy_set_header            X-Original-Method       $request_method;
            proxy_set_header            X-Sent-From             "nginx-ingress-controller";
            proxy_set_header            X-Real-IP               $remote_addr;
            proxy_set_header            X-Forwarded-For         $remote_addr;
            proxy_set_header            X-Auth-Request-Redirect $request_uri;
            proxy_http_version          1.1;
            proxy_pass_request_headers  on;
            proxy_pass {auth_url};
        }}

        location @sign_in {{
            internal;
            add_header Set-Cookie $auth_cookie;
            return 302 {annotations[f"{AUTH}auth-signin"]}?rd=$scheme://$http_host$request_uri;
        }}

        location / {{
            auth_request        /_external-auth;
            auth_request_set    $auth_cookie $upstream_http_set_cookie;
            add_header          Set-Cookie $auth_cookie{always};
{passed}
            error_page 401 = @sign_in;
            proxy_set_header Host $http_host;
            proxy_pass http://{backend};
        }}
    }}
}}
"""


@dataclass
class Front:
    """nginx in front of alice's environment, and the platform behind it."""

    running: Running
    url: str
    host: str
    nginx: str

    def get(self, path_and_query: str = "/", **headers: str) -> httpx2.Response:
        return self.send("GET", path_and_query, **headers)

    def send(self, method: str, path_and_query: str, **headers: str) -> httpx2.Response:
        with httpx2.Client(base_url=self.nginx, timeout=10, follow_redirects=False) as http:
            return http.request(method, path_and_query, headers={"Host": self.host, **headers})


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    state = tmp_path_factory.mktemp("urls")
    gateway_port = free_port()
    # What deploy/ sets to the gateway's Service: here, the gateway on 127.0.0.1.
    gateway = f"http://127.0.0.1:{gateway_port}"
    platforms = running_platform(
        state,
        {
            "AKROS_ENVIRONMENT_AUTH_URL": f"{gateway}/v1/auth/environment",
            "AKROS_ENVIRONMENT_SIGN_IN_URL": f"{gateway}/v1/auth/sign-in",
        },
        services=("k8s-worker", "api-gateway"),
        gateway_port=gateway_port,
    )
    running = next(platforms)
    backend = ThreadingHTTPServer(("127.0.0.1", 0), _Environment)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    nginx: subprocess.Popen[bytes] | None = None
    try:
        alice = running.token_for("alice")
        body = {"name": "lab", "image": "quant-cpu", "cpu": "1", "memory": "1Gi"}
        created = running.http.post("/v1/environments", json=body, headers=alice)
        assert created.status_code == 202, created.text
        assert running.settle(created.json()["request_id"], alice)["status"] == "applied"
        url = running.http.get("/v1/environments/lab", headers=alice).json()["url"]

        kube = running.kube
        ingress = kube.sanitize_for_serialization(
            client.NetworkingV1Api(kube).read_namespaced_ingress("alice-lab-5", NAMESPACE)
        )
        port = free_port()
        (state / "nginx-temp").mkdir()
        conf = state / "nginx.conf"
        backend_address = f"127.0.0.1:{backend.server_address[1]}"
        conf.write_text(ingress_nginx_config(ingress, port, backend_address, state))
        nginx = subprocess.Popen(
            [str(_nginx_binary()), "-p", str(state), "-e", str(state / "nginx-error.log"),
             "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        front = Front(running, url, urlsplit(url).netloc, f"http://127.0.0.1:{port}")
        wait_for(lambda: _answers(front), until=bool, timeout_s=10, what="nginx to answer")
        yield front
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        backend.shutdown()
        platforms.close()  # stops the platform


def _answers(front: Front) -> bool:
    try:
        front.get("/")
    except httpx2.TransportError:
        return False
    return True


def _seen(answer: httpx2.Response) -> dict[str, str]:
    """The headers the environment's server was sent, lower-cased."""
    assert answer.status_code == 200, answer.text
    return {k.lower(): v for k, v in answer.json()["headers"].items()}


def _cookie(answer: httpx2.Response) -> str:
    cookie = SimpleCookie()
    cookie.load(answer.headers["set-cookie"])
    return f"akros_session={cookie['akros_session'].value}"


def test_the_workers_ingress_carries_the_auth_annotations_and_tls(front: Front) -> None:
    ingress = client.NetworkingV1Api(front.running.kube).read_namespaced_ingress(
        "alice-lab-5", NAMESPACE
    )
    assert ingress.metadata.annotations[f"{AUTH}auth-url"].endswith(
        f"/v1/auth/environment?host={front.host}"
    )
    assert [tls.hosts for tls in ingress.spec.tls] == [[front.host]]


def test_anonymous_is_sent_to_sign_in_and_reaches_nothing(front: Front) -> None:
    answer = front.get("/lab/tree")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(f"{front.running.platform.gateway_url}/v1/auth/sign-in?rd=")
    assert location.endswith(f"http://{front.host}/lab/tree")
    page = httpx2.get(location, timeout=10)
    assert "akros env open lab" in page.text
    forged = front.get("/", Cookie="akros_session=made.up")
    assert forged.status_code == 302


def test_the_owner_opens_with_a_token_that_never_reaches_the_environment(front: Front) -> None:
    alice = front.running.token_for("alice")
    seen = _seen(front.get("/lab", **alice, **{"X-Akros-User": "admin"}))
    assert seen["x-akros-user"] == "alice"  # the gateway's word, not the client's
    assert "authorization" not in seen
    assert front.send("POST", "/api/kernels", **alice).status_code == 200


def test_another_researcher_is_forbidden_and_an_admin_opens(front: Front) -> None:
    bob = front.running.token_for("bob")
    assert front.get("/", **bob).status_code == 403
    assert front.send("POST", "/api/kernels", **bob).status_code == 403
    admin = {"Authorization": f"Bearer {front.running.platform.admin_token()}"}
    assert _seen(front.get("/", **admin))["x-akros-user"] == "admin"


def test_the_owner_signs_in_once_and_the_cookie_keeps_them_in(front: Front) -> None:
    alice = front.running.token_for("alice")
    opened = front.running.http.post("/v1/environments/lab/open", headers=alice)
    assert opened.status_code == 200, opened.text
    sign_in = urlsplit(opened.json()["url"])
    assert sign_in.netloc == front.host
    first = front.get(f"{sign_in.path}?{sign_in.query}")
    assert _seen(first)["x-akros-user"] == "alice"
    cookie = _cookie(first)
    assert _seen(front.get("/lab/tree", Cookie=cookie))["x-akros-user"] == "alice"
    # The sign-in URL is spent: opened again without the cookie, it signs nobody in.
    assert front.get(f"{sign_in.path}?{sign_in.query}").status_code == 302


def test_bob_gets_no_sign_in_url_for_alices_environment_and_an_admin_does(front: Front) -> None:
    bob = front.running.token_for("bob")
    refused = front.running.http.post("/v1/environments/lab/open?user=alice", headers=bob)
    assert refused.status_code == 403
    admin = {"Authorization": f"Bearer {front.running.platform.admin_token()}"}
    opened = front.running.http.post("/v1/environments/lab/open?user=alice", headers=admin)
    sign_in = urlsplit(opened.json()["url"])
    first = front.get(f"{sign_in.path}?{sign_in.query}")
    assert _seen(first)["x-akros-user"] == "admin"
    assert _seen(front.get("/", Cookie=_cookie(first)))["x-akros-user"] == "admin"


def test_akros_env_open_hands_the_browser_a_url_that_signs_the_owner_in(front: Front) -> None:
    token = front.running.token_for("alice")["Authorization"].removeprefix("Bearer ")
    opened: list[str] = []
    said: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        return True

    common = ["--url", front.running.platform.gateway_url, "--token", token]
    assert run([*common, "env", "open", "lab"], said.append, open_url=browser) == 0
    assert said == ["lab opened in your browser, signed in."]
    [url] = opened
    sign_in = urlsplit(url)
    assert _seen(front.get(f"{sign_in.path}?{sign_in.query}"))["x-akros-user"] == "alice"

    # No browser: the URL is printed instead, and still works once.
    said.clear()
    assert run([*common, "env", "open", "lab"], said.append, open_url=lambda _: False) == 0
    [line] = said
    printed = urlsplit(line.rsplit(" ", 1)[-1])
    assert _seen(front.get(f"{printed.path}?{printed.query}"))["x-akros-user"] == "alice"


def test_akros_env_open_of_someone_elses_environment_is_refused(front: Front) -> None:
    token = front.running.token_for("bob")["Authorization"].removeprefix("Bearer ")
    common = ["--url", front.running.platform.gateway_url, "--token", token]
    opened: list[str] = []

    def browser(url: str) -> bool:
        opened.append(url)
        return True

    assert run([*common, "env", "open", "lab", "--user", "alice"], print, browser) == 1
    assert opened == []


def test_a_request_routed_to_alices_environment_cannot_name_another_host(front: Front) -> None:
    """nginx picks the server by the request line's host when it is absolute
    (``GET https://alice's-host/``), while X-Original-URL is built from the Host header:
    bob could route to alice's environment naming his own host. Here nginx has only
    alice's server, so any Host header reaches it, as such a request would. The check
    goes by the host the Ingress's own auth-url names, not the client's."""
    bob = front.running.token_for("bob")
    bobs_host = front.host.replace("-alice-", "-bob-")
    with httpx2.Client(base_url=front.nginx, timeout=10) as http:
        answer = http.get("/", headers={"Host": bobs_host, **bob})
    assert answer.status_code == 403
