"""A researcher's environments end to end: HTTP -> gateway -> Redis -> worker -> kubesim."""

from collections.abc import Mapping

import pytest
import redis
from kubernetes import client

from akros_devtools import wait_until
from tests.e2e.conftest import Running

NAMESPACE = "akros-envs"
pytestmark = pytest.mark.cluster


def _create(
    running: Running, headers: dict[str, str], body: Mapping[str, object], key: str = ""
) -> str:
    extra = {"Idempotency-Key": key} if key else {}
    answer = running.http.post("/v1/environments", json=body, headers={**headers, **extra})
    assert answer.status_code == 202, answer.text
    assert answer.headers["location"] == f"/v1/requests/{answer.json()['request_id']}"
    request_id: str = answer.json()["request_id"]
    return request_id


def _deployments(running: Running, selector: str) -> list[str]:
    items = (
        client.AppsV1Api(running.kube)
        .list_namespaced_deployment(NAMESPACE, label_selector=selector)
        .items
    )
    return sorted(d.metadata.name for d in items)


def test_a_researcher_creates_an_environment_and_it_becomes_ready(running: Running) -> None:
    alice = running.token_for("alice")
    request_id = _create(
        running, alice, {"name": "exp", "image": "pytorch", "cpu": "2", "memory": "8Gi"}
    )
    assert running.settle(request_id, alice)["status"] == "applied"

    environment = running.http.get("/v1/environments/exp", headers=alice).json()
    assert environment["status"] == "ready"
    assert environment["url"] == "https://exp-alice-3.research.akros.local/"
    listed = running.http.get("/v1/environments", headers=alice).json()
    assert [e["name"] for e in listed["environments"]] == ["exp"]
    assert _deployments(running, "akros.io/owner=alice") == ["alice-exp-5"]


def test_the_same_request_sent_twice_makes_one_environment(running: Running) -> None:
    bob = running.token_for("bob")
    body = {"name": "twice", "image": "pytorch", "cpu": "1", "memory": "2Gi"}
    first = _create(running, bob, body, key="bob-twice-1")
    second = _create(running, bob, body, key="bob-twice-1")
    assert first == second
    assert running.settle(first, bob)["status"] == "applied"
    assert _deployments(running, "akros.io/owner=bob") == ["bob-twice-3"]


def test_delete_keeps_the_volume_and_purge_removes_it(running: Running) -> None:
    carol = running.token_for("carol")
    core = client.CoreV1Api(running.kube)
    for name in ("keep", "drop"):
        request_id = _create(
            running, carol, {"name": name, "image": "pytorch", "cpu": "1", "memory": "1Gi"}
        )
        assert running.settle(request_id, carol)["status"] == "applied"

    kept = running.http.delete("/v1/environments/keep", headers=carol)
    purged = running.http.delete("/v1/environments/drop?purge_volume=true", headers=carol)
    assert (kept.status_code, purged.status_code) == (202, 202)
    assert running.settle(kept.json()["request_id"], carol)["status"] == "applied"
    assert running.settle(purged.json()["request_id"], carol)["status"] == "applied"

    assert running.http.get("/v1/environments/keep", headers=carol).status_code == 404
    volumes = running.http.get("/v1/volumes", headers=carol).json()
    assert [v["name"] for v in volumes["volumes"]] == ["keep"]

    def claims() -> list[str]:
        listed = core.list_namespaced_persistent_volume_claim(
            NAMESPACE, label_selector="akros.io/owner=carol"
        )
        return [c.metadata.name for c in listed.items]

    # As on a real cluster, a purged claim goes once no pod uses it any more (pvc-protection).
    wait_until(
        lambda: claims() == ["carol-keep-5"],
        timeout_s=10,
        what="the purged claim to go once its pod has",
    )


def test_over_quota_is_refused_before_anything_is_published(running: Running) -> None:
    dave = running.token_for("dave")
    answer = running.http.post(
        "/v1/environments",
        json={"name": "greedy", "image": "pytorch", "cpu": "4", "memory": "8Gi", "gpus": 5},
        headers=dave,
    )
    assert answer.status_code == 403
    assert "GPUs would be 5 of your 4" in answer.json()["detail"]
    assert _deployments(running, "akros.io/owner=dave") == []


def test_sixty_four_gpus_fail_with_a_message_saying_why(running: Running) -> None:
    whale = running.token_for("whale")
    request_id = _create(
        running,
        whale,
        {"name": "huge", "image": "pytorch", "cpu": "8", "memory": "64Gi", "gpus": 64},
    )
    outcome = running.settle(request_id, whale)
    assert outcome["status"] == "failed"
    assert outcome["code"] == "unschedulable"
    assert "64 GPUs" in outcome["reason"]
    assert running.http.get("/v1/environments/huge", headers=whale).json()["status"] == "failed"


