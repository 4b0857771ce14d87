"""The environment's Kubernetes objects, built by pure functions and compared as dicts."""

from datetime import UTC, datetime

from akros_k8s_worker.objects import (
    EgressAllowance,
    EnvironmentNetwork,
    EnvironmentPlatform,
    Manifest,
    environment_objects,
)
from akros_k8s_worker.settings import WorkerSettings
from akros_msgs import Actor, CreateEnvironment, Role, Source
from akros_policy import CatalogImage
from tests.network_policy import Endpoint, admits, connects, lets_out

PLATFORM = EnvironmentPlatform(
    namespace="akros-envs",
    domain="research.example",
    ingress_class="nginx",
    network=EnvironmentNetwork(),
    storage_class="local-path",
    work_mount_path="/home/researcher/work",
    run_as_user=1000,
    run_as_group=100,
    priority_class=None,
)
IMAGE = CatalogImage(image="registry.local/pytorch:1", port=8888)
LABELS = {
    "akros.io/owner": "alice",
    "akros.io/kind": "environment",
    "akros.io/env": "exp",
    "app.kubernetes.io/managed-by": "akros",
}
SELECTOR = {"akros.io/owner": "alice", "akros.io/env": "exp"}


def _command(**overrides: object) -> CreateEnvironment:
    fields: dict[str, object] = {
        "request_id": "req-1",
        "actor": Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER),
        "owner": "alice",
        "name": "exp",
        "image": "pytorch",
        "cpu": "4",
        "memory": "16Gi",
        "volume_size": "50Gi",
    }
    fields.update(overrides)
    return CreateEnvironment.model_validate(fields)


def test_a_cpu_environment_is_one_deployment_with_a_retained_claim_service_ingress_and_policy() -> (
    None
):
    objects = environment_objects(_command(), IMAGE, PLATFORM)

    assert objects.volume_claim == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "alice-exp-5", "namespace": "akros-envs", "labels": LABELS},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "50Gi"}},
            "storageClassName": "local-path",
        },
    }
    assert objects.deployment == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "alice-exp-5",
            "namespace": "akros-envs",
            "labels": LABELS,
            "annotations": {"akros.io/request-id": "req-1", "akros.io/image": "pytorch"},
        },
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": SELECTOR},
            "template": {
                "metadata": {
                    "labels": LABELS,
                    "annotations": {"akros.io/request-id": "req-1", "akros.io/image": "pytorch"},
                },
                "spec": {
                    "containers": [
                        {
                            "name": "workspace",
                            "image": "registry.local/pytorch:1",
                            "ports": [{"name": "http", "containerPort": 8888, "protocol": "TCP"}],
                            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
                            "resources": {
                                "requests": {"cpu": "4", "memory": "16Gi"},
                                "limits": {"memory": "16Gi"},
                            },
                            "volumeMounts": [
                                {"name": "work", "mountPath": "/home/researcher/work"}
                            ],
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "privileged": False,
                                "readOnlyRootFilesystem": False,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "env": [
                                {"name": "AKROS_OWNER", "value": "alice"},
                                {"name": "AKROS_ENVIRONMENT", "value": "exp"},
                                {"name": "AKROS_WORK_DIR", "value": "/home/researcher/work"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "work", "persistentVolumeClaim": {"claimName": "alice-exp-5"}}
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
    assert objects.service == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "alice-exp-5", "namespace": "akros-envs", "labels": LABELS},
        "spec": {
            "type": "ClusterIP",
            "selector": SELECTOR,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    assert objects.ingress["spec"] == {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": "exp-alice-3.research.example",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "alice-exp-5", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
        # TLS always; without a secret name, the ingress controller's default certificate.
        "tls": [{"hosts": ["exp-alice-3.research.example"]}],
    }
    owners_environments = {
        "podSelector": {"matchLabels": {"akros.io/owner": "alice", "akros.io/kind": "environment"}}
    }
    assert objects.network_policy["spec"] == {
        "podSelector": {"matchLabels": SELECTOR},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"from": [owners_environments]},
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": "rke2-ingress-nginx",
                                "app.kubernetes.io/component": "controller",
                            }
                        },
                    }
                ]
            },
        ],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                        },
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
            {"to": [owners_environments]},
        ],
    }


