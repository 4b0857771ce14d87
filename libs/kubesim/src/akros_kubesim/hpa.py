"""The horizontal pod autoscaler's decision, as kube-controller-manager computes it: pure."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from akros_kubesim.quantity import QuantityError, millicores, whole_units
from akros_kubesim.scheduler import pod_requests
from akros_kubesim.usage import pod_usage

# A change of less than 10% from the target is not acted on (--horizontal-pod-autoscaler-tolerance).
TOLERANCE = 0.1
_DEFAULT_METRICS: list[dict[str, Any]] = [
    {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
]


@dataclass(frozen=True)
class MetricReading:
    """One metric's current value: average usage per pod, and its share of the requests."""

    name: str
    average_value: int  # millicores for cpu, bytes for memory
    average_utilization: int | None


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    readings: tuple[MetricReading, ...]


def _usage(pod: Mapping[str, Any], resource: str) -> int:
    measured = pod_usage(pod)
    return measured.cpu_nanocores // 1_000_000 if resource == "cpu" else measured.memory_bytes


def _target_amount(resource: str, value: object) -> int:
    try:
        return millicores(value) if resource == "cpu" else whole_units(value)
    except QuantityError:
        return 0


def recommend(
    spec: Mapping[str, Any], current_replicas: int, pods: Sequence[Mapping[str, Any]]
) -> Recommendation:
    """The replica count the metrics ask for, before min/max and stabilisation.

    pods are the target's ready pods. Only Resource metrics (cpu, memory) are simulated;
    other metric types leave the count as it is.
    """
    if not pods or current_replicas == 0:
        return Recommendation(current_replicas, ())
    proposals = []
    readings = []
    for metric in spec.get("metrics") or _DEFAULT_METRICS:
        if metric.get("type") != "Resource":
            continue
        resource = metric["resource"]["name"]
        target = metric["resource"].get("target") or {}
        used = sum(_usage(p, resource) for p in pods)
        requested = sum(pod_requests(p).get(resource, 0) for p in pods)
        utilization = round(100 * used / requested) if requested else None
        readings.append(MetricReading(resource, used // len(pods), utilization))
        if target.get("type") == "Utilization":
            if not utilization or not target.get("averageUtilization"):
                continue
            ratio = utilization / int(target["averageUtilization"])
        else:
            goal = _target_amount(resource, target.get("averageValue"))
            if not goal:
                continue
            ratio = (used / len(pods)) / goal
        if abs(ratio - 1) <= TOLERANCE:
            proposals.append(current_replicas)
        else:
            proposals.append(math.ceil(len(pods) * ratio))
    return Recommendation(max(proposals) if proposals else current_replicas, tuple(readings))


def bounded(spec: Mapping[str, Any], replicas: int) -> int:
    return min(max(replicas, int(spec.get("minReplicas") or 1)), int(spec["maxReplicas"]))


def stabilised(
    recent: Sequence[tuple[float, int]], now: float, window: float, wanted: int, current: int
) -> int:
    """Scale-down waits: the highest recommendation within the window wins (default 300 s)."""
    if wanted >= current:
        return wanted
    in_window = [replicas for when, replicas in recent if now - when <= window]
    return max([wanted, *in_window])


def scale_down_window(spec: Mapping[str, Any]) -> float:
    behaviour = ((spec.get("behavior") or {}).get("scaleDown")) or {}
    return float(behaviour.get("stabilizationWindowSeconds", 300))


def current_metrics(readings: Sequence[MetricReading]) -> list[dict[str, Any]]:
    metrics = []
    for reading in readings:
        value = f"{reading.average_value}m" if reading.name == "cpu" else str(reading.average_value)
        current: dict[str, Any] = {"averageValue": value}
        if reading.average_utilization is not None:
            current["averageUtilization"] = reading.average_utilization
        metrics.append({"type": "Resource", "resource": {"name": reading.name, "current": current}})
    return metrics
