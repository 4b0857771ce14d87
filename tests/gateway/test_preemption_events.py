"""A preempted environment's events, through the gateway from kubesim: the Event about its
pod that is gone since, in words, and why its new pod is pending."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from akros_gateway.settings import GatewaySettings
from akros_kubesim.testing import RunningKubesim
from tests.gateway.conftest import Api
from tests.gateway.test_logs_and_events import (
    NAMESPACE,
    accepted_environment,
    kubesim_of,
    run_workload,
)

# One node, so that what is preempted and where the new pod waits are certain.
CLUSTER = {"nodes": [{"name": "solo", "cpu": 8, "memory": "32Gi"}]}


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKubesim]:
    yield from kubesim_of(CLUSTER, tmp_path_factory)


@pytest.fixture
def settings(make_settings: Any, kube: RunningKubesim) -> GatewaySettings:
    settings: GatewaySettings = make_settings(kubeconfig=kube.kubeconfig)
    return settings


def _events(api: Api, until: Any) -> Any:
    deadline = time.monotonic() + 20
    document: Any = None
    while time.monotonic() < deadline:
        document = api.client.get("/v1/environments/lab/events", headers=api.alice).json()
        if until(document):
            return document
        time.sleep(0.1)
    raise AssertionError(document)


def test_a_preempted_environment_says_so_and_why_its_new_pod_waits(
    api: Api, kube: RunningKubesim
) -> None:
    accepted_environment(api, api.alice, "lab")
    run_workload(kube, "alice", "lab", "busybox:1.36", cpu="6")
    _events(api, lambda d: any(e["reason"] == "Started" for e in d["events"]))

    kubeconfig = config.new_client_from_config(config_file=str(kube.kubeconfig))
    try:
        client.SchedulingV1Api(kubeconfig).create_priority_class(
            {"metadata": {"name": "urgent"}, "value": 1000}
        )
        urgent = {
            "metadata": {"name": "urgent"},
            "spec": {
                "priorityClassName": "urgent",
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox:1.36",
                        "resources": {"requests": {"cpu": "6", "memory": "1Gi"}},
                    }
                ],
            },
        }
        client.CoreV1Api(kubeconfig).create_namespaced_pod(NAMESPACE, urgent)
    finally:
        kubeconfig.close()

    document = _events(
        api,
        lambda d: (
            any(e["reason"] == "Preempted" for e in d["events"])
            and any(e["reason"] == "FailedScheduling" for e in d["events"])
        ),
    )
    preempted = next(e for e in document["events"] if e["reason"] == "Preempted")
    assert preempted["words"] == (
        "stopped on node solo to make room for higher-priority work; it is placed again"
    )
    # The Event is about the pod that was preempted, which is gone; a new one replaced it.
    failed = [e for e in document["events"] if e["reason"] == "FailedScheduling"]
    assert preempted["object"] != failed[-1]["object"]
    assert failed[-1]["words"] == "waiting for CPU: no node has enough free"
    assert document["why_pending"] == "waiting for CPU: no node has enough free"
