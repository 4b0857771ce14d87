"""Security against the running platform: who may call what, ownership, racing quotas, no
privileged pods through any spec, and no secrets in the logs."""

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import httpx2
import pytest
import redis
from kubernetes import client

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_msgs.envelope import Actor, Role, Source
from akros_msgs.services import DeployService, ServiceSpec, Volume, VolumeSource
from akros_msgs.streams import RESULTS, SERVICE_COMMANDS
from akros_policy.naming import environment_host
from tests.cluster import runs_on_kubesim
from tests.e2e.conftest import Running

pytestmark = pytest.mark.cluster

Route = tuple[str, str]
# The sign-in page is where ingress-nginx sends a browser without credentials: it says how to
# sign in and reveals nothing.
PUBLIC: set[Route] = {("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/v1/auth/sign-in")}
ADMIN_ONLY: set[Route] = {
    ("GET", "/v1/cluster"),
    ("GET", "/v1/usage"),
    ("GET", "/v1/services"),
    ("POST", "/v1/services"),
    ("GET", "/v1/services/{name}"),
    ("PUT", "/v1/services/{name}"),
    ("DELETE", "/v1/services/{name}"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("DELETE", "/v1/tokens/{prefix}"),
}
ANY_RESEARCHER: set[Route] = {
    ("GET", "/v1/catalog"),
    ("GET", "/v1/me"),
    ("GET", "/v1/environments"),
    ("POST", "/v1/environments"),
    ("GET", "/v1/environments/{name}"),
    ("DELETE", "/v1/environments/{name}"),
    ("PATCH", "/v1/environments/{name}"),
    ("POST", "/v1/environments/{name}/stop"),
    ("POST", "/v1/environments/{name}/start"),
    ("POST", "/v1/environments/{name}/extend"),
    ("POST", "/v1/environments/{name}/open"),
    # The ingress controller's check of a request to an environment's host: asked here about
    # the researcher's own (nonexistent) environment's host, as ingress-nginx asks it.
    ("GET", "/v1/auth/environment"),
    ("GET", "/v1/environments/{name}/usage"),
    ("GET", "/v1/environments/{name}/logs"),
    ("GET", "/v1/environments/{name}/events"),
    ("GET", "/v1/notifications"),
    ("GET", "/v1/requests/{request_id}"),
    ("GET", "/v1/services/schema"),
    ("GET", "/v1/volumes"),
    ("DELETE", "/v1/volumes/{name}"),
}
PATH_VALUES = {"{name}": "nosuch", "{request_id}": "0" * 32, "{prefix}": "akros_nosuch"}
MATRIX_RESEARCHER = "matrix-researcher"
DOMAIN = "research.akros.local"
MATRIX_HOST = environment_host(MATRIX_RESEARCHER, "nosuch", DOMAIN)
ROUTE_HEADERS: dict[Route, dict[str, str]] = {
    ("GET", "/v1/auth/environment"): {
        "X-Original-URL": f"https://{MATRIX_HOST}/",
        "X-Original-Method": "GET",
    }
}
ROUTE_QUERIES: dict[Route, str] = {("GET", "/v1/auth/environment"): f"?host={MATRIX_HOST}"}
SMALL = {"image": "pytorch", "cpu": "1", "memory": "1Gi"}


def _routes(running: Running) -> set[Route]:
    document = running.http.get("/openapi.json").json()
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def _call(running: Running, route: Route, headers: dict[str, str]) -> int:
    method, path = route
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    headers = {**ROUTE_HEADERS.get(route, {}), **headers}
    path += ROUTE_QUERIES.get(route, "")
    return running.http.request(method, path, json=body, headers=headers).status_code


def test_every_route_of_the_gateway_is_classified_for_authorization(running: Running) -> None:
    # A new endpoint fails here until someone decides who may call it.
    assert _routes(running) == PUBLIC | ADMIN_ONLY | ANY_RESEARCHER


def test_anonymous_callers_reach_only_the_public_routes(running: Running) -> None:
    answers = {route: _call(running, route, {}) for route in _routes(running)}
    assert {r for r, status in answers.items() if status != 401} == PUBLIC, answers
    bad_token = {"Authorization": "Bearer akros_not-a-token"}
    answers = {route: _call(running, route, bad_token) for route in _routes(running)}
    assert {r for r, status in answers.items() if status != 401} == PUBLIC, answers


def test_researchers_are_forbidden_exactly_the_admin_routes(running: Running) -> None:
    researcher = running.token_for(MATRIX_RESEARCHER)
    answers = {route: _call(running, route, researcher) for route in _routes(running)}
    assert {r for r, status in answers.items() if status == 403} == ADMIN_ONLY, answers
    assert not {r for r, status in answers.items() if status == 401 or status >= 500}, answers


def test_admins_are_refused_nowhere(running: Running) -> None:
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    answers = {route: _call(running, route, admin) for route in _routes(running)}
    assert not {r for r, status in answers.items() if status in {401, 403} or status >= 500}, (
        answers
    )


def test_a_researcher_can_neither_read_nor_touch_another_researchers_environment(
    running: Running,
) -> None:
    owner, intruder = running.token_for("owner"), running.token_for("intruder")
    answer = running.http.post("/v1/environments", json={"name": "private", **SMALL}, headers=owner)
    assert answer.status_code == 202, answer.text
    request_id = answer.json()["request_id"]
    assert running.settle(request_id, owner)["status"] == "applied"

    forbidden = [
        running.http.get("/v1/environments/private?user=owner", headers=intruder),
        running.http.get("/v1/environments/private/logs?user=owner", headers=intruder),
        running.http.get("/v1/environments/private/events?user=owner", headers=intruder),
        running.http.delete("/v1/environments/private?user=owner", headers=intruder),
        running.http.get("/v1/environments?user=owner", headers=intruder),
        running.http.get(f"/v1/requests/{request_id}", headers=intruder),
        running.http.get("/v1/volumes?user=owner", headers=intruder),
        running.http.delete("/v1/volumes/private?user=owner", headers=intruder),
        running.http.patch(
            "/v1/environments/private?user=owner", json={"cpu": "2"}, headers=intruder
        ),
        *(
            running.http.post(f"/v1/environments/private/{verb}?user=owner", headers=intruder)
            for verb in ("stop", "start", "extend", "open")
        ),
        # Nor open its URL: the ingress controller's check says no to the intruder's token.
        running.http.get(
            "/v1/auth/environment",
            params={"host": environment_host("owner", "private", DOMAIN)},
            headers={
                **intruder,
                "X-Original-URL": f"https://{environment_host('owner', 'private', DOMAIN)}/",
            },
        ),
    ]
    assert [a.status_code for a in forbidden] == [403] * len(forbidden)
    # Without ?user= a name means the caller's own: the intruder has none of that name.
    assert running.http.get("/v1/environments/private", headers=intruder).status_code == 404
    assert running.http.delete("/v1/environments/private", headers=intruder).status_code == 404
    assert running.http.get("/v1/environments", headers=intruder).json()["environments"] == []

    mine = running.http.get("/v1/environments/private", headers=owner).json()
    assert mine["status"] == "ready"
    assert _deployment_names(running, "akros.io/owner=owner") == ["owner-private-5"]


def test_twenty_racing_creates_against_a_quota_of_two_accept_exactly_two(
    running: Running,
) -> None:
    racer = running.token_for("racer")

    def create(index: int) -> httpx2.Response:
        body = {"name": f"race-{index}", **SMALL}
        with httpx2.Client(base_url=running.platform.gateway_url, timeout=30) as http:
            return http.post("/v1/environments", json=body, headers=racer)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(create, range(20)))
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code != 202]
    assert len(accepted) == 2, [a.text for a in answers]
    assert {(a.status_code, a.json()["code"]) for a in refused} == {(403, "quota_exceeded")}
    for answer in accepted:
        assert running.settle(answer.json()["request_id"], racer)["status"] == "applied"
    assert len(_deployment_names(running, "akros.io/owner=racer")) == 2
    assert len(running.http.get("/v1/environments", headers=racer).json()["environments"]) == 2


