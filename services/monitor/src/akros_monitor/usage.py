"""What environments use, as pure functions of what the cluster reports.

Pods are reduced once, as the pod watch delivers them, to ``EnvironmentPod`` (whose, what it
requests, since when); each cycle then joins them with one list of metrics.k8s.io pod
metrics and the GPU readings, so the cost of a cycle is a constant number of list calls (pod
and node metrics, the dcgm-exporter pods) plus one scrape per GPU node, and a pass over plain
tuples, however many pods there are.

GPU utilisation comes from NVIDIA's dcgm-exporter, which runs one pod per GPU node and knows
only that node's GPUs: every exporter pod is found through the API and scraped, and a GPU that
no answering exporter reports is unknown, never idle.
"""

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from akros_monitor.capacity import Amounts, add_amounts, pod_requests, resources
from akros_monitor.underuse import EnvironmentUse
from akros_msgs import UsageSample
from akros_msgs.names import MAX_PART_LENGTH, check_label
from akros_msgs.quantity import QuantityError, cpu_millicores, memory_bytes
from akros_policy.naming import (
    LABEL_ENV,
    LABEL_KIND,
    LABEL_OWNER,
    LABEL_PROFILE,
    LABEL_UNDERUSE_EXEMPT,
    WorkloadKind,
)
from akros_readmodel import UsagePoint

GPU_UTILISATION_METRIC = "DCGM_FI_DEV_GPU_UTIL"
"""dcgm-exporter's per-GPU utilisation, in percent."""


@dataclass(frozen=True)
class GpuExporter:
    """One dcgm-exporter pod, which reports the GPUs of its node."""

    node: str
    namespace: str
    pod: str


def gpu_exporters(pods: Iterable[Mapping[str, Any]]) -> list[GpuExporter]:
    """The exporter pods that can answer now (running on a node, not terminating), one per
    node: while a DaemonSet replaces a node's pod, either one reports the same GPUs."""
    by_node: dict[str, GpuExporter] = {}
    for pod in pods:
        metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        node = spec.get("nodeName")
        running = (pod.get("status") or {}).get("phase") == "Running"
        if not node or not running or metadata.get("deletionTimestamp"):
            continue
        by_node.setdefault(
            str(node), GpuExporter(str(node), str(metadata.get("namespace", "")), metadata["name"])
        )
    return sorted(by_node.values(), key=lambda exporter: exporter.node)


@dataclass(frozen=True)
class GpuReadings:
    """What the exporters said this cycle: utilisation per "namespace/pod" from the exporters
    that answered, and the nodes whose exporter did not (their GPUs' use is unknown)."""

    per_pod: Mapping[str, float] = field(default_factory=dict)
    silent_nodes: frozenset[str] = frozenset()
    answering_nodes: frozenset[str] = frozenset()


def gpu_readings(answers: Mapping[GpuExporter, str | None]) -> GpuReadings:
    """Joins every exporter's answer (None: it did not answer); each knows only its node."""
    per_pod: dict[str, float] = {}
    silent, answering = set(), set()
    for exporter, exposition in answers.items():
        if exposition is None:
            silent.add(exporter.node)
            continue
        try:
            per_pod |= gpu_utilisation(exposition)
        except ValueError:
            silent.add(exporter.node)  # an answer that is no exposition says nothing
            continue
        answering.add(exporter.node)
    return GpuReadings(per_pod, frozenset(silent), frozenset(answering))


@dataclass(frozen=True)
class EnvironmentPod:
    """A running pod of a researcher's environment, as far as its usage is concerned."""

    owner: str
    name: str
    requested: Amounts
    started_at: datetime | None
    exempt_by_label: bool
    profile: str | None
    """The catalog profile it was created from (its akros.io/profile label), if any."""


def environment_pod(pod: Mapping[str, Any]) -> EnvironmentPod | None:
    """The pod as an environment's, or None when it is no environment's or not running."""
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    if labels.get(LABEL_KIND) != WorkloadKind.ENVIRONMENT.value:
        return None
    owner, name = str(labels.get(LABEL_OWNER, "")), str(labels.get(LABEL_ENV, ""))
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return None
    try:
        check_label(owner, max_length=MAX_PART_LENGTH)
        check_label(name, max_length=MAX_PART_LENGTH)
    except ValueError:
        return None  # labelled by hand, not by the platform: nobody to notify
    started = status.get("startTime")
    return EnvironmentPod(
        owner=owner,
        name=name,
        requested=pod_requests(pod),
        started_at=datetime.fromisoformat(started) if started else None,
        exempt_by_label=str(labels.get(LABEL_UNDERUSE_EXEMPT, "")).lower() == "true",
        profile=str(labels[LABEL_PROFILE]) if LABEL_PROFILE in labels else None,
    )


