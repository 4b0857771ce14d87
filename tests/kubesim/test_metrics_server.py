"""metrics.k8s.io answers as metrics-server does: from scrapes, so a pod that has just started
is missing until a scrape after its start."""

import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from akros_kubesim.testing import RunningKubesim, run_kubesim
from tests.kubesim.test_client_api import eventually

# 100 s of metrics-server resolution at the tests' time factor of 0.01: one second.
RESOLUTION_ARGS = ("--metrics-resolution-seconds", "100")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningKubesim]:
    with run_kubesim(pod_start_seconds=0.1, extra_args=RESOLUTION_ARGS) as running:
        yield running


def test_a_new_pod_is_missing_from_pod_metrics_until_a_scrape_after_its_start(
    cluster: RunningKubesim,
) -> None:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core, metrics = client.CoreV1Api(api), client.CustomObjectsApi(api)

    def pod_metrics() -> list[str]:
        answer = metrics.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", "default", "pods"
        )
        return [item["metadata"]["name"] for item in answer["items"]]

    try:
        body = {"metadata": {"name": "fresh"},
                "spec": {"containers": [{"name": "main", "image": "python:3.11"}]}}  # fmt: skip
        core.create_namespaced_pod("default", body)
        eventually(lambda: core.read_namespaced_pod("fresh", "default").status.phase == "Running")
        running_at = time.monotonic()
        assert "fresh" not in pod_metrics()
        eventually(lambda: "fresh" in pod_metrics(), timeout=10)
        assert time.monotonic() - running_at >= 0.5
    finally:
        api.close()