def test_no_environment_body_asks_for_a_privileged_or_host_level_pod(running: Running) -> None:
    researcher = running.token_for("escalator")
    attempts: list[dict[str, Any]] = [
        {"privileged": True},
        {"hostNetwork": True},
        {"host_network": True},
        {"hostPath": "/"},
        {"volumes": [{"hostPath": {"path": "/"}}]},
        {"securityContext": {"privileged": True}},
        {"image": "docker.io/library/busybox"},
    ]
    for extra in attempts:
        body = {"name": "escape", **SMALL, **extra}
        answer = running.http.post("/v1/environments", json=body, headers=researcher)
        assert answer.status_code == 422, (extra, answer.text)
    assert _deployment_names(running, "akros.io/owner=escalator") == []


def test_host_paths_are_refused_to_researchers_and_to_admins_where_disabled(
    running: Running,
) -> None:
    researcher = running.token_for("mounter")
    admin = {"Authorization": f"Bearer {running.platform.admin_token()}"}
    spec = {
        "name": "mounter",
        "image": "registry.local/mounter:1",
        "volumes": [{"name": "root", "mount_path": "/host", "source": "host_path", "ref": "/"}],
    }
    assert running.http.post("/v1/services", json=spec, headers=researcher).status_code == 403
    refused = running.http.post("/v1/services", json=spec, headers=admin)
    assert refused.status_code == 422, refused.text
    assert "host paths are disabled" in refused.text
    extras: list[dict[str, Any]] = [
        {"hostNetwork": True},
        {"privileged": True},
        {"security_context": {}},
    ]
    for extra in extras:
        answer = running.http.post(
            "/v1/services", json={**spec, "volumes": [], **extra}, headers=admin
        )
        assert answer.status_code == 422, (extra, answer.text)


