"""The monitor's Prometheus metrics: what environments request and use, what nodes offer and
hold, and how many environments are under-used. Gauges are refilled each cycle, so an
environment or node that is gone stops being reported."""

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge

from akros_monitor.capacity import ClusterCapacity
from akros_monitor.underuse import EnvironmentUse
from akros_monitor.usage import EnvironmentKey

_ENV = ("owner", "environment")


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.cpu_requested = Gauge(
            "akros_environment_cpu_requested_cores", "CPU requested", _ENV, registry=r
        )
        self.cpu_used = Gauge("akros_environment_cpu_used_cores", "CPU used", _ENV, registry=r)
        self.memory_requested = Gauge(
            "akros_environment_memory_requested_bytes", "Memory requested", _ENV, registry=r
        )
        self.memory_used = Gauge(
            "akros_environment_memory_used_bytes", "Memory used", _ENV, registry=r
        )
        self.gpus_requested = Gauge(
            "akros_environment_gpus_requested", "GPUs requested", _ENV, registry=r
        )
        self.gpu_utilisation = Gauge(
            "akros_environment_gpu_utilisation_ratio",
            "Mean utilisation of the environment's GPUs (0..1), where known",
            _ENV,
            registry=r,
        )
        self.node_cpu_allocatable = Gauge(
            "akros_node_cpu_allocatable_cores", "CPU allocatable", ("node",), registry=r
        )
        self.node_cpu_requested = Gauge(
            "akros_node_cpu_requested_cores", "CPU requested by pods", ("node",), registry=r
        )
        self.node_memory_allocatable = Gauge(
            "akros_node_memory_allocatable_bytes", "Memory allocatable", ("node",), registry=r
        )
        self.node_memory_requested = Gauge(
            "akros_node_memory_requested_bytes", "Memory requested by pods", ("node",), registry=r
        )
        self.node_gpus_allocatable = Gauge(
            "akros_node_gpus_allocatable", "GPUs allocatable", ("node",), registry=r
        )
        self.node_gpus_requested = Gauge(
            "akros_node_gpus_requested", "GPUs requested by pods", ("node",), registry=r
        )
        self.underused = Gauge(
            "akros_underused_environments",
            "Environments under-used for longer than the grace period",
            registry=r,
        )

    def record_environments(self, uses: Mapping[EnvironmentKey, EnvironmentUse]) -> None:
        per_environment = (
            self.cpu_requested,
            self.cpu_used,
            self.memory_requested,
            self.memory_used,
            self.gpus_requested,
            self.gpu_utilisation,
        )
        for gauge in per_environment:
            gauge.clear()
        for (owner, name), use in uses.items():
            self.cpu_requested.labels(owner, name).set(use.requested[0] / 1000)
            self.cpu_used.labels(owner, name).set(use.cpu_used_millis / 1000)
            self.memory_requested.labels(owner, name).set(use.requested[1])
            self.memory_used.labels(owner, name).set(use.memory_used_bytes)
            self.gpus_requested.labels(owner, name).set(use.gpus)
            if use.gpu_utilisation is not None:
                self.gpu_utilisation.labels(owner, name).set(use.gpu_utilisation)

    def record_nodes(self, capacity: ClusterCapacity) -> None:
        per_node = (
            self.node_cpu_allocatable,
            self.node_cpu_requested,
            self.node_memory_allocatable,
            self.node_memory_requested,
            self.node_gpus_allocatable,
            self.node_gpus_requested,
        )
        for gauge in per_node:
            gauge.clear()
        for node in capacity.nodes:
            requested = node.requested.total
            self.node_cpu_allocatable.labels(node.node).set(node.allocatable.cpu_millis / 1000)
            self.node_cpu_requested.labels(node.node).set(requested.cpu_millis / 1000)
            self.node_memory_allocatable.labels(node.node).set(node.allocatable.memory_bytes)
            self.node_memory_requested.labels(node.node).set(requested.memory_bytes)
            self.node_gpus_allocatable.labels(node.node).set(node.allocatable.gpus)
            self.node_gpus_requested.labels(node.node).set(requested.gpus)