def is_exempt(pod: EnvironmentPod, exempt_profiles: Set[str]) -> bool:
    """Whether the pod's environment is spared under-use nudges: labelled exempt, or created
    from a profile that the catalog, as the monitor loaded it, marks underuse_exempt. The
    catalog decides, not the pod: a profile since removed from it (or no longer exempt)
    exempts nothing."""
    return pod.exempt_by_label or (pod.profile is not None and pod.profile in exempt_profiles)


def _cpu_memory(usage: Mapping[str, Any]) -> tuple[int, int]:
    """(CPU millicores, memory bytes) of one metrics.k8s.io usage; QuantityError if malformed."""
    return cpu_millicores(usage.get("cpu", "0")), memory_bytes(usage.get("memory", "0"))


def pod_usage(metrics: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """(CPU millicores, memory bytes) used per "namespace/pod", from metrics.k8s.io PodMetrics."""
    used: dict[str, tuple[int, int]] = {}
    for item in metrics:
        metadata = item.get("metadata") or {}
        cpu = memory = 0
        try:
            for container in item.get("containers") or []:
                container_cpu, container_memory = _cpu_memory(container.get("usage") or {})
                cpu += container_cpu
                memory += container_memory
        except QuantityError:
            continue  # a malformed report says nothing; the pod counts as unmeasured
        used[f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"] = (cpu, memory)
    return used


def node_usage(metrics: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """(CPU millicores, memory bytes) used per node, from metrics.k8s.io NodeMetrics."""
    used: dict[str, tuple[int, int]] = {}
    for item in metrics:
        try:
            used[str((item.get("metadata") or {}).get("name", ""))] = _cpu_memory(
                item.get("usage") or {}
            )
        except QuantityError:
            continue  # a malformed report says nothing; the node counts as unmeasured
    return used


def gpu_utilisation(exposition: str) -> dict[str, float]:
    """Mean GPU utilisation (0..1) per "namespace/pod" from dcgm-exporter's text format; GPUs
    held by no pod are left out."""
    per_pod: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != GPU_UTILISATION_METRIC:
            continue
        for sample in family.samples:
            pod = sample.labels.get("pod")
            if not pod:
                continue
            key = f"{sample.labels.get('namespace', '')}/{pod}"
            per_pod.setdefault(key, []).append(min(max(sample.value / 100, 0.0), 1.0))
    return {key: sum(values) / len(values) for key, values in per_pod.items()}


def usage_sample(
    key: str,
    pod: EnvironmentPod,
    used: tuple[int, int],
    gpu: float | None,
) -> UsageSample:
    namespace, _, workload = key.partition("/")
    # Built without validation: every field was checked as the pod and its metrics were
    # reduced, and validating 20,000 samples again would cost most of a cycle.
    return UsageSample.model_construct(
        namespace=namespace,
        workload=workload,
        owner=pod.owner,
        environment=pod.name,
        requested=resources(pod.requested),
        cpu_used_millis=used[0],
        memory_used_bytes=used[1],
        gpu_utilisation=gpu if pod.requested[2] else None,
    )


def usage_samples(
    pods: Mapping[str, EnvironmentPod],
    used: Mapping[str, tuple[int, int]],
    gpu: Mapping[str, float],
) -> list[UsageSample]:
    """One sample per environment pod that metrics.k8s.io measured."""
    return [
        usage_sample(key, pod, used[key], gpu.get(key)) for key, pod in pods.items() if key in used
    ]


EnvironmentKey = tuple[str, str]
"""(owner, environment name)."""


def environment_uses(
    pods: Mapping[str, EnvironmentPod],
    used: Mapping[str, tuple[int, int]],
    gpu: Mapping[str, float],
    exempt_profiles: Set[str],
    idle_stops: Mapping[str, float] | None = None,
) -> dict[EnvironmentKey, EnvironmentUse]:
    """Each measured environment's use, its pods added up (GPU utilisation averaged over its
    GPUs, unknown when any of them is); the oldest pod's start counts, and any exempt pod
    (``is_exempt``, with the catalog's ``exempt_profiles``) exempts it. A pod of a profile in
    ``idle_stops`` (the catalog's, seconds by profile) gives it that idle stop."""
    stops = idle_stops or {}
    uses: dict[EnvironmentKey, EnvironmentUse] = {}
    for key, pod in pods.items():
        if key not in used:
            continue
        cpu, memory = used[key]
        pod_gpu = gpu.get(key) if pod.requested[2] else None
        exempt = is_exempt(pod, exempt_profiles)
        wait_s = stops.get(pod.profile) if pod.profile is not None else None
        idle_stop_after = None if wait_s is None else timedelta(seconds=wait_s)
        env = (pod.owner, pod.name)
        known = uses.get(env)
        if known is None:
            uses[env] = EnvironmentUse(
                requested=pod.requested,
                cpu_used_millis=cpu,
                memory_used_bytes=memory,
                gpu_utilisation=pod_gpu,
                started_at=pod.started_at,
                exempt=exempt,
                idle_stop_after=idle_stop_after,
            )
            continue
        uses[env] = EnvironmentUse(
            requested=add_amounts(known.requested, pod.requested),
            cpu_used_millis=known.cpu_used_millis + cpu,
            memory_used_bytes=known.memory_used_bytes + memory,
            gpu_utilisation=_weighted_gpu(known, pod.requested[2], pod_gpu),
            started_at=_earliest(known.started_at, pod.started_at),
            exempt=known.exempt or exempt,
            idle_stop_after=known.idle_stop_after or idle_stop_after,
        )
    return uses


def _weighted_gpu(known: EnvironmentUse, gpus: int, utilisation: float | None) -> float | None:
    """The GPU use of ``known`` and one more pod of ``gpus`` GPUs at ``utilisation``, weighted
    by GPUs. One GPU of unknown use makes the whole environment's unknown: a known idle GPU
    must not speak for one whose exporter did not answer."""
    if not gpus:
        return known.gpu_utilisation
    if not known.gpus:
        return utilisation
    if utilisation is None or known.gpu_utilisation is None:
        return None
    return (known.gpu_utilisation * known.gpus + utilisation * gpus) / (known.gpus + gpus)


def _earliest(left: datetime | None, right: datetime | None) -> datetime | None:
    if left is None or right is None:
        return left or right
    return min(left, right)


@dataclass
class _Sums:
    samples: int = 0
    cpu_requested: int = 0
    cpu_used: int = 0
    memory_requested: int = 0
    memory_used: int = 0
    gpus: int = 0
    gpu_samples: int = 0
    gpu_utilisation: float = 0.0


@dataclass
class HistoryStep:
    """Each environment's samples added up since the step began; at its end, their means
    become one history point. Downsampling to one point per step keeps a week of history per
    environment a fixed, small number of points however often usage is sampled."""

    sums: dict[EnvironmentKey, _Sums] = field(default_factory=dict)

    def add(self, uses: Mapping[EnvironmentKey, EnvironmentUse]) -> None:
        for key, use in uses.items():
            sums = self.sums.setdefault(key, _Sums())
            sums.samples += 1
            sums.cpu_requested += use.requested[0]
            sums.cpu_used += use.cpu_used_millis
            sums.memory_requested += use.requested[1]
            sums.memory_used += use.memory_used_bytes
            sums.gpus += use.gpus
            if use.gpu_utilisation is not None:
                sums.gpu_samples += 1
                sums.gpu_utilisation += use.gpu_utilisation

    def close(self, at: datetime) -> dict[EnvironmentKey, UsagePoint]:
        """The step's points, stamped ``at``; the next step starts empty."""
        points = {
            key: UsagePoint(
                at=at,
                cpu_requested_millis=s.cpu_requested // s.samples,
                cpu_used_millis=s.cpu_used // s.samples,
                memory_requested_bytes=s.memory_requested // s.samples,
                memory_used_bytes=s.memory_used // s.samples,
                gpus=s.gpus // s.samples,
                gpu_utilisation=s.gpu_utilisation / s.gpu_samples if s.gpu_samples else None,
            )
            for key, s in self.sums.items()
        }
        self.sums = {}
        return points
