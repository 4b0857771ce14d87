"""Pure functions that build the Kubernetes objects of a research environment.

No client, no I/O: each function returns plain dicts in the API's own JSON shape, so tests
compare dicts and the adapter sends them as they are.
"""

from dataclasses import dataclass
from typing import Any

from akros_msgs import CreateEnvironment
from akros_msgs.quantity import cpu_millicores, format_cpu
from akros_policy import CatalogImage
from akros_policy.naming import (
    ANNOTATION_IMAGE_KEY,
    ANNOTATION_REQUEST_ID,
    LABEL_ENV,
    LABEL_KIND,
    LABEL_OWNER,
    LABEL_PROFILE,
    WorkloadKind,
    environment_host,
    environment_labels,
    environment_object_name,
)

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
ANNOTATION_EXPIRES_AT = "akros.io/expires-at"
INGRESS_NGINX = "nginx.ingress.kubernetes.io/"
SERVICE_PORT = 80

Manifest = dict[str, Any]
"""A Kubernetes object in the API's JSON shape."""
WORK_VOLUME = "work"


# RKE2's rke2-ingress-nginx chart (ingress-nginx's, renamed) labels its controller pods so;
# the chart keeps hostNetwork off, so the proxied requests come from these pods' own IPs.
RKE2_INGRESS_CONTROLLER_POD_LABELS = {
    "app.kubernetes.io/name": "rke2-ingress-nginx",
    "app.kubernetes.io/component": "controller",
}
# RKE2's rke2-coredns keeps the kube-dns label that clusters have always selected DNS by.
RKE2_DNS_POD_LABELS = {"k8s-app": "kube-dns"}
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class EgressAllowance:
    """An admin's exception to environments' default-deny egress: a CIDR, on some ports
    (``(port, protocol)`` pairs) or, with none, on every port."""

    cidr: str
    ports: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class EnvironmentNetwork:
    """Who may reach an environment and what it may reach (from the worker's settings)."""

    ingress_controller_namespace: str = "kube-system"
    ingress_controller_pod_labels: tuple[tuple[str, str], ...] = tuple(
        RKE2_INGRESS_CONTROLLER_POD_LABELS.items()
    )
    dns_namespace: str = "kube-system"
    dns_pod_labels: tuple[tuple[str, str], ...] = tuple(RKE2_DNS_POD_LABELS.items())
    egress_allowlist: tuple[EgressAllowance, ...] = ()


@dataclass(frozen=True)
class EnvironmentPlatform:
    """How this cluster hosts environments (from the worker's settings)."""

    namespace: str
    domain: str
    ingress_class: str | None
    network: EnvironmentNetwork
    storage_class: str
    work_mount_path: str
    run_as_user: int
    run_as_group: int
    priority_class: str | None
    auth_url: str = "http://api-gateway.akros-system.svc.cluster.local/v1/auth/environment"
    """Where the ingress controller asks whether a request may open an environment."""
    sign_in_url: str = "https://akros.research.akros.local/v1/auth/sign-in"
    """Where it sends a browser without credentials."""
    tls_secret_name: str | None = None
    """The certificate of every environment's host (a wildcard of the domain); None: the
    ingress controller's default certificate."""


@dataclass(frozen=True)
class EnvironmentObjects:
    """Everything one environment consists of (the worker applies the Deployment last)."""

    volume_claim: Manifest
    deployment: Manifest
    service: Manifest
    ingress: Manifest
    network_policy: Manifest


def _metadata(
    name: str, namespace: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> Manifest:
    metadata: Manifest = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def restricted_container() -> Manifest:
    """A container's securityContext: no privilege, no escalation, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def hardened_pod(run_as_user: int, run_as_group: int) -> Manifest:
    """The pod-level fields of every workload the platform runs: a non-root user, the
    runtime's seccomp profile, no service-account token, no host network, PID or IPC."""
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": run_as_user,
            "runAsGroup": run_as_group,
            "fsGroup": run_as_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
    }