def test_callers_without_a_valid_token_or_the_right_owner_are_refused(running: Running) -> None:
    erin, frank = running.token_for("erin"), running.token_for("frank")
    assert running.http.get("/v1/environments").status_code == 401
    assert (
        running.http.get("/v1/environments", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    request_id = _create(
        running, erin, {"name": "mine", "image": "pytorch", "cpu": "1", "memory": "1Gi"}
    )
    running.settle(request_id, erin)
    assert running.http.get("/v1/environments/mine?user=erin", headers=frank).status_code == 403
    assert running.http.delete("/v1/environments/mine?user=erin", headers=frank).status_code in {
        403,
        404,
    }
    assert running.http.get(f"/v1/requests/{request_id}", headers=frank).status_code == 403


@pytest.mark.kubesim_only(reason="stalls the API server's writes through kubesim's fault injection")
def test_a_worker_killed_during_a_create_leaves_exactly_one_environment(running: Running) -> None:
    gina = running.token_for("gina")
    platform = running.platform
    stall = {"stall": True}
    _admin(running, "PUT", stall)
    request_id = _create(
        running, gina, {"name": "crash", "image": "pytorch", "cpu": "1", "memory": "1Gi"}
    )
    store = redis.Redis.from_url(platform.redis.url)
    wait_until(
        lambda: bool(store.hexists("akros:worker:starting", "gina/crash")),
        timeout_s=20,
        what="the worker to be applying the create (its writes are stalled)",
    )
    store.close()
    platform.kill("k8s-worker")
    _admin(running, "DELETE", None)
    platform.start_service("k8s-worker")

    assert running.settle(request_id, gina, timeout_s=40)["status"] == "applied"
    assert _deployments(running, "akros.io/owner=gina") == ["gina-crash-4"]
    pods = client.CoreV1Api(running.kube).list_namespaced_pod(
        NAMESPACE, label_selector="akros.io/owner=gina"
    )
    assert len(pods.items) == 1


def _admin(running: Running, method: str, document: object) -> None:
    answer = running.http.request(
        method, running.platform.kubesim_url + "/_kubesim/faults", json=document
    )
    assert answer.status_code < 300, answer.text


def _lifecycle_call(running: Running, headers: dict[str, str], name: str, verb: str) -> str:
    answer = running.http.post(f"/v1/environments/{name}/{verb}", headers=headers)
    assert answer.status_code == 202, answer.text
    request_id: str = answer.json()["request_id"]
    return request_id


def _pods_of(running: Running, owner: str, name: str) -> list[client.V1Pod]:
    selector = f"akros.io/owner={owner},akros.io/env={name}"
    return list(
        client.CoreV1Api(running.kube).list_namespaced_pod(NAMESPACE, label_selector=selector).items
    )


def test_a_stopped_environment_keeps_its_volume_url_and_name_and_starts_again(
    running: Running,
) -> None:
    stella = running.token_for("stella")
    apps, core = client.AppsV1Api(running.kube), client.CoreV1Api(running.kube)
    created = _create(
        running, stella, {"name": "nb", "image": "pytorch", "cpu": "2", "memory": "4Gi"}
    )
    assert running.settle(created, stella)["status"] == "applied"
    ready = running.http.get("/v1/environments/nb", headers=stella).json()
    claim_uid = core.read_namespaced_persistent_volume_claim("stella-nb-6", NAMESPACE).metadata.uid

    stop = _lifecycle_call(running, stella, "nb", "stop")
    assert running.settle(stop, stella)["status"] == "applied"
    stopped = running.http.get("/v1/environments/nb", headers=stella).json()
    assert (stopped["status"], stopped["url"], stopped["node"]) == ("stopped", ready["url"], None)
    assert apps.read_namespaced_deployment("stella-nb-6", NAMESPACE).spec.replicas == 0
    assert _pods_of(running, "stella", "nb") == [], "reported stopped only once its pod is gone"
    assert core.read_namespaced_persistent_volume_claim("stella-nb-6", NAMESPACE).metadata.uid == (
        claim_uid
    )
    holding = running.http.get("/v1/me", headers=stella).json()["holding"]
    assert holding == {"resources": {"cpu": "0", "memory": "0", "gpus": 0}, "environments": 1}
    again = running.http.post("/v1/environments/nb/stop", headers=stella)
    assert again.status_code == 409
    assert "stopped already" in again.text

    start = _lifecycle_call(running, stella, "nb", "start")
    assert running.settle(start, stella)["status"] == "applied"
    started = running.http.get("/v1/environments/nb", headers=stella).json()
    assert (started["status"], started["url"]) == ("ready", ready["url"])
    assert started["created_at"] == ready["created_at"]
    assert apps.read_namespaced_deployment("stella-nb-6", NAMESPACE).spec.replicas == 1
    running_pods = [
        p for p in _pods_of(running, "stella", "nb") if not p.metadata.deletion_timestamp
    ]
    assert [p.metadata.annotations["akros.io/request-id"] for p in running_pods] == [start]
    assert core.read_namespaced_persistent_volume_claim("stella-nb-6", NAMESPACE).metadata.uid == (
        claim_uid
    ), "the same volume, not a new one"
    running_again = running.http.post("/v1/environments/nb/start", headers=stella)
    assert running_again.status_code == 409
    assert "running already" in running_again.text


def test_a_stopped_environment_holds_no_quota_until_it_starts_again(running: Running) -> None:
    """The default quota is 32 CPUs: two 20-CPU environments fit only while one is stopped."""
    quinn = running.token_for("quinn")
    body = {"image": "pytorch", "cpu": "20", "memory": "8Gi"}
    assert running.settle(_create(running, quinn, {"name": "big", **body}), quinn)["status"] == (
        "applied"
    )
    assert (
        running.settle(_lifecycle_call(running, quinn, "big", "stop"), quinn)["status"] == "applied"
    )
    other = _create(running, quinn, {"name": "other", **body})
    assert running.settle(other, quinn)["status"] == "applied"

    refused = running.http.post("/v1/environments/big/start", headers=quinn)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "quota_exceeded"
    assert running.http.get("/v1/environments/big", headers=quinn).json()["status"] == "stopped"

    deleted = running.http.delete("/v1/environments/other", headers=quinn)
    assert running.settle(deleted.json()["request_id"], quinn)["status"] == "applied"
    assert running.settle(_lifecycle_call(running, quinn, "big", "start"), quinn)["status"] == (
        "applied"
    )


def _container_requests(running: Running, deployment: str) -> dict[str, str]:
    live = client.AppsV1Api(running.kube).read_namespaced_deployment(deployment, NAMESPACE)
    requests: dict[str, str] = live.spec.template.spec.containers[0].resources.requests
    return requests


def test_a_resize_restarts_a_running_environment_with_the_new_resources_and_its_volume(
    running: Running,
) -> None:
    vera = running.token_for("vera")
    core = client.CoreV1Api(running.kube)
    body = {"name": "grow", "image": "pytorch", "cpu": "2", "memory": "4Gi"}
    assert running.settle(_create(running, vera, body), vera)["status"] == "applied"
    claim_uid = core.read_namespaced_persistent_volume_claim("vera-grow-4", NAMESPACE).metadata.uid

    answer = running.http.patch(
        "/v1/environments/grow", json={"cpu": "4", "memory": "8Gi"}, headers=vera
    )
    assert answer.status_code == 202, answer.text
    resize = answer.json()["request_id"]
    assert running.settle(resize, vera)["status"] == "applied"
    shown = running.http.get("/v1/environments/grow", headers=vera).json()
    assert (shown["status"], shown["resources"]["cpu"], shown["resources"]["memory"]) == (
        "ready",
        "4",
        "8Gi",
    )
    assert _container_requests(running, "vera-grow-4") == {"cpu": "4", "memory": "8Gi"}
    pods = [p for p in _pods_of(running, "vera", "grow") if not p.metadata.deletion_timestamp]
    assert [p.metadata.annotations["akros.io/request-id"] for p in pods] == [resize]
    assert core.read_namespaced_persistent_volume_claim("vera-grow-4", NAMESPACE).metadata.uid == (
        claim_uid
    )

    # Its volume is stored on the CPU node it ran on (local-path): no GPU there, ever.
    answer = running.http.patch("/v1/environments/grow", json={"gpus": 1}, headers=vera)
    assert answer.status_code == 202, answer.text
    refused = running.settle(answer.json()["request_id"], vera)
    assert (refused["status"], refused["code"]) == ("failed", "unschedulable"), refused
    assert "kept work volume is stored on" in refused["reason"]
    unchanged = running.http.get("/v1/environments/grow", headers=vera).json()
    assert (unchanged["status"], unchanged["resources"]) == (
        "ready",
        {"cpu": "4", "memory": "8Gi", "gpus": 0},
    )

    over_quota = running.http.patch("/v1/environments/grow", json={"cpu": "64"}, headers=vera)
    assert over_quota.status_code == 403, over_quota.text
    uneven = running.http.patch(
        "/v1/environments/grow", json={"cpu": "1.5", "dedicated_cores": True}, headers=vera
    )
    assert uneven.status_code == 422, uneven.text
    assert "whole number of CPUs" in uneven.text


def test_a_stopped_environment_keeps_a_resize_for_its_next_start(running: Running) -> None:
    wim = running.token_for("wim")
    body = {"name": "later", "image": "pytorch", "cpu": "2", "memory": "4Gi"}
    assert running.settle(_create(running, wim, body), wim)["status"] == "applied"
    assert running.settle(_lifecycle_call(running, wim, "later", "stop"), wim)["status"] == (
        "applied"
    )

    answer = running.http.patch("/v1/environments/later", json={"cpu": "1"}, headers=wim)
    assert answer.status_code == 202, answer.text
    assert running.settle(answer.json()["request_id"], wim)["status"] == "applied"
    shown = running.http.get("/v1/environments/later", headers=wim).json()
    assert (shown["status"], shown["resources"]["cpu"]) == ("stopped", "1")
    apps = client.AppsV1Api(running.kube)
    assert apps.read_namespaced_deployment("wim-later-3", NAMESPACE).spec.replicas == 0
    assert _container_requests(running, "wim-later-3") == {"cpu": "1", "memory": "4Gi"}

    assert running.settle(_lifecycle_call(running, wim, "later", "start"), wim)["status"] == (
        "applied"
    )
    assert running.http.get("/v1/environments/later", headers=wim).json()["status"] == "ready"
