"""events.k8s.io/v1 Events are the core/v1 Events through another schema: one store, two
versions, converted field by field as the API server does."""

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from akros_kubesim.event_views import to_core, to_events_v1
from tests.kubesim.conftest import KubectlRunner
from tests.kubesim.test_client_api import eventually

CORE_EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "web.1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"},
    "reason": "Scheduled",
    "message": "Successfully assigned default/web to gpu-server-1",
    "source": {"component": "default-scheduler"},
    "firstTimestamp": "2026-12-06T10:00:00Z",
    "lastTimestamp": "2026-12-06T10:00:00Z",
    "count": 1,
    "type": "Normal",
    "eventTime": None,
    "reportingComponent": "default-scheduler",
    "reportingInstance": "",
}


def test_a_core_event_presents_its_fields_under_the_events_v1_names() -> None:
    event = to_events_v1(CORE_EVENT)
    assert event["apiVersion"] == "events.k8s.io/v1"
    assert event["regarding"] == CORE_EVENT["involvedObject"]
    assert event["note"] == CORE_EVENT["message"]
    assert event["deprecatedSource"] == {"component": "default-scheduler"}
    assert event["deprecatedCount"] == 1
    assert event["reportingController"] == "default-scheduler"
    assert event["eventTime"] is None
    assert "message" not in event
    assert "involvedObject" not in event


def test_converting_to_events_v1_and_back_gives_the_core_event_again() -> None:
    assert to_core(to_events_v1(CORE_EVENT)) == CORE_EVENT


def test_the_schedulers_events_are_listed_and_watched_through_events_k8s_io(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    events = client.EventsV1Api(api_client)
    pod = {"metadata": {"name": "web"},
           "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}  # fmt: skip
    core.create_namespaced_pod(namespace, pod)

    def scheduled() -> list[str]:
        # Read as JSON: the kubelet's legacy events come with eventTime null, as on a real
        # cluster, and the typed client refuses those (kubernetes-client/python#1826).
        answer = events.list_namespaced_event(namespace, _preload_content=False)
        listed = json.loads(answer.data)["items"]
        return [
            e["metadata"]["name"]
            for e in listed
            if e["reason"] == "Scheduled" and e["regarding"]["name"] == "web"
        ]

    (name,) = eventually(scheduled)
    event = events.read_namespaced_event(name, namespace)
    assert event.note.startswith(f"Successfully assigned {namespace}/web to ")
    # kube-scheduler writes through events.k8s.io/v1: an eventTime and an action, no legacy
    # timestamps (the kubelet, a legacy reporter, writes those instead).
    assert event.reporting_controller == "default-scheduler"
    assert event.action == "Binding"
    assert event.event_time is not None
    assert event.deprecated_last_timestamp is None
    assert core.read_namespaced_event(name, namespace).metadata.uid == event.metadata.uid


def test_an_event_created_through_events_k8s_io_is_read_through_core_v1(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    events = client.EventsV1Api(api_client)
    body = {
        "metadata": {"name": "custom.1"},
        "eventTime": "2026-12-06T10:00:00.000000Z",
        "reportingController": "akros.io/worker",
        "reportingInstance": "worker-0",
        "action": "Reconcile",
        "reason": "Started",
        "note": "the environment started",
        "type": "Normal",
        "regarding": {"kind": "Pod", "name": "lab", "namespace": namespace},
    }
    events.create_namespaced_event(namespace, body)
    legacy = core.read_namespaced_event("custom.1", namespace)
    assert legacy.message == "the environment started"
    assert legacy.involved_object.name == "lab"
    assert legacy.reporting_component == "akros.io/worker"
    events.patch_namespaced_event("custom.1", namespace, {"note": "patched"})
    assert core.read_namespaced_event("custom.1", namespace).message == "patched"
    events.delete_namespaced_event("custom.1", namespace)
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_event("custom.1", namespace)
    assert gone.value.status == 404


def test_legacy_reporters_events_have_timestamps_and_a_count_but_no_event_time(
    core: client.CoreV1Api, namespace: str
) -> None:
    pod = {"metadata": {"name": "legacy"},
           "spec": {"containers": [{"name": "main", "image": "nginx:1"}]}}  # fmt: skip
    core.create_namespaced_pod(namespace, pod)

    def started() -> list[client.CoreV1Event]:
        listed = core.list_namespaced_event(namespace).items
        return [e for e in listed if e.reason == "Started" and e.involved_object.name == "legacy"]

    (event,) = eventually(started)
    assert event.source.component == "kubelet"
    assert event.count == 1
    assert event.last_timestamp is not None
    assert event.event_time is None


def test_kubectl_gets_events_of_both_versions(
    kubectl: KubectlRunner, core: client.CoreV1Api, namespace: str
) -> None:
    pod = {"metadata": {"name": "seen"},
           "spec": {"containers": [{"name": "seen", "image": "nginx:1"}]}}  # fmt: skip
    core.create_namespaced_pod(namespace, pod)
    eventually(lambda: "Scheduled" in kubectl("get", "events", "-n", namespace).stdout)
    output = kubectl("get", "events.v1.events.k8s.io", "-n", namespace).stdout
    assert "Scheduled" in output
    assert "pod/seen" in output
