"""The front doors' read-only view of the cluster: an environment's pods, its log and the
Events about it, as `kubectl logs` and `kubectl get events` read them (the gateway's logs and
events routes, the Slack app's "Why is it pending?").

Logs and Events do not go through the bus: a followed log is a stream that lasts as long as
its reader, which a request/answer over Redis Streams cannot carry. The gateway reads the API
with a Role that allows get/list on pods, pods/log and events in the environments' namespace
and nothing else (deploy/base/rbac.yaml). Objects are found by the environment's labels, never
by composing their names.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from akros_bus import get_logger
from akros_intake.errors import ConflictError, UnavailableError
from akros_kube import Cluster, InvalidError, KubeError, NoClusterConfigError, NotFoundError
from akros_policy.cluster_events import (
    ClusterEvent,
    EnvironmentHistory,
    belongs_to_workload,
    oldest_first,
)
from akros_policy.naming import environment_selector


class ClusterReadSettings(BaseModel):
    """The worker's variables for reaching the cluster, for the front doors that read from it
    (a mixin, as ``akros_policy.settings``'s: AKROS_KUBECONFIG, AKROS_ENVIRONMENTS_NAMESPACE)."""

    kubeconfig: Path | None = Field(
        default=None,
        description="Kubeconfig to read pods, logs and events with (the worker's variable); "
        "unset: in-cluster config, then ~/.kube/config",
    )
    kube_proxy_from_environment: bool = Field(
        default=False, description="Reach the API server through HTTPS_PROXY/NO_PROXY"
    )
    environments_namespace: str = Field(
        default="akros-envs", description="Where the worker creates environments"
    )


@dataclass(frozen=True)
class LogSource:
    """Where an environment's log is read from: its newest pod's first container (the
    environment's own; the platform adds no sidecars)."""

    pod: str
    container: str


def log_source(pods: list[dict[str, Any]]) -> LogSource | None:
    """The pod whose log a reader wants: the newest one that is not being deleted, else the
    newest (a stopping environment still has its last words); None without pods."""
    if not pods:
        return None
    by_age = sorted(pods, key=lambda pod: str(pod["metadata"].get("creationTimestamp") or ""))
    alive = [pod for pod in by_age if not pod["metadata"].get("deletionTimestamp")]
    newest = (alive or by_age)[-1]
    containers = (newest.get("spec") or {}).get("containers") or [{}]
    return LogSource(newest["metadata"]["name"], str(containers[0].get("name") or ""))


def _no_log_yet(owner: str, name: str, error: KubeError) -> ConflictError:
    return ConflictError(
        f"{owner}'s environment '{name}' has no log yet ({error.message}): see its events."
    )


def _unavailable(error: KubeError) -> UnavailableError:
    return UnavailableError(f"The cluster did not answer ({error.message}); try again.")


@dataclass(frozen=True)
class EnvironmentReader:
    cluster: Cluster
    namespace: str

    async def _list(self, kind: str, owner: str, name: str) -> list[dict[str, Any]]:
        try:
            items, _ = await self.cluster.list(
                kind, self.namespace, environment_selector(owner, name)
            )
        except KubeError as error:
            raise _unavailable(error) from error
        return items

    async def _source(self, owner: str, name: str) -> LogSource:
        source = log_source(await self._list("Pod", owner, name))
        if source is None:
            raise ConflictError(
                f"{owner}'s environment '{name}' has no running container, so no log: "
                "it is stopped, or not placed on a node yet (see its events)."
            )
        return source

    async def log(self, owner: str, name: str, tail_lines: int) -> str:
        source = await self._source(owner, name)
        try:
            return await self.cluster.pod_log(
                self.namespace, source.pod, source.container, tail_lines=tail_lines
            )
        except (InvalidError, NotFoundError) as error:  # not started yet, or gone meanwhile
            raise _no_log_yet(owner, name, error) from error
        except KubeError as error:
            raise _unavailable(error) from error

    async def follow_log(self, owner: str, name: str, tail_lines: int) -> AsyncIterator[bytes]:
        """The log's last lines and then what it writes; errors are raised before any byte,
        so that they can still be answered as errors."""
        source = await self._source(owner, name)
        try:
            return await self.cluster.follow_pod_log(
                self.namespace, source.pod, source.container, tail_lines=tail_lines
            )
        except (InvalidError, NotFoundError) as error:
            raise _no_log_yet(owner, name, error) from error
        except KubeError as error:
            raise _unavailable(error) from error

    async def events(self, owner: str, name: str) -> EnvironmentHistory:
        """What the cluster said about the environment's pods, volumes and workload, oldest
        first, including pods that have gone since (a preempted one)."""
        # One list of the namespace's Events rather than one per object: the Events of pods
        # that are gone cannot be asked for by name. The API server keeps Events for an hour.
        # Listed before the objects, so that an object an Event is about, made in between, is
        # among them and counts as current.
        try:
            items, _ = await self.cluster.list("Event", self.namespace)
        except KubeError as error:
            raise _unavailable(error) from error
        objects: set[tuple[str, str]] = set()
        # What "why pending" reads from: a pod being deleted (a preempted one in its grace
        # period) says "being stopped" while its replacement waits for a node.
        current: set[tuple[str, str]] = set()
        workloads: list[str] = []
        for kind in ("Pod", "PersistentVolumeClaim", "Deployment"):
            for item in await self._list(kind, owner, name):
                objects.add((kind, item["metadata"]["name"]))
                if not item["metadata"].get("deletionTimestamp"):
                    current.add((kind, item["metadata"]["name"]))
                if kind == "Deployment":
                    workloads.append(item["metadata"]["name"])
        mine = [ClusterEvent.of(e) for e in items if belongs_to_workload(e, objects, workloads)]
        return EnvironmentHistory(oldest_first(mine), frozenset(current))


_log = get_logger("akros.cluster_reads")


async def connect_reader(settings: ClusterReadSettings) -> EnvironmentReader | None:
    """The reader of the cluster a front door reads logs and events from. With no
    configuration anywhere (no AKROS_KUBECONFIG, no service account, no ~/.kube/config) the
    front door still serves everything else, since commands go through the bus, and answers
    that those reads are unavailable; a kubeconfig that is named but cannot be read stops the
    start, as a typo should."""
    try:
        cluster = await Cluster.connect(
            settings.kubeconfig, proxy_from_environment=settings.kube_proxy_from_environment
        )
    except NoClusterConfigError as error:
        if settings.kubeconfig is not None:
            raise
        _log.warning("no cluster configuration: logs and events are unavailable", error=str(error))
        return None
    return EnvironmentReader(cluster, settings.environments_namespace)