ALICE_EXP = Endpoint("akros-envs", {**LABELS})
ALICE_OTHER = Endpoint("akros-envs", {**LABELS, "akros.io/env": "other"})
BOB_LAB = Endpoint(
    "akros-envs", {**LABELS, "akros.io/owner": "bob", "akros.io/env": "lab"}, ip="10.42.1.7"
)
INGRESS_CONTROLLER = Endpoint(
    "kube-system",
    {
        "app.kubernetes.io/name": "rke2-ingress-nginx",
        "app.kubernetes.io/instance": "rke2-ingress-nginx",
        "app.kubernetes.io/component": "controller",
    },
)
COREDNS = Endpoint(
    "kube-system",
    {"k8s-app": "kube-dns", "app.kubernetes.io/name": "rke2-coredns"},
    ip="10.43.0.10",
)


def _policies(platform: EnvironmentPlatform = PLATFORM) -> list[Manifest]:
    """The three environments' own policies (alice's exp and other, bob's lab)."""
    return [
        environment_objects(_command(owner=owner, name=name), IMAGE, platform).network_policy
        for owner, name in (("alice", "exp"), ("alice", "other"), ("bob", "lab"))
    ]


def test_only_the_ingress_controllers_pods_of_kube_system_reach_an_environment() -> None:
    """kube-system runs every RKE2 add-on: its other pods (metrics-server, a compromised
    add-on) get no more than anyone else."""
    policies = _policies()
    assert admits(policies, ALICE_EXP, INGRESS_CONTROLLER, 8888)
    metrics_server = Endpoint("kube-system", {"app.kubernetes.io/name": "rke2-metrics-server"})
    assert not admits(policies, ALICE_EXP, metrics_server, 8888)
    assert not admits(policies, ALICE_EXP, COREDNS, 8888)
    controller_elsewhere = Endpoint("ingress-nginx", dict(INGRESS_CONTROLLER.labels))
    assert not admits(policies, ALICE_EXP, controller_elsewhere, 8888)


def test_the_ingress_controllers_namespace_and_labels_are_the_platforms_to_set() -> None:
    traefik = Endpoint("traefik", {"app.kubernetes.io/name": "traefik"})
    network = EnvironmentNetwork(
        ingress_controller_namespace="traefik",
        ingress_controller_pod_labels=(("app.kubernetes.io/name", "traefik"),),
    )
    policies = _policies(EnvironmentPlatform(**{**PLATFORM.__dict__, "network": network}))
    assert admits(policies, ALICE_EXP, traefik, 8888)
    assert not admits(policies, ALICE_EXP, INGRESS_CONTROLLER, 8888)


def test_an_environment_reaches_dns_and_its_owners_environments_and_nothing_else() -> None:
    policies = _policies()
    assert lets_out(policies, ALICE_EXP, COREDNS, 53, "UDP")
    assert lets_out(policies, ALICE_EXP, COREDNS, 53, "TCP")
    assert not lets_out(policies, ALICE_EXP, COREDNS, 8080)
    assert connects(policies, ALICE_EXP, ALICE_OTHER, 8888)
    assert not connects(policies, ALICE_EXP, BOB_LAB, 8888)
    assert not connects(policies, BOB_LAB, ALICE_EXP, 8888)
    internet = Endpoint(None, ip="140.82.112.3")
    assert not lets_out(policies, ALICE_EXP, internet, 443)
    gateway = Endpoint("akros-system", {"app.kubernetes.io/name": "api-gateway"})
    assert not lets_out(policies, ALICE_EXP, gateway, 8080)
    redis = Endpoint("akros-system", {"app.kubernetes.io/name": "redis"})
    assert not lets_out(policies, ALICE_EXP, redis, 6379)


def test_the_admins_allowlist_opens_its_cidrs_on_its_ports_only() -> None:
    network = EnvironmentNetwork(
        egress_allowlist=(
            EgressAllowance(cidr="10.8.0.0/16", ports=((443, "TCP"),)),
            EgressAllowance(cidr="192.168.50.0/24"),
        )
    )
    policies = _policies(EnvironmentPlatform(**{**PLATFORM.__dict__, "network": network}))
    mirror = Endpoint(None, ip="10.8.3.4")
    assert lets_out(policies, ALICE_EXP, mirror, 443)
    assert not lets_out(policies, ALICE_EXP, mirror, 22)
    assert lets_out(policies, ALICE_EXP, Endpoint(None, ip="192.168.50.9"), 5432)
    assert not lets_out(policies, ALICE_EXP, Endpoint(None, ip="10.9.0.1"), 443)


