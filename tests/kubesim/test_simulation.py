"""The simulated control plane seen through the official client: scheduling, preemption, pod
lifecycle, deployments, metrics, the DCGM exposition and fault injection."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from akros_kubesim.testing import RunningKubesim, run_kubesim
from tests.kubesim.test_client_api import eventually

SMALL_CLUSTER = {
    "nodes": [
        {
            "name": "gpu-1",
            "cpu": 8,
            "memory": "32Gi",
            "nvidia.com/gpu": 2,
            "labels": {"pool": "gpu"},
        },
        {"name": "cpu-1", "cpu": 4, "memory": "16Gi", "labels": {"pool": "cpu"}},
        {
            "name": "cp-1",
            "cpu": 2,
            "memory": "4Gi",
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
        },
    ]
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningKubesim]:
    """A small cluster whose capacity the tests can fill: 2 GPUs, 12 CPUs in total."""
    path = Path(tmp_path_factory.mktemp("cluster")) / "cluster.yaml"
    path.write_text(yaml.safe_dump(SMALL_CLUSTER))
    options = ("--hpa-sync-seconds", "0.3")
    with run_kubesim(path, pod_start_seconds=0.3, extra_args=options) as running:
        yield running


def _pod(
    name: str, cpu: str = "100m", gpus: int = 0, image: str = "python:3.11", **spec: Any
) -> dict[str, Any]:
    limits: dict[str, Any] = {"nvidia.com/gpu": str(gpus)} if gpus else {}
    return {
        "metadata": {"name": name, "annotations": spec.pop("annotations", {})},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}, "limits": limits},
                }
            ],
            **spec,
        },
    }


def _condition(pod: client.V1Pod, kind: str) -> client.V1PodCondition | None:
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def test_a_pod_is_bound_then_running_with_ip_conditions_and_container_statuses(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("life"))
    bound = eventually(lambda: core.read_namespaced_pod("life", namespace).spec.node_name)
    assert bound in ("gpu-1", "cpu-1")
    assert core.read_namespaced_pod("life", namespace).status.phase == "Pending"
    running = eventually(
        lambda: (p := core.read_namespaced_pod("life", namespace)).status.phase == "Running" and p
    )
    assert running.status.pod_ip
    assert running.status.host_ip
    ready = _condition(running, "Ready")
    assert ready is not None
    assert ready.status == "True"
    assert running.status.container_statuses[0].ready
    assert running.status.container_statuses[0].state.running.started_at


def test_taints_keep_ordinary_pods_off_the_control_plane_and_tolerations_let_them_on(
    core: client.CoreV1Api, namespace: str
) -> None:
    toleration = {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    }
    core.create_namespaced_pod(
        namespace,
        _pod("ops", nodeSelector={"kubernetes.io/hostname": "cp-1"}, tolerations=[toleration]),
    )
    core.create_namespaced_pod(
        namespace, _pod("plain", nodeSelector={"kubernetes.io/hostname": "cp-1"})
    )
    assert eventually(lambda: core.read_namespaced_pod("ops", namespace).spec.node_name) == "cp-1"
    condition = eventually(
        lambda: _condition(core.read_namespaced_pod("plain", namespace), "PodScheduled")
    )
    assert condition.status == "False"
    assert condition.reason == "Unschedulable"
    assert "untolerated taint" in condition.message
    core.delete_namespaced_pod("ops", namespace, grace_period_seconds=0)
    core.delete_namespaced_pod("plain", namespace, grace_period_seconds=0)


def test_an_unschedulable_pod_waits_with_a_reason_and_is_placed_when_room_appears(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("first", gpus=2))
    assert (
        eventually(lambda: core.read_namespaced_pod("first", namespace).spec.node_name) == "gpu-1"
    )
    core.create_namespaced_pod(namespace, _pod("second", gpus=1))
    condition = eventually(
        lambda: _condition(core.read_namespaced_pod("second", namespace), "PodScheduled")
    )
    assert condition.status == "False"
    assert "Insufficient nvidia.com/gpu" in condition.message
    events = eventually(
        lambda: [
            e
            for e in core.list_namespaced_event(namespace).items
            if e.reason == "FailedScheduling" and e.involved_object.name == "second"
        ]
    )
    assert events[0].type == "Warning"
    core.delete_namespaced_pod("first", namespace, grace_period_seconds=0)
    assert (
        eventually(lambda: core.read_namespaced_pod("second", namespace).spec.node_name) == "gpu-1"
    )
    core.delete_namespaced_pod("second", namespace, grace_period_seconds=0)


def test_a_higher_priority_pod_preempts_lower_priority_pods(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    scheduling = client.SchedulingV1Api(api_client)
    for name, value in ((f"low-{namespace}", 10), (f"high-{namespace}", 1000)):
        scheduling.create_priority_class(
            client.V1PriorityClass(metadata=client.V1ObjectMeta(name=name), value=value)
        )
    # A long grace period (300 s, 3 s at the tests' time factor) makes the wait observable.
    core.create_namespaced_pod(
        namespace,
        _pod(
            "filler",
            gpus=2,
            priorityClassName=f"low-{namespace}",
            terminationGracePeriodSeconds=300,
        ),
    )
    eventually(lambda: core.read_namespaced_pod("filler", namespace).status.phase == "Running")
    assert core.read_namespaced_pod("filler", namespace).spec.priority == 10
    core.create_namespaced_pod(
        namespace, _pod("urgent", gpus=1, priorityClassName=f"high-{namespace}")
    )
    nominated = eventually(
        lambda: core.read_namespaced_pod("urgent", namespace).status.nominated_node_name
    )
    assert nominated == "gpu-1"
    victim = core.read_namespaced_pod("filler", namespace)
    assert victim.metadata.deletion_timestamp is not None, "the victim terminates gracefully"
    assert core.read_namespaced_pod("urgent", namespace).spec.node_name is None
    assert core.read_namespaced_pod("urgent", namespace).status.phase == "Pending"
    bound = eventually(
        lambda: core.read_namespaced_pod("urgent", namespace).spec.node_name, timeout=15
    )
    assert bound == "gpu-1"
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod("filler", namespace)
    assert raised.value.status == 404
    reasons = {
        (e.reason, e.involved_object.name) for e in core.list_namespaced_event(namespace).items
    }
    assert ("Preempted", "filler") in reasons
    core.delete_namespaced_pod("urgent", namespace, grace_period_seconds=0)


def test_an_unknown_priority_class_is_forbidden(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(namespace, _pod("p", priorityClassName="nope"))
    assert raised.value.status == 403


def test_every_namespace_gets_a_default_service_account_made_again_if_deleted(
    core: client.CoreV1Api, namespace: str
) -> None:
    def default_account() -> list[str]:
        names = [a.metadata.name for a in core.list_namespaced_service_account(namespace).items]
        return [name for name in names if name == "default"]

    assert eventually(default_account) == ["default"]
    first_uid = core.read_namespaced_service_account("default", namespace).metadata.uid
    core.delete_namespaced_service_account("default", namespace)
    eventually(
        lambda: (
            default_account()
            and core.read_namespaced_service_account("default", namespace).metadata.uid != first_uid
        )
    )
    # The namespaces the cluster starts with have theirs too.
    assert core.read_namespaced_service_account("default", "kube-system").metadata.name


def test_graceful_deletion_marks_the_pod_terminating_then_removes_it(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("bye"))
    eventually(lambda: core.read_namespaced_pod("bye", namespace).status.phase == "Running")
    core.delete_namespaced_pod("bye", namespace)
    assert core.read_namespaced_pod("bye", namespace).metadata.deletion_timestamp is not None

    def removed() -> bool:
        try:
            core.read_namespaced_pod("bye", namespace)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    eventually(removed)


def test_a_deployment_keeps_its_replicas_and_reports_status(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": _pod("x")["spec"]},
        },
    }
    apps.create_namespaced_deployment(namespace, body)

    def ready(count: int) -> bool:
        status = apps.read_namespaced_deployment("web", namespace).status
        return bool(
            status.ready_replicas == count
            and status.available_replicas == count
            and status.replicas == count
        )

    eventually(lambda: ready(3))
    status = apps.read_namespaced_deployment("web", namespace).status
    assert status.observed_generation == 1
    assert {c.type for c in status.conditions} == {"Available", "Progressing"}
    victim = core.list_namespaced_pod(namespace, label_selector="app=web").items[0].metadata.name
    core.delete_namespaced_pod(victim, namespace, grace_period_seconds=0)
    eventually(
        lambda: (
            ready(3)
            and victim not in [p.metadata.name for p in core.list_namespaced_pod(namespace).items]
        )
    )
    old_hashes = {
        p.metadata.labels["pod-template-hash"] for p in core.list_namespaced_pod(namespace).items
    }
    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "main", "image": "python:3.12"}]}}
            }
        },
    )

    def replaced() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        live = [p for p in pods if not p.metadata.deletion_timestamp]
        return len(pods) == 3 and all(p.spec.containers[0].image == "python:3.12" for p in live)

    eventually(replaced)
    new_hashes = {
        p.metadata.labels["pod-template-hash"] for p in core.list_namespaced_pod(namespace).items
    }
    assert not new_hashes & old_hashes
    eventually(
        lambda: (
            ready(3)
            and apps.read_namespaced_deployment("web", namespace).status.observed_generation == 2
        )
    )
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
    eventually(
        lambda: (
            ready(1)
            and len(core.list_namespaced_pod(namespace, label_selector="app=web").items) == 1
        )
    )
    apps.delete_namespaced_deployment("web", namespace)


def test_metrics_follow_usage_annotations_and_change_when_patched(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(
        namespace, _pod("worker", cpu="2", annotations={"kubesim.akros.io/usage-profile": "idle"})
    )
    eventually(lambda: core.read_namespaced_pod("worker", namespace).status.phase == "Running")
    metrics = client.CustomObjectsApi(api_client)

    def cpu_nanocores() -> int:
        pod = metrics.get_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods", "worker"
        )
        return int(pod["containers"][0]["usage"]["cpu"].rstrip("n"))

    def scraped() -> bool:
        names = metrics.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods"
        )["items"]
        return any(item["metadata"]["name"] == "worker" for item in names)

    eventually(scraped)  # as with metrics-server, only after a scrape following the start
    assert cpu_nanocores() == 20_000_000  # 1% of 2 cores
    core.patch_namespaced_pod(
        "worker", namespace, {"metadata": {"annotations": {"kubesim.akros.io/cpu-usage": "1500m"}}}
    )
    assert cpu_nanocores() == 1_500_000_000
    nodes = metrics.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"]
    assert {n["metadata"]["name"] for n in nodes} == {"gpu-1", "cpu-1", "cp-1"}
    core.delete_namespaced_pod("worker", namespace, grace_period_seconds=0)


def test_dcgm_metrics_report_gpu_utilisation_per_pod(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(
        namespace, _pod("trainer", gpus=1, annotations={"kubesim.akros.io/gpu-utilization": "73"})
    )
    eventually(lambda: core.read_namespaced_pod("trainer", namespace).status.phase == "Running")
    lines = [
        line
        for line in cluster.dcgm_metrics().splitlines()
        if line.startswith("DCGM_FI_DEV_GPU_UTIL{")
    ]
    mine = [line for line in lines if f'namespace="{namespace}"' in line]
    assert len(mine) == 1
    assert 'pod="trainer"' in mine[0]
    assert 'container="main"' in mine[0]
    assert mine[0].endswith(" 73")
    assert len(lines) == 2  # every GPU of the cluster is reported, held or idle
    core.patch_namespaced_pod(
        "trainer",
        namespace,
        {"metadata": {"annotations": {"kubesim.akros.io/gpu-utilization": "idle"}}},
    )
    idle = [
        line
        for line in cluster.dcgm_metrics().splitlines()
        if line.startswith("DCGM_FI_DEV_GPU_UTIL{") and 'pod="trainer"' in line
    ]
    assert idle[0].endswith(" 0")
    core.delete_namespaced_pod("trainer", namespace, grace_period_seconds=0)


def test_injected_faults_fail_writes_with_the_configured_status_then_stop(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    cluster.set_faults(failNext=2, errorStatus=429)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="retry"))
    for _ in range(2):
        with pytest.raises(ApiException) as raised:
            core.create_namespaced_config_map(namespace, body)
        assert raised.value.status == 429
        assert raised.value.headers["Retry-After"] == "1"
    core.create_namespaced_config_map(namespace, body)
    core.read_namespaced_config_map("retry", namespace)  # reads are not affected by write faults
    assert cluster.admin("GET", "/_kubesim/faults")["injected"] >= 2
    cluster.clear_faults()


def test_a_stalled_server_times_clients_out_until_resumed(
    cluster: RunningKubesim, namespace: str
) -> None:
    cluster.set_faults(stall=True, scope="all")
    stalled = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    started = time.monotonic()
    with pytest.raises(Exception, match=r"(?i)timed? ?out"):
        client.CoreV1Api(stalled).list_namespaced_pod(namespace, _request_timeout=0.5)
    assert time.monotonic() - started < 5
    cluster.clear_faults()
    assert client.CoreV1Api(stalled).list_namespaced_pod(namespace, _request_timeout=5).items == []
    stalled.close()


def test_added_latency_delays_writes(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    cluster.set_faults(latencySeconds=0.3)
    started = time.monotonic()
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="slow"))
    )
    assert time.monotonic() - started >= 0.3
    cluster.clear_faults()


def test_a_pod_bound_up_front_still_gets_gpus_and_starts(
    cluster: RunningKubesim, core: client.CoreV1Api, namespace: str
) -> None:
    """Pods created with spec.nodeName skip the scheduler, as on a real cluster, not the kubelet."""
    core.create_namespaced_pod(
        namespace,
        _pod(
            "pinned",
            gpus=1,
            nodeName="gpu-1",
            annotations={"kubesim.akros.io/gpu-utilization": "55"},
        ),
    )
    eventually(lambda: core.read_namespaced_pod("pinned", namespace).status.phase == "Running")
    held = [
        line
        for line in cluster.dcgm_metrics().splitlines()
        if line.startswith("DCGM_FI_DEV_GPU_UTIL{") and 'pod="pinned"' in line
    ]
    assert len(held) == 1
    assert held[0].endswith(" 55")
    core.delete_namespaced_pod("pinned", namespace, grace_period_seconds=0)


def _gpu_deployment(name: str, strategy: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "strategy": {"type": strategy},
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod("x", gpus=2)["spec"]},
        },
    }


def _images(core: client.CoreV1Api, namespace: str, app: str) -> list[tuple[str, str]]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return sorted(
        (p.spec.containers[0].image, p.status.phase)
        for p in pods
        if not p.metadata.deletion_timestamp
    )


def test_a_full_gpu_node_blocks_a_rolling_update_but_not_a_recreate(
    apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    """As on a real cluster: the surge pod cannot fit beside the old one, which therefore stays."""
    new_image = {
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "python:3.12"}]}}}
    }
    apps.create_namespaced_deployment(namespace, _gpu_deployment("rolling", "RollingUpdate"))
    eventually(lambda: _images(core, namespace, "rolling") == [("python:3.11", "Running")])
    apps.patch_namespaced_deployment("rolling", namespace, new_image)
    eventually(
        lambda: (
            _images(core, namespace, "rolling")
            == [("python:3.11", "Running"), ("python:3.12", "Pending")]
        )
    )
    time.sleep(1)
    assert _images(core, namespace, "rolling") == [
        ("python:3.11", "Running"),
        ("python:3.12", "Pending"),
    ]
    apps.delete_namespaced_deployment("rolling", namespace)
    eventually(lambda: not _images(core, namespace, "rolling"))
    apps.create_namespaced_deployment(namespace, _gpu_deployment("recreate", "Recreate"))
    eventually(lambda: _images(core, namespace, "recreate") == [("python:3.11", "Running")])
    apps.patch_namespaced_deployment("recreate", namespace, new_image)
    eventually(lambda: _images(core, namespace, "recreate") == [("python:3.12", "Running")])
    apps.delete_namespaced_deployment("recreate", namespace)


def test_a_resource_quota_refuses_pods_beyond_it_and_reports_usage(
    core: client.CoreV1Api, namespace: str
) -> None:
    hard = {"requests.nvidia.com/gpu": "1", "pods": "5"}
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "team"}, "spec": {"hard": hard}}
    )
    core.create_namespaced_pod(namespace, _pod("one", gpus=1))
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod(namespace, _pod("two", gpus=1))
    assert raised.value.status == 403
    assert "exceeded quota: team" in json.loads(raised.value.body)["message"]

    def used() -> dict[str, str] | None:
        status = core.read_namespaced_resource_quota("team", namespace).status
        return status.used if status and status.used and status.used.get("pods") == "1" else None

    assert eventually(used) == {"requests.nvidia.com/gpu": "1", "pods": "1"}
    core.delete_namespaced_pod("one", namespace, grace_period_seconds=0)
    eventually(
        lambda: core.read_namespaced_resource_quota("team", namespace).status.used["pods"] == "0"
    )
    core.create_namespaced_pod(namespace, _pod("two", gpus=1))
    core.delete_namespaced_pod("two", namespace, grace_period_seconds=0)


def test_an_autoscaler_follows_simulated_cpu_usage_within_its_bounds(
    api_client: client.ApiClient, apps: client.AppsV1Api, namespace: str
) -> None:
    template = {
        "metadata": {
            "labels": {"app": "api"},
            "annotations": {"kubesim.akros.io/usage-profile": "busy"},
        },
        "spec": _pod("x")["spec"],
    }
    body = {
        "metadata": {"name": "api"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "api"}}, "template": template},
    }
    apps.create_namespaced_deployment(namespace, body)
    autoscaling = client.AutoscalingV2Api(api_client)
    target = {"type": "Utilization", "averageUtilization": 50}
    autoscaler = {
        "metadata": {"name": "api"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
        },
    }
    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, autoscaler)
    eventually(
        lambda: apps.read_namespaced_deployment("api", namespace).spec.replicas == 3, timeout=15
    )
    status = eventually(
        lambda: (
            (
                s := autoscaling.read_namespaced_horizontal_pod_autoscaler("api", namespace).status
            ).current_metrics
            and s
        )
    )
    assert status.current_metrics[0].resource.current.average_utilization == 95
    limited = next(c for c in status.conditions if c.type == "ScalingLimited")
    assert (limited.status, limited.reason) == ("True", "TooManyReplicas")
    idle = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubesim.akros.io/usage-profile": "idle"}}}
        }
    }
    apps.patch_namespaced_deployment("api", namespace, idle)
    eventually(
        lambda: apps.read_namespaced_deployment("api", namespace).spec.replicas == 1, timeout=15
    )
    apps.delete_namespaced_deployment("api", namespace)


def test_a_researcher_preempts_low_priority_auto_inference_whose_replacement_waits(
    api_client: client.ApiClient, apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str
) -> None:
    """The capacity loop of DESIGN section 2: auto-inference yields GPUs at once, then waits."""
    scheduling = client.SchedulingV1Api(api_client)
    low, high = f"inference-{namespace}", f"research-{namespace}"
    scheduling.create_priority_class({"metadata": {"name": low}, "value": -10})
    scheduling.create_priority_class({"metadata": {"name": high}, "value": 100})
    template_spec = _pod("x", gpus=1, priorityClassName=low)["spec"]
    labels = {"app": "auto-inference"}
    body = {
        "metadata": {"name": "auto-inference"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": template_spec},
        },
    }
    apps.create_namespaced_deployment(namespace, body)
    eventually(
        lambda: (
            apps.read_namespaced_deployment("auto-inference", namespace).status.ready_replicas == 2
        )
    )
    core.create_namespaced_pod(namespace, _pod("notebook", gpus=1, priorityClassName=high))
    eventually(lambda: core.read_namespaced_pod("notebook", namespace).status.phase == "Running")

    def inference_phases() -> list[str]:
        pods = core.list_namespaced_pod(namespace, label_selector="app=auto-inference").items
        return sorted(p.status.phase for p in pods if not p.metadata.deletion_timestamp)

    eventually(lambda: inference_phases() == ["Pending", "Running"])
    waiting = next(
        p
        for p in core.list_namespaced_pod(namespace, label_selector="app=auto-inference").items
        if p.status.phase == "Pending"
    )
    condition = eventually(
        lambda: _condition(
            core.read_namespaced_pod(waiting.metadata.name, namespace), "PodScheduled"
        )
    )
    assert (condition.status, condition.reason) == ("False", "Unschedulable")
    eventually(
        lambda: (
            apps.read_namespaced_deployment("auto-inference", namespace).status.ready_replicas == 1
        )
    )
    apps.delete_namespaced_deployment("auto-inference", namespace)
    core.delete_namespaced_pod("notebook", namespace, grace_period_seconds=0)
