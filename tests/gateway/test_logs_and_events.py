"""An environment's log (its tail, and followed as a stream) and the cluster's Events about it,
read by the gateway from kubesim with the real client, for its owner and admins only.

The test plays the k8s_worker: it creates each environment's Deployment in kubesim with the
environment's labels under a name the gateway cannot guess, so the gateway can only find the
pods by their labels, as it must.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from kubernetes import client, config

from akros_gateway.app import create_app
from akros_gateway.settings import GatewaySettings
from akros_kubesim.testing import RunningKubesim, run_kubesim
from akros_policy.naming import environment_labels
from tests.gateway.conftest import Api, bearer
from tests.gateway.helpers import create_body

NAMESPACE = "akros-envs"
CLUSTER = {
    "nodes": [
        {"name": "node-a", "cpu": 8, "memory": "32Gi"},
        {"name": "node-b", "cpu": 8, "memory": "32Gi"},
    ],
    # Durations are real-cluster seconds at a time factor of 0.01: the crash comes 3 s in.
    "images": [
        {"pattern": "slowcrash", "crash": {"exitCode": 4, "message": "OOM", "afterSeconds": 300}}
    ],
}


def kubesim_of(
    cluster: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningKubesim]:
    """kubesim with ``cluster`` and the environments' namespace, for a module's tests."""
    path = Path(tmp_path_factory.mktemp("cluster")) / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster))
    with run_kubesim(path, pod_start_seconds=0.05) as running:
        api = config.new_client_from_config(config_file=str(running.kubeconfig))
        try:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        finally:
            api.close()
        yield running


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKubesim]:
    yield from kubesim_of(CLUSTER, tmp_path_factory)


@pytest.fixture
def settings(make_settings: Any, kube: RunningKubesim) -> GatewaySettings:
    """The gateway of tests/gateway/conftest.py, reading this module's kubesim."""
    settings: GatewaySettings = make_settings(kubeconfig=kube.kubeconfig)
    return settings


@pytest.fixture(scope="module")
def core(kube: RunningKubesim) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


def run_workload(
    kube: RunningKubesim, owner: str, name: str, image: str, gpus: int = 0, cpu: str = "1"
) -> str:
    """What the worker would create: a Deployment of one pod with the environment's labels."""
    labels = environment_labels(owner, name)
    requests: dict[str, Any] = {"cpu": cpu, "memory": "1Gi"}
    if gpus:
        requests["nvidia.com/gpu"] = str(gpus)
    workload = f"w{uuid.uuid4().hex[:8]}"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "workspace",
                            "image": image,
                            "resources": {"requests": requests, "limits": requests},
                        }
                    ]
                },
            },
        },
    }
    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    try:
        client.AppsV1Api(api).create_namespaced_deployment(NAMESPACE, deployment)
    finally:
        api.close()
    return workload


def accepted_environment(api: Api, headers: dict[str, str], name: str, **fields: object) -> None:
    answer = api.client.post("/v1/environments", json=create_body(name, **fields), headers=headers)
    assert answer.status_code == 202, answer.text


def _wait_for_pod(core: client.CoreV1Api, owner: str, name: str, phase: str) -> None:
    selector = f"akros.io/owner={owner},akros.io/env={name}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        if pods and pods[0].status.phase == phase:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {phase} pod for {owner}/{name}")


def _running(
    api: Api, kube: RunningKubesim, core: client.CoreV1Api, owner: str, name: str, image: str
) -> None:
    """An environment of ``owner`` (accepted by the gateway) whose pod is running."""
    accepted_environment(api, getattr(api, owner), name)
    run_workload(kube, owner, name, image)
    _wait_for_pod(core, owner, name, "Running")


