"""What NVIDIA's GPU operator runs on a cluster with GPU nodes, as far as the platform sees it:
the dcgm-exporter DaemonSet (one pod per GPU node, each exporting only its own node's GPUs)
and the Service in front of it.

A real exporter pod is scraped at its pod IP, or through the API server's pod proxy
(`/api/v1/namespaces/gpu-operator/pods/<pod>:9400/proxy/metrics`); kubesim serves the proxy
path, since its pod IPs lead nowhere.
"""

from collections.abc import Mapping
from typing import Any

NAMESPACE = "gpu-operator"
EXPORTER_NAME = "nvidia-dcgm-exporter"
EXPORTER_PORT = 9400
EXPORTER_LABELS = {"app": EXPORTER_NAME}
EXPORTER_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04"
# The operator's node selector for the exporter: GPU feature discovery sets it on GPU nodes.
EXPORTER_NODE_SELECTOR = {"nvidia.com/gpu.deploy.dcgm-exporter": "true"}


def gpu_operator_objects() -> tuple[dict[str, Any], ...]:
    """The namespace, exporter DaemonSet and Service the operator creates (its Helm defaults)."""
    labels = EXPORTER_LABELS | {"app.kubernetes.io/managed-by": "gpu-operator"}
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": EXPORTER_NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": dict(EXPORTER_LABELS)},
            "template": {
                "metadata": {"labels": dict(EXPORTER_LABELS)},
                "spec": {
                    "nodeSelector": dict(EXPORTER_NODE_SELECTOR),
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "priorityClassName": "system-node-critical",
                    "containers": [
                        {
                            "name": EXPORTER_NAME,
                            "image": EXPORTER_IMAGE,
                            "ports": [{"name": "metrics", "containerPort": EXPORTER_PORT}],
                            "env": [
                                {"name": "DCGM_EXPORTER_LISTEN", "value": f":{EXPORTER_PORT}"},
                                {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},
                            ],
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": EXPORTER_NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": dict(EXPORTER_LABELS),
            "ports": [{"name": "gpu-metrics", "port": EXPORTER_PORT, "targetPort": EXPORTER_PORT}],
        },
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    return (namespace, daemonset, service)


def is_exporter_pod(pod: Mapping[str, Any]) -> bool:
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    return bool(
        metadata.get("namespace") == NAMESPACE
        and all(labels.get(k) == v for k, v in EXPORTER_LABELS.items())
    )


def parse_proxy_target(name: str) -> tuple[str, str, int | None]:
    """`[scheme:]name[:port]` of the proxy path, as the API server reads it."""
    parts = name.split(":")
    if len(parts) == 3:
        scheme, pod, port = parts
    elif len(parts) == 2:
        scheme, (pod, port) = "", parts
    else:
        scheme, pod, port = "", parts[0], ""
    if port and not port.isdigit():
        raise ValueError(f"invalid port {port!r}")
    return scheme, pod, int(port) if port else None
