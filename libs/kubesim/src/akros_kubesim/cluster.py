"""The cluster file: which nodes exist and how the simulation behaves, read once at start."""

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from akros_kubesim.quantity import QuantityError, parse_quantity
from akros_kubesim.store import now_rfc3339

GPU_RESOURCE = "nvidia.com/gpu"
# Where the node records its GPU model for the DCGM exposition (dcgm-exporter reads it from NVML).
GPU_MODEL_ANNOTATION = "kubesim.akros.io/gpu-model"
DEFAULT_FAILING_IMAGE_PATTERN = r"(^|/)[^/]*\.invalid/"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpu: str
    memory: str
    gpus: int = 0
    gpu_model: str = "NVIDIA A100-SXM4-80GB"
    max_pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class ClusterConfig:
    nodes: tuple[NodeSpec, ...]
    pod_start_seconds: float = 1.0
    failing_image_pattern: str = DEFAULT_FAILING_IMAGE_PATTERN
    objects: tuple[dict[str, Any], ...] = ()
    """Manifests created at start, in order, after the nodes (as `kubectl create -f`)."""


class ClusterFileError(ValueError):
    """The cluster file is not usable; the message says which entry and why."""


def _node_spec(entry: dict[str, Any], index: int) -> NodeSpec:
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ClusterFileError(f"nodes[{index}]: a name is required")
    for resource in ("cpu", "memory"):
        try:
            parse_quantity(entry.get(resource))
        except QuantityError as error:
            raise ClusterFileError(f"nodes[{index}] ({name}): {resource}: {error}") from error
    return NodeSpec(
        name=name,
        cpu=str(entry["cpu"]),
        memory=str(entry["memory"]),
        gpus=int(entry.get(GPU_RESOURCE, 0)),
        gpu_model=str(entry.get("gpuModel", NodeSpec.gpu_model)),
        max_pods=int(entry.get("pods", 110)),
        labels={str(k): str(v) for k, v in (entry.get("labels") or {}).items()},
        taints=tuple(dict(t) for t in entry.get("taints") or []),
    )


def parse_objects(documents: Any, where: str) -> tuple[dict[str, Any], ...]:
    """Manifests to create at start; each needs apiVersion, kind and metadata.name."""
    if not isinstance(documents, list):
        raise ClusterFileError(f"{where}: objects must be a list of manifests")
    for index, document in enumerate(documents):
        if not isinstance(document, dict) or not all(
            document.get(key) for key in ("apiVersion", "kind")
        ):
            raise ClusterFileError(f"{where}[{index}]: a manifest needs apiVersion and kind")
        if not (document.get("metadata") or {}).get("name"):
            raise ClusterFileError(f"{where}[{index}]: a manifest needs metadata.name")
    return tuple(documents)


def load_manifests(path: Path) -> tuple[dict[str, Any], ...]:
    """The manifests of a YAML file (several documents allowed, empty ones skipped)."""
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return parse_objects(documents, str(path))


def parse_cluster(document: dict[str, Any]) -> ClusterConfig:
    entries = document.get("nodes") or []
    if not isinstance(entries, list):
        raise ClusterFileError("nodes must be a list")
    return ClusterConfig(
        nodes=tuple(_node_spec(entry, i) for i, entry in enumerate(entries)),
        pod_start_seconds=float(document.get("podStartSeconds", 1.0)),
        failing_image_pattern=str(
            document.get("failingImagePattern", DEFAULT_FAILING_IMAGE_PATTERN)
        ),
        objects=parse_objects(document.get("objects") or [], "objects"),
    )


def load_cluster(path: Path | None) -> ClusterConfig:
    """The given cluster file, or the default one shipped inside the package."""
    if path is None:
        text = resources.files("akros_kubesim").joinpath("default_cluster.yaml").read_text()
    else:
        text = path.read_text()
    document = yaml.safe_load(text) or {}
    if not isinstance(document, dict):
        raise ClusterFileError("the cluster file must be a mapping")
    return parse_cluster(document)


def node_object(spec: NodeSpec, index: int) -> dict[str, Any]:
    """A Node as a kubelet would register it, complete enough for every client to read."""
    capacity = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": str(spec.max_pods),
        "ephemeral-storage": "1Ti",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    if spec.gpus:
        capacity[GPU_RESOURCE] = str(spec.gpus)
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    } | spec.labels
    machine_id = hashlib.sha256(spec.name.encode()).hexdigest()[:32]
    now = now_rfc3339()

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels, "annotations": {}},
        "spec": {"podCIDR": f"10.42.{index}.0/24", "podCIDRs": [f"10.42.{index}.0/24"]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{index // 250}.{index % 250 + 1}"},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": machine_id,
                "systemUUID": machine_id,
                "bootID": machine_id[::-1],
                "kernelVersion": "6.1.0-kubesim",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.0-kubesim",
                "kubeletVersion": "v1.37.0-kubesim",
                "kubeProxyVersion": "v1.37.0-kubesim",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [],
        },
    }
    if spec.gpus:
        node["metadata"]["annotations"][GPU_MODEL_ANNOTATION] = spec.gpu_model
    if spec.taints:
        node["spec"]["taints"] = [dict(t) for t in spec.taints]
    return node
