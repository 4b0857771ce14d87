"""An in-house service's Kubernetes objects, built by pure functions and compared as dicts."""

from typing import Any

from akros_k8s_worker.service_objects import (
    ANNOTATION_SPEC_DIGEST,
    ServicePlatform,
    is_current,
    replacement,
    service_objects,
)
from akros_msgs.services import ServiceSpec

PLATFORM = ServicePlatform(namespace="akros-services", run_as_user=1000, run_as_group=100)
LABELS = {
    "akros.io/kind": "service",
    "akros.io/service": "pricer",
    "app.kubernetes.io/managed-by": "akros",
}
SELECTOR = {"akros.io/kind": "service", "akros.io/service": "pricer"}
METADATA = {"name": "pricer", "namespace": "akros-services", "labels": LABELS}


def _spec(**fields: Any) -> ServiceSpec:
    return ServiceSpec.model_validate(
        {"name": "pricer", "image": "registry.local/pricer:3", **fields}
    )


def _without_digest(manifest: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(manifest["metadata"])
    assert set(metadata.pop("annotations")) == {ANNOTATION_SPEC_DIGEST}
    return {**manifest, "metadata": metadata}


def test_a_full_spec_builds_a_non_root_deployment_a_service_and_an_autoscaler() -> None:
    spec = _spec(
        command=["pricer"],
        args=["--workers", "4"],
        env=[
            {"name": "MODE", "value": "live"},
            {"name": "DB_PASSWORD", "secret": {"name": "pricer-db", "key": "password"}},
        ],
        ports=[{"port": 80, "target_port": 8080, "name": "http"}, {"port": 9090}],
        service_type="NodePort",
        resources={"cpu": "2", "memory": "4Gi", "gpus": 1, "memory_limit": "6Gi"},
        replicas=3,
        node_selector={"nvidia.com/gpu.product": "A100"},
        tolerations=[{"key": "dedicated", "value": "pricing", "effect": "NoSchedule"}],
        readiness_probe={"http_get": {"path": "/ready", "port": 8080}},
        liveness_probe={"tcp_port": 8080, "period_seconds": 20},
        volumes=[
            {"name": "models", "mount_path": "/models", "source": "pvc", "ref": "models"},
            {"name": "conf", "mount_path": "/etc/pricer", "source": "config_map", "ref": "cfg"},
            {"name": "keys", "mount_path": "/keys", "source": "secret", "ref": "pricer-keys"},
            {
                "name": "scratch",
                "mount_path": "/scratch",
                "source": "empty_dir",
                "size_limit": "1Gi",
            },
        ],
        autoscaling={"min_replicas": 2, "max_replicas": 8, "cpu_utilisation": 70},
    )

    objects = service_objects(spec, PLATFORM)

    assert _without_digest(objects.deployment) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": METADATA,
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": SELECTOR},
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "containers": [
                        {
                            "name": "service",
                            "image": "registry.local/pricer:3",
                            "command": ["pricer"],
                            "args": ["--workers", "4"],
                            "env": [
                                {"name": "MODE", "value": "live"},
                                {
                                    "name": "DB_PASSWORD",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "pricer-db", "key": "password"}
                                    },
                                },
                            ],
                            "ports": [
                                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                {"name": "port-9090", "containerPort": 9090, "protocol": "TCP"},
                            ],
                            "resources": {
                                "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
                                "limits": {"memory": "6Gi", "nvidia.com/gpu": "1"},
                            },
                            "volumeMounts": [
                                {"name": "models", "mountPath": "/models", "readOnly": False},
                                {"name": "conf", "mountPath": "/etc/pricer", "readOnly": False},
                                {"name": "keys", "mountPath": "/keys", "readOnly": False},
                                {"name": "scratch", "mountPath": "/scratch", "readOnly": False},
                            ],
                            "readinessProbe": {
                                "httpGet": {"path": "/ready", "port": 8080},
                                "initialDelaySeconds": 0,
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            "livenessProbe": {
                                "tcpSocket": {"port": 8080},
                                "initialDelaySeconds": 0,
                                "periodSeconds": 20,
                                "failureThreshold": 3,
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "privileged": False,
                                "readOnlyRootFilesystem": False,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                    "volumes": [
                        {
                            "name": "models",
                            "persistentVolumeClaim": {"claimName": "models", "readOnly": False},
                        },
                        {"name": "conf", "configMap": {"name": "cfg"}},
                        {"name": "keys", "secret": {"secretName": "pricer-keys"}},
                        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                    "nodeSelector": {"nvidia.com/gpu.product": "A100"},
                    "tolerations": [
                        {
                            "key": "dedicated",
                            "operator": "Equal",
                            "value": "pricing",
                            "effect": "NoSchedule",
                        },
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 100,
                        "fsGroup": 100,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "hostNetwork": False,
                    "hostPID": False,
                    "hostIPC": False,
                },
            },
        },
    }
    assert objects.service is not None
    assert _without_digest(objects.service) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": METADATA,
        "spec": {
            "type": "NodePort",
            "selector": SELECTOR,
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"name": "port-9090", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
            ],
        },
    }
    assert objects.autoscaler is not None
    assert _without_digest(objects.autoscaler) == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": METADATA,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "pricer"},
            "minReplicas": 2,
            "maxReplicas": 8,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def test_a_service_with_ports_opens_its_container_ports_in_a_policy_of_its_own() -> None:
    objects = service_objects(
        _spec(ports=[{"port": 80, "target_port": 8080}, {"port": 9000, "protocol": "UDP"}]),
        PLATFORM,
    )
    assert objects.network_policy is not None
    assert _without_digest(objects.network_policy) == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": METADATA,
        "spec": {
            "podSelector": {"matchLabels": SELECTOR},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "UDP", "port": 9000}]}
            ],
        },
    }