def _wait_for_event(api: Api, headers: dict[str, str], path: str, reason: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = api.client.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        if any(e["reason"] == reason for e in answer.json()["events"]):
            return answer.json()
        time.sleep(0.1)
    raise AssertionError(f"no {reason} event at {path}")


def test_the_owner_reads_the_last_lines_of_their_environments_log(
    api: Api, kube: RunningKubesim, core: client.CoreV1Api
) -> None:
    _running(api, kube, core, "alice", "tail", "busybox:1.36")

    last = api.client.get("/v1/environments/tail/logs?tail=1", headers=api.alice)
    assert last.status_code == 200, last.text
    assert last.headers["content-type"].startswith("text/plain")
    assert last.text.endswith("kubesim: container workspace (busybox:1.36) started\n")
    assert len(last.text.splitlines()) == 1
    whole = api.client.get("/v1/environments/tail/logs", headers=api.alice).text
    assert "kubesim: pulling image busybox:1.36" in whole


def test_a_followed_log_streams_new_lines_until_the_program_ends(
    api: Api, kube: RunningKubesim, core: client.CoreV1Api
) -> None:
    _running(api, kube, core, "alice", "follow", "registry.example/slowcrash:1")

    started = time.monotonic()
    with api.client.stream(
        "GET", "/v1/environments/follow/logs?follow=true&tail=1", headers=api.alice
    ) as stream:
        assert stream.status_code == 200
        lines = list(stream.iter_lines())
    # The stream stayed open until the crash, written as it happened, and then ended.
    assert time.monotonic() - started > 1.0
    assert "container workspace (registry.example/slowcrash:1) started" in lines[0]
    assert lines[-1].endswith("kubesim: container workspace exited with code 4: OOM")
    assert len(lines) == 2


def test_events_say_in_words_why_a_gpu_environment_is_pending(
    api: Api, kube: RunningKubesim
) -> None:
    accepted_environment(api, api.alice, "gpu", gpus=1)
    run_workload(kube, "alice", "gpu", "pytorch:2", gpus=1)

    path = "/v1/environments/gpu/events"
    document = _wait_for_event(api, api.alice, path, "FailedScheduling")
    assert document["status"] == "pending"
    assert document["why_pending"] == "waiting for a GPU: no node has one free"
    failed = next(e for e in document["events"] if e["reason"] == "FailedScheduling")
    assert failed["message"] == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    assert failed["words"] == "waiting for a GPU: no node has one free"
    assert failed["warning"] is True
    assert failed["object"].startswith("Pod/")

    # Not placed, so nothing ran and there is no log: the answer says where to look.
    logs = api.client.get("/v1/environments/gpu/logs", headers=api.alice)
    assert logs.status_code == 409, logs.text
    assert "see its events" in logs.json()["detail"]


def test_events_of_a_running_environment_tell_its_start_and_no_pending_reason(
    api: Api, kube: RunningKubesim, core: client.CoreV1Api
) -> None:
    _running(api, kube, core, "bob", "up", "busybox:1.36")
    document = _wait_for_event(api, api.bob, "/v1/environments/up/events", "Started")
    words = [e["words"] for e in document["events"]]
    assert words[0].startswith("placed on node node-")
    assert "its program started" in words
    assert document["status"] == "pending"  # the worker (absent here) would mark it ready
    assert document["why_pending"] == "its program started; it is not answering yet"


def test_researchers_see_only_their_own_environments_logs_and_events_admins_see_all(
    api: Api, kube: RunningKubesim, core: client.CoreV1Api
) -> None:
    _running(api, kube, core, "alice", "mine", "busybox:1.36")
    for path in ("/v1/environments/mine/logs", "/v1/environments/mine/events"):
        refused = api.client.get(f"{path}?user=alice", headers=api.bob)
        assert refused.status_code == 403, refused.text
        # Without `user`, bob asks about his own, which does not exist.
        assert api.client.get(path, headers=api.bob).status_code == 404
        assert api.client.get(f"{path}?user=alice", headers=api.admin).status_code == 200
        assert api.client.get(path, headers={}).status_code == 401


def test_an_unknown_environment_has_no_logs_or_events(api: Api) -> None:
    for path in ("/v1/environments/nosuch/logs", "/v1/environments/nosuch/events"):
        answer = api.client.get(path, headers=api.alice)
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"


def test_a_tail_beyond_the_limit_is_refused_with_the_field(api: Api) -> None:
    answer = api.client.get("/v1/environments/any/logs?tail=10001", headers=api.alice)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "query.tail"


def test_without_any_cluster_configuration_logs_and_events_are_unavailable(
    make_settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No AKROS_KUBECONFIG, no service account, no ~/.kube/config: the rest of the API serves.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings: GatewaySettings = make_settings()
    with TestClient(create_app(settings)) as gateway:
        assert settings.bootstrap_admin_token_file is not None
        admin = bearer(settings.bootstrap_admin_token_file.read_text().strip())
        created = gateway.post("/v1/environments", json=create_body("lab"), headers=admin)
        assert created.status_code == 202, created.text
        for path in ("/v1/environments/lab/logs", "/v1/environments/lab/events"):
            answer = gateway.get(path, headers=admin)
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "unavailable"
