"""Simulated resource usage: annotations on a pod say how busy it is; metrics derive from that.

Annotations (on the pod; pods of a Deployment inherit them from its template):
  kubesim.akros.io/usage-profile    idle | normal | busy      (default normal)
  kubesim.akros.io/cpu-usage        a profile name or a CPU quantity for the whole pod ("1500m")
  kubesim.akros.io/memory-usage     a profile name or a memory quantity for the whole pod ("2Gi")
  kubesim.akros.io/gpu-utilization  a profile name or a percentage 0-100 for each of its GPUs
A profile is a fraction of what the pod requested (its limit when it requested nothing).
"""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from akros_kubesim.cluster import GPU_MODEL_ANNOTATION, GPU_RESOURCE
from akros_kubesim.quantity import QuantityError, format_bytes, millicores, whole_units

ANNOTATION_PREFIX = "kubesim.akros.io/"
PROFILE_ANNOTATION = ANNOTATION_PREFIX + "usage-profile"
CPU_ANNOTATION = ANNOTATION_PREFIX + "cpu-usage"
MEMORY_ANNOTATION = ANNOTATION_PREFIX + "memory-usage"
GPU_ANNOTATION = ANNOTATION_PREFIX + "gpu-utilization"


@dataclass(frozen=True)
class Profile:
    cpu: float
    memory: float
    gpu: float  # percent


PROFILES = {
    "idle": Profile(cpu=0.01, memory=0.05, gpu=0.0),
    "normal": Profile(cpu=0.3, memory=0.4, gpu=40.0),
    "busy": Profile(cpu=0.95, memory=0.8, gpu=97.0),
}
DEFAULT_PROFILE = "normal"
# What a container with neither requests nor limits is assumed to be sized like.
_UNSIZED_CPU_MILLI = 100
_UNSIZED_MEMORY = 128 * 2**20
# The kubelet, container runtime and system daemons, present on every node.
NODE_BASELINE_CPU_MILLI = 250
NODE_BASELINE_MEMORY = 2**30


@dataclass(frozen=True)
class ContainerUsage:
    name: str
    cpu_nanocores: int
    memory_bytes: int


@dataclass(frozen=True)
class PodUsage:
    containers: tuple[ContainerUsage, ...]
    gpu_utilization: float

    @property
    def cpu_nanocores(self) -> int:
        return sum(c.cpu_nanocores for c in self.containers)

    @property
    def memory_bytes(self) -> int:
        return sum(c.memory_bytes for c in self.containers)


def _size(container: Mapping[str, Any], resource: str) -> int:
    resources = container.get("resources") or {}
    value = (resources.get("requests") or {}).get(resource) or (resources.get("limits") or {}).get(
        resource
    )
    try:
        if value is not None:
            return millicores(value) if resource == "cpu" else whole_units(value)
    except QuantityError:
        pass
    return _UNSIZED_CPU_MILLI if resource == "cpu" else _UNSIZED_MEMORY


def _profile(annotations: Mapping[str, str], name: str | None) -> Profile:
    chosen = name if name in PROFILES else annotations.get(PROFILE_ANNOTATION, DEFAULT_PROFILE)
    return PROFILES.get(chosen or DEFAULT_PROFILE, PROFILES[DEFAULT_PROFILE])