def container_resources(command: CreateEnvironment) -> dict[str, dict[str, str]]:
    """Requests for what was asked; limits that keep the team's CPU-heavy work unthrottled.

    Dedicated cores: integer CPU with requests equal to limits for CPU and memory (Guaranteed
    QoS), so the kubelet's static CPU manager pins exclusive cores. Otherwise no CPU limit at
    all: a CFS quota throttles bursty numeric work (the team's lesson), while the memory
    limit still protects the node.
    """
    requests = {"cpu": command.cpu, "memory": command.memory}
    limits = {"memory": command.memory}
    if command.dedicated_cores:
        limits["cpu"] = format_cpu(cpu_millicores(command.cpu))
    if command.gpus:
        requests[GPU_RESOURCE] = str(command.gpus)
        limits[GPU_RESOURCE] = str(command.gpus)
    return {"requests": requests, "limits": limits}


def _pod_spec(
    command: CreateEnvironment, image: CatalogImage, platform: EnvironmentPlatform, claim: str
) -> Manifest:
    container: Manifest = {
        "name": "workspace",
        "image": image.image,
        "ports": [{"name": "http", "containerPort": image.port, "protocol": "TCP"}],
        # Ready means the app answers on the catalog's port, not that the process started.
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 2},
        "resources": container_resources(command),
        "volumeMounts": [{"name": WORK_VOLUME, "mountPath": platform.work_mount_path}],
        "securityContext": restricted_container(),
        "env": [
            {"name": "AKROS_OWNER", "value": command.owner},
            {"name": "AKROS_ENVIRONMENT", "value": command.name},
            {"name": "AKROS_WORK_DIR", "value": platform.work_mount_path},
        ],
    }
    if image.command:
        container["command"] = list(image.command)
    if image.args:
        container["args"] = list(image.args)
    spec: Manifest = {
        "containers": [container],
        "volumes": [{"name": WORK_VOLUME, "persistentVolumeClaim": {"claimName": claim}}],
        **hardened_pod(platform.run_as_user, platform.run_as_group),
    }
    if command.gpus:
        spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if command.gpu_model:
        spec["nodeSelector"] = {GPU_PRODUCT_LABEL: command.gpu_model}
    if platform.priority_class:
        spec["priorityClassName"] = platform.priority_class
    return spec


def environment_objects(
    command: CreateEnvironment, image: CatalogImage, platform: EnvironmentPlatform
) -> EnvironmentObjects:
    """The objects of the environment ``command`` asks for, running ``image``."""
    name = environment_object_name(command.owner, command.name)
    namespace = platform.namespace
    labels = environment_labels(command.owner, command.name)
    annotations = {ANNOTATION_REQUEST_ID: command.request_id, ANNOTATION_IMAGE_KEY: command.image}
    if command.expires_at is not None:
        annotations[ANNOTATION_EXPIRES_AT] = command.expires_at.isoformat()
    selector = {LABEL_OWNER: command.owner, LABEL_ENV: command.name}
    # The workload and its pods say which profile they came from (the monitor's exemption
    # reads it from the pods); the other objects and the selector do not need it.
    workload_labels = dict(labels)
    if command.profile is not None:
        workload_labels[LABEL_PROFILE] = command.profile

    claim_spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": command.volume_size}},
        "storageClassName": platform.storage_class,
    }
    # The claim has no owner reference on purpose: the work must outlive the environment.
    volume_claim: Manifest = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(name, namespace, labels),
        "spec": claim_spec,
    }
    deployment: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, namespace, workload_labels, annotations),
        "spec": {
            "replicas": 1,
            # One pod at a time: the work volume is ReadWriteOnce.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": {"labels": dict(workload_labels), "annotations": dict(annotations)},
                "spec": _pod_spec(command, image, platform, name),
            },
        },
    }
    service: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
    ingress_spec: Manifest = {
        "rules": [
            {
                "host": environment_host(command.owner, command.name, platform.domain),
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {"name": name, "port": {"number": SERVICE_PORT}}
                            },
                        }
                    ]
                },
            }
        ]
    }
    if platform.ingress_class:
        ingress_spec["ingressClassName"] = platform.ingress_class
    host = ingress_spec["rules"][0]["host"]
    ingress_spec["tls"] = [environment_tls(host, platform)]
    ingress: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _metadata(
            name, namespace, labels, environment_auth_annotations(platform, host)
        ),
        "spec": ingress_spec,
    }
    network_policy: Manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(name, namespace, labels),
        "spec": environment_network_policy_spec(command.owner, selector, platform.network),
    }
    return EnvironmentObjects(volume_claim, deployment, service, ingress, network_policy)