def _pod_spec(command: CreateEnvironment) -> Manifest:
    return _pod_spec_of(environment_objects(command, IMAGE, PLATFORM).deployment)


def test_dedicated_cores_get_guaranteed_qos_with_whole_cpus() -> None:
    [container] = _pod_spec(_command(cpu="8", dedicated_cores=True))["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "8", "memory": "16Gi"},
        "limits": {"cpu": "8", "memory": "16Gi"},
    }


def test_gpus_are_requested_and_limited_tolerated_and_pinned_to_the_model() -> None:
    spec = _pod_spec(_command(gpus=2, gpu_model="A100-SXM4-80GB"))
    [container] = spec["containers"]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "A100-SXM4-80GB"}


def test_expiry_and_priority_class_are_carried_when_set() -> None:
    platform = EnvironmentPlatform(**{**PLATFORM.__dict__, "priority_class": "akros-research"})
    expiry = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
    objects = environment_objects(_command(expires_at=expiry), IMAGE, platform)
    metadata = objects.deployment["metadata"]
    assert metadata["annotations"]["akros.io/expires-at"] == "2026-12-24T18:00:00+00:00"
    assert _pod_spec_of(objects.deployment)["priorityClassName"] == "akros-research"


def _pod_spec_of(deployment: Manifest) -> Manifest:
    spec: Manifest = deployment["spec"]["template"]["spec"]
    return spec


def test_an_environment_of_a_profile_labels_its_deployment_and_pods_with_it() -> None:
    objects = environment_objects(_command(profile="gpu-single"), IMAGE, PLATFORM)
    labelled = {**LABELS, "akros.io/profile": "gpu-single"}
    plain = environment_objects(_command(), IMAGE, PLATFORM)
    deployment = plain.deployment
    deployment["metadata"]["labels"] = labelled
    deployment["spec"]["template"]["metadata"]["labels"] = labelled
    assert objects.deployment == deployment
    assert objects.deployment["spec"]["selector"] == {"matchLabels": SELECTOR}
    for other in ("volume_claim", "service", "ingress", "network_policy"):
        assert getattr(objects, other) == getattr(plain, other), f"the {other} is unchanged"


def test_the_claim_outlives_the_environment_because_nothing_owns_it() -> None:
    claim = environment_objects(_command(), IMAGE, PLATFORM).volume_claim
    assert "ownerReferences" not in claim["metadata"]


def test_every_environment_ingress_asks_the_gateway_who_may_open_it() -> None:
    objects = environment_objects(_command(), IMAGE, PLATFORM)
    assert objects.ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/auth-url": (
            "http://api-gateway.akros-system.svc.cluster.local/v1/auth/environment"
            "?host=exp-alice-3.research.example"
        ),
        "nginx.ingress.kubernetes.io/auth-signin": (
            "https://akros.research.akros.local/v1/auth/sign-in"
        ),
        # The client's Authorization is replaced by the auth answer's (none): a token sent
        # to the URL never reaches the environment.
        "nginx.ingress.kubernetes.io/auth-response-headers": "Authorization, X-Akros-User",
        "nginx.ingress.kubernetes.io/auth-always-set-cookie": "true",
    }


def test_a_wildcard_certificate_from_the_settings_serves_every_environment_host() -> None:
    platform = EnvironmentPlatform(**{**PLATFORM.__dict__, "tls_secret_name": "wildcard-tls"})
    objects = environment_objects(_command(), IMAGE, platform)
    assert objects.ingress["spec"]["tls"] == [
        {"hosts": ["exp-alice-3.research.example"], "secretName": "wildcard-tls"}
    ]


def test_the_worker_settings_point_the_sign_in_at_the_gateway_of_its_domain() -> None:
    settings = WorkerSettings(storage_class="local-path", domain="research.example")
    platform = settings.platform()
    assert platform.sign_in_url == "https://akros.research.example/v1/auth/sign-in"
    assert platform.auth_url.endswith("/v1/auth/environment")
    assert platform.tls_secret_name is None
    named = WorkerSettings(
        storage_class="local-path",
        environment_sign_in_url="https://gw.example/v1/auth/sign-in",
        environment_tls_secret="wildcard-tls",
    ).platform()
    assert (named.sign_in_url, named.tls_secret_name) == (
        "https://gw.example/v1/auth/sign-in",
        "wildcard-tls",
    )