def pod_usage(pod: Mapping[str, Any]) -> PodUsage:
    """A running pod's usage as its annotations describe it."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    containers = (pod.get("spec") or {}).get("containers") or []
    count = max(len(containers), 1)
    cpu_setting = annotations.get(CPU_ANNOTATION)
    memory_setting = annotations.get(MEMORY_ANNOTATION)
    gpu_setting = annotations.get(GPU_ANNOTATION)
    results = []
    for container in containers:
        if cpu_setting and cpu_setting not in PROFILES:
            try:
                cpu_nano = millicores(cpu_setting) * 1_000_000 // count
            except QuantityError:
                cpu_nano = 0
        else:
            cpu_nano = int(
                _size(container, "cpu") * _profile(annotations, cpu_setting).cpu * 1_000_000
            )
        if memory_setting and memory_setting not in PROFILES:
            try:
                memory = whole_units(memory_setting) // count
            except QuantityError:
                memory = 0
        else:
            memory = int(_size(container, "memory") * _profile(annotations, memory_setting).memory)
        results.append(ContainerUsage(container.get("name", ""), cpu_nano, memory))
    if gpu_setting and gpu_setting not in PROFILES:
        try:
            gpu = min(max(float(gpu_setting), 0.0), 100.0)
        except ValueError:
            gpu = 0.0
    else:
        gpu = _profile(annotations, gpu_setting).gpu
    return PodUsage(tuple(results), gpu)


def _metrics_metadata(obj: Mapping[str, Any], timestamp: str) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    result = {"name": metadata.get("name"), "creationTimestamp": timestamp}
    if metadata.get("namespace"):
        result["namespace"] = metadata["namespace"]
    if metadata.get("labels"):
        result["labels"] = metadata["labels"]
    return result


class UsageCache:
    """Running pods' usage, computed again only when a pod changes (a new resourceVersion).

    metrics-server answers from what it last scraped rather than measuring per request; so
    does this. Without it, each list of metrics recomputed the usage of every running pod
    from its annotations and requests: about 0.2 s per list at 20,000 pods, twice per usage
    cycle of the monitor (node and pod metrics).
    """

    def __init__(self) -> None:
        self._by_pod: dict[str, tuple[str, PodUsage]] = {}

    def usages(self, pods: Sequence[Mapping[str, Any]], *, all_running: bool) -> list[PodUsage]:
        """The usage of each of ``pods``, in order. With ``all_running`` (every running pod)
        the pods no longer running are forgotten."""
        kept = {} if all_running else self._by_pod
        result = []
        for pod in pods:
            metadata = pod.get("metadata") or {}
            key = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
            version = str(metadata.get("resourceVersion", ""))
            cached = self._by_pod.get(key)
            usage = cached[1] if cached is not None and cached[0] == version else pod_usage(pod)
            kept[key] = (version, usage)
            result.append(usage)
        self._by_pod = kept
        return result


def pod_metrics(
    pod: Mapping[str, Any], timestamp: str, usage: PodUsage | None = None
) -> dict[str, Any]:
    """``usage`` when it is known already (see UsageCache), else computed."""
    usage = usage or pod_usage(pod)
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": _metrics_metadata(pod, timestamp),
        "timestamp": timestamp,
        "window": "10s",
        "containers": [
            {
                "name": c.name,
                "usage": {"cpu": f"{c.cpu_nanocores}n", "memory": format_bytes(c.memory_bytes)},
            }
            for c in usage.containers
        ],
    }


def node_metrics(
    node: Mapping[str, Any], running_pod_usages: Iterable[PodUsage], timestamp: str
) -> dict[str, Any]:
    cpu_nano = NODE_BASELINE_CPU_MILLI * 1_000_000
    memory = NODE_BASELINE_MEMORY
    for usage in running_pod_usages:
        cpu_nano += usage.cpu_nanocores
        memory += usage.memory_bytes
    return {
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": _metrics_metadata(node, timestamp),
        "timestamp": timestamp,
        "window": "10s",
        "usage": {"cpu": f"{cpu_nano}n", "memory": format_bytes(memory)},
    }


@dataclass(frozen=True)
class GpuAssignment:
    """Which GPUs of its node a pod holds, fixed when the pod is bound."""

    node: str
    devices: tuple[int, ...]


def gpus_requested(pod: Mapping[str, Any]) -> int:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        requests = (container.get("resources") or {}).get("requests") or {}
        value = limits.get(GPU_RESOURCE, requests.get(GPU_RESOURCE))
        if value is not None:
            try:
                total += whole_units(value)
            except QuantityError:
                continue
    return total


def _gpu_container(pod: Mapping[str, Any]) -> str:
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        if GPU_RESOURCE in (resources.get("limits") or {}) or GPU_RESOURCE in (
            resources.get("requests") or {}
        ):
            return str(container.get("name", ""))
    return ""


# The metrics dcgm-exporter's default counters file exports, with their Prometheus types.
_DCGM_METRICS = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
)
_FRAMEBUFFER_MIB = 81920
_IDLE_POWER_W, _MAX_POWER_W = 60.0, 400.0


def _power_watts(utilization: float) -> float:
    return _IDLE_POWER_W + (_MAX_POWER_W - _IDLE_POWER_W) * utilization / 100


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def dcgm_exposition(
    nodes: Sequence[Mapping[str, Any]],
    pods_by_uid: Mapping[str, Mapping[str, Any]],
    assignments: Mapping[str, GpuAssignment],
) -> str:
    """Prometheus text as dcgm-exporter serves it with Kubernetes pod mapping enabled."""
    holders: dict[tuple[str, int], Mapping[str, Any]] = {}
    for uid, assignment in assignments.items():
        if uid in pods_by_uid:
            for device in assignment.devices:
                holders[(assignment.node, device)] = pods_by_uid[uid]
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _DCGM_METRICS}
    for node in nodes:
        name = node["metadata"]["name"]
        capacity = ((node.get("status") or {}).get("capacity") or {}).get(GPU_RESOURCE)
        if not capacity:
            continue
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        model = annotations.get(GPU_MODEL_ANNOTATION, "NVIDIA A100-SXM4-80GB")
        for device in range(int(capacity)):
            labels = {
                "gpu": str(device),
                "UUID": "GPU-" + hashlib.sha256(f"{name}/{device}".encode()).hexdigest()[:32],
                "device": f"nvidia{device}",
                "modelName": model,
                "Hostname": name,
            }
            pod = holders.get((name, device))
            utilization = 0.0
            if pod is not None and (pod.get("status") or {}).get("phase") == "Running":
                metadata = pod["metadata"]
                labels |= {
                    "container": _gpu_container(pod),
                    "namespace": metadata.get("namespace", ""),
                    "pod": metadata["name"],
                }
                utilization = pod_usage(pod).gpu_utilization
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            used = int(_FRAMEBUFFER_MIB * utilization / 100 * 0.9)
            values = {
                "DCGM_FI_DEV_GPU_UTIL": f"{utilization:g}",
                "DCGM_FI_DEV_MEM_COPY_UTIL": f"{utilization * 0.6:g}",
                "DCGM_FI_DEV_FB_USED": str(used),
                "DCGM_FI_DEV_FB_FREE": str(_FRAMEBUFFER_MIB - used),
                "DCGM_FI_DEV_POWER_USAGE": f"{_power_watts(utilization):.3f}",
            }
            for metric, value in values.items():
                samples[metric].append(f"{metric}{{{text}}} {value}")
    lines = []
    for metric, kind, help_text in _DCGM_METRICS:
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", *samples[metric]]
    return "\n".join(lines) + "\n"