def _pods_of(namespace: str, pod_labels: tuple[tuple[str, str], ...]) -> Manifest:
    """A peer: the pods with these labels in that namespace, and no other pod there."""
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
        "podSelector": {"matchLabels": dict(pod_labels)},
    }


def environment_network_policy_spec(
    owner: str, selector: dict[str, str], network: EnvironmentNetwork
) -> Manifest:
    """Ingress from the owner's other environments and the ingress controller's pods only;
    egress to DNS, the owner's other environments and the admins' allowlist only.

    The policy isolates both directions by itself (a pod a policy selects for a direction
    gets only what some policy allows), so an environment is closed even where the
    namespace's default-deny (deploy/base/networkpolicies.yaml) was not applied.
    """
    owners_environments = {
        "podSelector": {
            "matchLabels": {LABEL_OWNER: owner, LABEL_KIND: WorkloadKind.ENVIRONMENT.value}
        }
    }
    egress: list[Manifest] = [
        {
            "to": [_pods_of(network.dns_namespace, network.dns_pod_labels)],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"to": [owners_environments]},
    ]
    for allowance in network.egress_allowlist:
        rule: Manifest = {"to": [{"ipBlock": {"cidr": allowance.cidr}}]}
        if allowance.ports:
            rule["ports"] = [
                {"protocol": protocol, "port": port} for port, protocol in allowance.ports
            ]
        egress.append(rule)
    return {
        "podSelector": {"matchLabels": dict(selector)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {"from": [owners_environments]},
            # The ingress controller serves the URL: its pods, not all of its namespace
            # (kube-system runs every add-on of RKE2's).
            {
                "from": [
                    _pods_of(
                        network.ingress_controller_namespace,
                        network.ingress_controller_pod_labels,
                    )
                ]
            },
        ],
        "egress": egress,
    }


def environment_auth_annotations(platform: EnvironmentPlatform, host: str) -> dict[str, str]:
    """ingress-nginx's external authentication: every request to the environment's host is
    first asked of the gateway (auth-url), which lets only the owner and admins through.

    - The auth-url names the host (``?host=``): nginx routes an absolute-form request
      (``GET https://<alice's host>/``) by its request line, but builds X-Original-URL from
      the Host header, so the client could name another environment's host than the one
      it reaches; the Ingress's own auth-url cannot be chosen by the client.
    - ``auth-signin``: a browser without credentials (401) is sent to the gateway's page
      saying how to open the environment signed in.
    - ``auth-response-headers``: the auth answer's ``Authorization`` replaces the client's,
      and the gateway sends none, so the caller's platform token never reaches the
      environment (an admin's token would otherwise be readable by the environment's
      owner); ``X-Akros-User`` tells the environment who was let in, replacing anything
      the client sent under that name.
    - ``auth-always-set-cookie``: the session cookie of a sign-in is passed on whatever the
      environment's server answers the first request with.
    - No ``auth-cache-key``: a cached verdict keyed on less than the credentials and the
      host would let one person's answer serve another; the check costs the gateway one
      Redis read for a token and none for a cookie.
    """
    return {
        f"{INGRESS_NGINX}auth-url": f"{platform.auth_url}?host={host}",
        f"{INGRESS_NGINX}auth-signin": platform.sign_in_url,
        f"{INGRESS_NGINX}auth-response-headers": "Authorization, X-Akros-User",
        f"{INGRESS_NGINX}auth-always-set-cookie": "true",
    }


def environment_tls(host: str, platform: EnvironmentPlatform) -> Manifest:
    """TLS for the environment's host: the session cookie is Secure and tokens are sent to
    it, so it is never served in the clear (ingress-nginx redirects http to https for a
    host with TLS). Without a secret name the controller's default certificate serves it."""
    tls: Manifest = {"hosts": [host]}
    if platform.tls_secret_name:
        tls["secretName"] = platform.tls_secret_name
    return tls


def environment_url(owner: str, name: str, domain: str) -> str:
    return f"https://{environment_host(owner, name, domain)}/"