def test_a_spec_without_ports_or_autoscaling_has_only_a_deployment() -> None:
    objects = service_objects(_spec(replicas=2), PLATFORM)

    assert objects.service is None
    assert objects.autoscaler is None
    assert objects.network_policy is None
    assert objects.deployment["spec"]["replicas"] == 2
    container = objects.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert "tolerations" not in objects.deployment["spec"]["template"]["spec"]


def test_an_autoscaler_on_memory_and_cpu_targets_both_and_an_exec_probe_runs_the_command() -> None:
    objects = service_objects(
        _spec(
            autoscaling={
                "max_replicas": 4,
                "cpu_utilisation": 60,
                "memory_utilisation": 80,
            },
            readiness_probe={"command": ["pricer", "check"], "initial_delay_seconds": 5},
            resources={"cpu": "1", "memory": "1Gi", "cpu_limit": "2"},
        ),
        PLATFORM,
    )

    assert objects.autoscaler is not None
    metrics = objects.autoscaler["spec"]["metrics"]
    assert [(m["resource"]["name"], m["resource"]["target"]) for m in metrics] == [
        ("cpu", {"type": "Utilization", "averageUtilization": 60}),
        ("memory", {"type": "Utilization", "averageUtilization": 80}),
    ]
    container = objects.deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {
        "exec": {"command": ["pricer", "check"]},
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "failureThreshold": 3,
    }
    assert container["resources"]["limits"] == {"memory": "1Gi", "cpu": "2"}


def test_a_host_path_volume_mounts_the_path_read_only_when_asked() -> None:
    objects = service_objects(
        _spec(
            volumes=[
                {
                    "name": "logs",
                    "mount_path": "/var/log/host",
                    "source": "host_path",
                    "ref": "/var/log",
                    "read_only": True,
                }
            ]
        ),
        PLATFORM,
    )

    pod = objects.deployment["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "logs", "hostPath": {"path": "/var/log"}}]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "logs", "mountPath": "/var/log/host", "readOnly": True}
    ]
    assert pod["hostNetwork"] is False


def test_the_same_spec_builds_the_same_digest_and_a_changed_one_another() -> None:
    first = service_objects(_spec(ports=[{"port": 80}]), PLATFORM)
    again = service_objects(_spec(ports=[{"port": 80}]), PLATFORM)
    changed = service_objects(_spec(ports=[{"port": 80}], image="registry.local/p:4"), PLATFORM)

    assert is_current(again.deployment, first.deployment)
    assert not is_current(changed.deployment, first.deployment)
    assert first.service is not None
    assert changed.service is not None
    assert is_current(changed.service, first.service)  # the image is not the Service's business


def test_a_live_object_without_our_digest_is_not_current() -> None:
    desired = service_objects(_spec(), PLATFORM).deployment

    assert not is_current(desired, {"metadata": {"name": "pricer"}})


def test_a_replacement_keeps_the_cluster_ip_node_ports_and_the_autoscaled_replica_count() -> None:
    objects = service_objects(
        _spec(
            ports=[{"port": 80}],
            service_type="NodePort",
            autoscaling={"max_replicas": 5, "cpu_utilisation": 50},
        ),
        PLATFORM,
    )
    assert objects.service is not None
    live_service = {
        "metadata": {"resourceVersion": "41"},
        "spec": {
            "clusterIP": "10.0.0.7",
            "clusterIPs": ["10.0.0.7"],
            "ports": [{"port": 80, "nodePort": 30080}],
        },
    }
    live_deployment = {"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 4}}

    service = replacement(objects.service, live_service, autoscaled=True)
    deployment = replacement(objects.deployment, live_deployment, autoscaled=True)
    fixed = replacement(objects.deployment, live_deployment, autoscaled=False)

    assert service["metadata"]["resourceVersion"] == "41"
    assert service["spec"]["clusterIP"] == "10.0.0.7"
    assert service["spec"]["ports"][0]["nodePort"] == 30080
    assert deployment["spec"]["replicas"] == 4
    assert fixed["spec"]["replicas"] == 1
    assert objects.deployment["metadata"].get("resourceVersion") is None  # not modified
