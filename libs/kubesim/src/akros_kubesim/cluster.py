"""The cluster file: which nodes exist and how the simulation behaves, read once at start."""

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from akros_kubesim.kubelet import ImageBehaviour, ImageFormatError, parse_image_behaviour
from akros_kubesim.quantity import QuantityError, parse_quantity
from akros_kubesim.store import now_rfc3339

GPU_RESOURCE = "nvidia.com/gpu"
# Where the node records its GPU model for the DCGM exposition (dcgm-exporter reads it from NVML).
GPU_MODEL_ANNOTATION = "kubesim.akros.io/gpu-model"
DEFAULT_FAILING_IMAGE_PATTERN = r"(^|/)[^/]*\.invalid/"
# A current release, so today's kubectl prints no version-skew warning; a cluster file may
# name another (the default one names RKE2's build of it).
DEFAULT_KUBERNETES_VERSION = "v1.37.1"
_VERSION_PATTERN = re.compile(r"^v(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.+-]+)?$")
# The labels RKE2 gives a server (control-plane) node; `kubectl get nodes` shows them as roles.
SERVER_ROLE_LABELS = {
    "node-role.kubernetes.io/control-plane": "true",
    "node-role.kubernetes.io/etcd": "true",
    "node-role.kubernetes.io/master": "true",
}
# Memory per GPU (MiB) of the models we know, for GPU feature discovery's nvidia.com/gpu.memory.
_GPU_MEMORY_MIB = {
    "NVIDIA A100-SXM4-80GB": 81920,
    "NVIDIA A100-SXM4-40GB": 40960,
    "NVIDIA A100-PCIE-40GB": 40960,
    "NVIDIA H100 80GB HBM3": 81559,
    "NVIDIA L40S": 46068,
    "NVIDIA GeForce RTX 4090": 24564,
}
_GPU_FAMILY = {
    "A100": "ampere",
    "H100": "hopper",
    "L40S": "ada-lovelace",
    "RTX 4090": "ada-lovelace",
}


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
    role: str = "agent"
    """RKE2's word: a `server` runs the control plane (and gets its role labels)."""


@dataclass(frozen=True)
class ClusterConfig:
    nodes: tuple[NodeSpec, ...]
    pod_start_seconds: float = 1.0
    failing_image_pattern: str = DEFAULT_FAILING_IMAGE_PATTERN
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    gpu_operator: bool = True
    """Run what NVIDIA's GPU operator runs (the dcgm-exporter DaemonSet) when GPU nodes exist."""
    objects: tuple[dict[str, Any], ...] = ()
    """Manifests created at start, in order, after the nodes (as `kubectl create -f`)."""
    image_defaults: ImageBehaviour = field(default_factory=ImageBehaviour)
    """How an image no `images:` entry matches behaves."""
    images: tuple[ImageBehaviour, ...] = ()
    """Per image pattern, first match wins: size, pull time, failures, crashes, readiness."""


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
    role = str(entry.get("role", "agent"))
    if role not in ("agent", "server"):
        raise ClusterFileError(f"nodes[{index}] ({name}): role must be agent or server")
    return NodeSpec(
        role=role,
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


def _images(document: dict[str, Any]) -> tuple[ImageBehaviour, tuple[ImageBehaviour, ...]]:
    defaults_entry = document.get("imageDefaults") or {}
    entries = document.get("images") or []
    if not isinstance(defaults_entry, dict) or not isinstance(entries, list):
        raise ClusterFileError("imageDefaults must be a mapping and images a list")
    try:
        defaults = parse_image_behaviour(defaults_entry, "imageDefaults", ImageBehaviour())
        images = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not entry.get("pattern"):
                raise ClusterFileError(f"images[{index}]: a pattern is required")
            images.append(parse_image_behaviour(entry, f"images[{index}]", defaults))
    except ImageFormatError as error:
        raise ClusterFileError(str(error)) from error
    return defaults, tuple(images)


def parse_cluster(document: dict[str, Any]) -> ClusterConfig:
    entries = document.get("nodes") or []
    if not isinstance(entries, list):
        raise ClusterFileError("nodes must be a list")
    version = str(document.get("kubernetesVersion", DEFAULT_KUBERNETES_VERSION))
    if not _VERSION_PATTERN.match(version):
        raise ClusterFileError(f"kubernetesVersion {version!r} is not a version like v1.37.1")
    image_defaults, images = _images(document)
    return ClusterConfig(
        image_defaults=image_defaults,
        images=images,
        kubernetes_version=version,
        gpu_operator=bool(document.get("gpuOperator", True)),
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


def version_document(version: str) -> dict[str, str]:
    """The /version fields a server of this release answers (gitVersion as the build names it)."""
    matched = _VERSION_PATTERN.match(version)
    if matched is None:
        raise ValueError(f"not a Kubernetes version: {version}")
    return {"major": matched.group(1), "minor": matched.group(2), "gitVersion": version}


def gpu_feature_labels(spec: NodeSpec) -> dict[str, str]:
    """The labels NVIDIA's GPU feature discovery (GPU operator) puts on a GPU node."""
    if not spec.gpus:
        return {}
    labels = {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": str(spec.gpus),
        "nvidia.com/gpu.product": spec.gpu_model.replace(" ", "-"),
        "nvidia.com/gpu.deploy.dcgm-exporter": "true",
        "nvidia.com/gpu.deploy.device-plugin": "true",
        "nvidia.com/cuda.driver.major": "570",
        "nvidia.com/cuda.runtime.major": "12",
        "feature.node.kubernetes.io/pci-10de.present": "true",
    }
    if spec.gpu_model in _GPU_MEMORY_MIB:
        labels["nvidia.com/gpu.memory"] = str(_GPU_MEMORY_MIB[spec.gpu_model])
    family = next((f for model, f in _GPU_FAMILY.items() if model in spec.gpu_model), None)
    if family is not None:
        labels["nvidia.com/gpu.family"] = family
    return labels


def node_object(
    spec: NodeSpec, index: int, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> dict[str, Any]:
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
    }
    if spec.role == "server":
        labels |= SERVER_ROLE_LABELS
    labels |= gpu_feature_labels(spec) | spec.labels
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
        "metadata": {"name": spec.name, "labels": labels},
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
                "kubeletVersion": kubernetes_version,
                "kubeProxyVersion": kubernetes_version,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
    # No empty annotations or images: both are omitempty, and the API server leaves them out.
    if spec.gpus:
        node["metadata"]["annotations"] = {GPU_MODEL_ANNOTATION: spec.gpu_model}
    if spec.taints:
        node["spec"]["taints"] = [dict(t) for t in spec.taints]
    return node
