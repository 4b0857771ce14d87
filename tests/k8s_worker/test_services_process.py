"""The worker process applies in-house service commands to kubesim: deploy, update (an
unchanged spec restarts nothing), autoscaler on and off, delete, and refusals."""

import json
from typing import Any

from kubernetes import client

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_msgs import Actor, CommandFailed, Role, Source
from akros_msgs.services import (
    DeleteService,
    DeployService,
    ServiceDeleted,
    ServiceDeployed,
    ServiceSpec,
)
from akros_msgs.streams import SERVICE_COMMANDS
from akros_readmodel import ServiceStatus, ServiceView
from tests.k8s_worker.conftest import ALICE, WorkerHarness

ADMIN = Actor(user_id="root", source=Source.HTTP, role=Role.ADMIN)
NAMESPACE = "akros-services"
SPEC: dict[str, Any] = {
    "name": "pricer",
    "image": "registry.local/pricer:3",
    "ports": [{"port": 80, "target_port": 8080}],
    "replicas": 2,
}


def _deploy(harness: WorkerHarness, request_id: str, actor: Actor = ADMIN, **changes: Any) -> Any:
    spec = ServiceSpec.model_validate({**SPEC, **changes})
    harness.send(DeployService(request_id=request_id, actor=actor, spec=spec))
    return harness.wait_for_result(request_id)


def _service_view(harness: WorkerHarness) -> dict[str, Any] | None:
    raw = harness.redis.get("akros:rm:svc:pricer")
    return None if raw is None else dict(json.loads(raw))


def _pods(kube: client.ApiClient) -> list[str]:
    pods = client.CoreV1Api(kube).list_namespaced_pod(
        NAMESPACE, label_selector="akros.io/service=pricer"
    )
    return sorted(p.metadata.name for p in pods.items if not p.metadata.deletion_timestamp)


def _autoscalers(kube: client.ApiClient) -> list[str]:
    listed = client.AutoscalingV2Api(kube).list_namespaced_horizontal_pod_autoscaler(NAMESPACE)
    return [h.metadata.name for h in listed.items]


def _policies(kube: client.ApiClient) -> list[str]:
    listed = client.NetworkingV1Api(kube).list_namespaced_network_policy(NAMESPACE)
    return [p.metadata.name for p in listed.items]


def _record_service_view(harness: WorkerHarness) -> None:
    """The gateway records a pending view before it publishes; the worker updates it."""
    view = ServiceView(
        name="pricer",
        spec=ServiceSpec.model_validate(SPEC),
        status=ServiceStatus.PENDING,
        request_id="gateway",
    )
    harness.redis.set("akros:rm:svc:pricer", view.model_dump_json())
    harness.redis.sadd("akros:rm:svcs", "pricer")