def test_a_host_path_command_written_straight_to_the_stream_is_refused_by_the_worker(
    running: Running,
) -> None:
    # Skipping the gateway: the worker applies the same rule on its own.
    command = DeployService(
        request_id="raw-host-path",
        actor=Actor(user_id="admin", source=Source.HTTP, role=Role.ADMIN),
        spec=ServiceSpec(
            name="sneaky",
            image="registry.local/sneaky:1",
            volumes=[
                Volume(name="root", mount_path="/host", source=VolumeSource.HOST_PATH, ref="/")
            ],
        ),
    )
    store = redis.Redis.from_url(running.platform.redis.url)
    try:
        store.xadd(SERVICE_COMMANDS.name, {DATA_FIELD: command.model_dump_json()})
        outcome: dict[str, Any] = {}

        def answered() -> bool:
            raw = cast(list[tuple[bytes, dict[bytes, bytes]]], store.xrange(RESULTS.name))
            for _, fields in raw:
                message = json.loads(fields[DATA_FIELD])
                if message["request_id"] == "raw-host-path":
                    outcome.update(message)
                    return True
            return False

        wait_until(answered, timeout_s=20, what="the worker's answer to the raw command")
    finally:
        store.close()
    assert outcome["type"] == "command_failed"
    assert "host path" in outcome["reason"]


def test_nothing_in_the_cluster_runs_privileged_or_on_the_host(running: Running) -> None:
    # Runs after the tests above, so it sees every object they got created.
    pods = client.CoreV1Api(running.kube).list_pod_for_all_namespaces().items
    deployments = client.AppsV1Api(running.kube).list_deployment_for_all_namespaces().items
    specs = [p.spec for p in pods] + [d.spec.template.spec for d in deployments]
    assert specs
    for spec in specs:
        assert not spec.host_network
        assert not spec.host_pid
        assert not spec.host_ipc
        assert not any(v.host_path for v in spec.volumes or [])
        for container in spec.containers:
            context = container.security_context
            assert context is None or not context.privileged


def test_tokens_never_reach_any_log_of_the_run(running: Running) -> None:
    admin_token = running.platform.admin_token()
    researcher = running.token_for("logged")
    wrong = "akros_wrongsecretvalue0123456789"
    running.http.get("/v1/me", headers=researcher)
    running.http.get("/v1/me", headers={"Authorization": f"Bearer {wrong}"})
    answer = running.http.post(
        "/v1/environments", json={"name": "logged", **SMALL}, headers=researcher
    )
    running.settle(answer.json()["request_id"], researcher)
    logs = sorted(running.platform.options.state.glob("**/*.log"))
    started = {"api-gateway.log", "k8s-worker.log"} | (
        {"kubesim.log"} if runs_on_kubesim(running.platform) else set()
    )
    assert {p.name for p in logs} >= started
    secrets = [admin_token, researcher["Authorization"].removeprefix("Bearer "), wrong]
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a token is in {path.name}"


def _deployment_names(running: Running, selector: str) -> list[str]:
    items = (
        client.AppsV1Api(running.kube)
        .list_namespaced_deployment("akros-envs", label_selector=selector)
        .items
    )
    return sorted(d.metadata.name for d in items)