def test_a_deployed_service_runs_its_pods_behind_a_service_and_its_view_counts_them(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    _record_service_view(harness)

    outcome = _deploy(harness, "deploy-1")

    assert isinstance(outcome, ServiceDeployed)
    assert (outcome.replicas, outcome.autoscaled) == (2, False)
    assert harness.request_state("deploy-1") == "applied"
    service = client.CoreV1Api(kube).read_namespaced_service("pricer", NAMESPACE)
    assert [(p.port, p.target_port) for p in service.spec.ports] == [(80, 8080)]
    assert service.metadata.labels["akros.io/kind"] == "service"
    policy = client.NetworkingV1Api(kube).read_namespaced_network_policy("pricer", NAMESPACE)
    [rule] = policy.spec.ingress
    assert [(p.protocol, p.port) for p in rule.ports] == [("TCP", 8080)]

    def ready() -> bool:
        view = _service_view(harness)
        return view is not None and view["ready_replicas"] == 2

    wait_until(ready, timeout_s=15, what="two ready replicas in the view")
    assert len(_pods(kube)) == 2
    assert _service_view(harness)["status"] == "deployed"  # type: ignore[index]


def test_an_unchanged_spec_restarts_nothing_and_a_changed_image_rolls_the_pods(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    apps = client.AppsV1Api(kube)
    _deploy(harness, "first")
    wait_until(lambda: len(_pods(kube)) == 2, timeout_s=15, what="two pods")
    pods = _pods(kube)
    generation = apps.read_namespaced_deployment("pricer", NAMESPACE).metadata.generation

    again = _deploy(harness, "same-again")

    assert isinstance(again, ServiceDeployed)
    deployment = apps.read_namespaced_deployment("pricer", NAMESPACE)
    assert deployment.metadata.generation == generation
    assert _pods(kube) == pods

    _deploy(harness, "new-image", image="registry.local/pricer:4")

    def rolled() -> bool:
        now = _pods(kube)
        return len(now) == 2 and not set(now) & set(pods)

    wait_until(rolled, timeout_s=20, what="the pods replaced by the new image's")
    container = apps.read_namespaced_deployment("pricer", NAMESPACE).spec.template.spec
    assert container.containers[0].image == "registry.local/pricer:4"


def test_autoscaling_adds_an_hpa_and_removing_it_deletes_the_hpa(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    _record_service_view(harness)
    scaling = {"min_replicas": 1, "max_replicas": 5, "cpu_utilisation": 60}

    scaled = _deploy(harness, "with-hpa", autoscaling=scaling)

    assert isinstance(scaled, ServiceDeployed)
    assert scaled.autoscaled
    hpa = client.AutoscalingV2Api(kube).read_namespaced_horizontal_pod_autoscaler(
        "pricer", NAMESPACE
    )
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 5)
    assert hpa.spec.scale_target_ref.name == "pricer"

    def autoscaler_in_view() -> bool:
        view = _service_view(harness)
        return view is not None and view["autoscaler"] is not None

    wait_until(autoscaler_in_view, timeout_s=10, what="the HPA's state in the view")

    _deploy(harness, "without-hpa")

    assert _autoscalers(kube) == []
    deployment = client.AppsV1Api(kube).read_namespaced_deployment("pricer", NAMESPACE)
    assert deployment.spec.replicas == 2


def test_delete_removes_the_deployment_service_autoscaler_and_view(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    _deploy(harness, "deploy", autoscaling={"max_replicas": 3, "memory_utilisation": 80})

    harness.send(DeleteService(request_id="delete", actor=ADMIN, name="pricer"))

    assert isinstance(harness.wait_for_result("delete"), ServiceDeleted)
    apps, core = client.AppsV1Api(kube), client.CoreV1Api(kube)
    assert apps.list_namespaced_deployment(NAMESPACE).items == []
    assert core.list_namespaced_service(NAMESPACE).items == []
    assert _autoscalers(kube) == []
    assert _policies(kube) == []
    assert _service_view(harness) is None


def test_a_spec_that_drops_its_ports_drops_the_policy_that_opened_them(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    _deploy(harness, "with-ports")
    assert _policies(kube) == ["pricer"]

    assert isinstance(_deploy(harness, "without-ports", ports=[]), ServiceDeployed)

    assert _policies(kube) == []


def test_a_researchers_host_path_fails_naming_the_field_and_creates_nothing(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()
    volume = {"name": "logs", "mount_path": "/logs", "source": "host_path", "ref": "/var/log"}

    refused = _deploy(harness, "sneaky", actor=ALICE, volumes=[volume])
    by_admin = _deploy(harness, "disabled", volumes=[volume])
    not_admin = _deploy(harness, "plain", actor=ALICE)

    assert isinstance(refused, CommandFailed)
    assert refused.reason == "spec.volumes.0.source: only admins may mount a host path"
    assert isinstance(by_admin, CommandFailed)
    assert by_admin.reason == "spec.volumes.0.source: host paths are disabled on this platform"
    assert isinstance(not_admin, CommandFailed)
    assert not_admin.code.value == "forbidden"
    assert harness.request_state("sneaky") == "failed"
    assert client.AppsV1Api(kube).list_namespaced_deployment(NAMESPACE).items == []


def _send_raw(harness: WorkerHarness, request_id: str, spec: dict[str, Any]) -> None:
    """A deploy command whose spec the contract refuses, as another publisher might send it."""
    valid = DeployService(request_id=request_id, actor=ADMIN, spec=ServiceSpec.model_validate(SPEC))
    document = json.loads(valid.model_dump_json())
    document["spec"] = {**document["spec"], **spec}
    harness.record_pending(request_id, "deploy_service", ADMIN.user_id)
    harness.redis.xadd(SERVICE_COMMANDS.name, {DATA_FIELD: json.dumps(document)})


def test_a_malformed_spec_is_answered_with_command_failed_naming_the_field_and_applies_nothing(
    harness: WorkerHarness, kube: client.ApiClient
) -> None:
    harness.start_worker()

    _send_raw(harness, "unknown", {"privileged": True})
    _send_raw(harness, "quantity", {"resources": {"cpu": "lots"}})
    _send_raw(harness, "ports", {"ports": [{"port": 80}, {"port": 80}]})

    reasons = {}
    for request_id in ("unknown", "quantity", "ports"):
        outcome = harness.wait_for_result(request_id)
        assert isinstance(outcome, CommandFailed), request_id
        assert outcome.code.value == "invalid"
        assert harness.request_state(request_id) == "failed"
        reasons[request_id] = outcome.reason
    assert "spec.privileged" in reasons["unknown"]
    assert "spec.resources.cpu" in reasons["quantity"]
    assert "spec.ports" in reasons["ports"]
    assert "same number" in reasons["ports"]
    assert client.AppsV1Api(kube).list_namespaced_deployment(NAMESPACE).items == []
