"""The worker process: consume commands; watch environments' pods, claims and the storage
classes into the start reconciler's caches; run the reconciler."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Self

from akros_bus import Bus, get_logger
from akros_bus.runner import Background, run_service
from akros_bus.settings import load_settings
from akros_k8s_worker.environments import EnvironmentService
from akros_k8s_worker.index import EnvironmentIndex
from akros_k8s_worker.reconciler import waits_for_calm
from akros_k8s_worker.rename import named_the_old_way
from akros_k8s_worker.scaling import ScalingService
from akros_k8s_worker.services import ServiceDeployer
from akros_k8s_worker.settings import WorkerSettings
from akros_kube import SYNCED, Cluster, ForbiddenError
from akros_msgs import EnvironmentCommand, Groups, ScaleDeployment, ServiceCommand
from akros_msgs.streams import ENVIRONMENT_COMMANDS, SCALE_COMMANDS, SERVICE_COMMANDS
from akros_policy import load_catalog, load_quotas
from akros_policy.naming import LABEL_KIND, WorkloadKind
from akros_readmodel import LifecycleBook, ReadModel

_log = get_logger("akros.worker")


class Worker:
    """The worker, built by ``open`` on a connected cluster and bus."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        bus: Bus,
        environments: EnvironmentService,
        services: ServiceDeployer,
        scaling: ScalingService,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.environments = environments
        self.services = services
        self.scaling = scaling
        bus.consume(
            ENVIRONMENT_COMMANDS,
            Groups.K8S_WORKER,
            concurrency=settings.command_concurrency,
            on_dead_letter=environments.on_dead_letter,
        )(self._on_environment_command)
        bus.consume(SERVICE_COMMANDS, Groups.K8S_WORKER, on_dead_letter=services.on_dead_letter)(
            self._on_service_command
        )
        # One at a time: scale commands for one Deployment must apply in the order sent.
        bus.consume(SCALE_COMMANDS, Groups.K8S_WORKER)(self._on_scale_command)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: WorkerSettings) -> AsyncIterator[Self]:
        """The worker's lifespan: connect to the cluster, ensure the namespaces, connect the
        bus, build the services on them; on the way out stop the bus, close the cluster."""
        cluster = await Cluster.connect(
            settings.kubeconfig, proxy_from_environment=settings.kube_proxy_from_environment
        )
        try:
            for namespace in (settings.environments_namespace, settings.services_namespace):
                try:
                    await cluster.ensure_namespace(namespace)
                except ForbiddenError:
                    _log.warning(
                        "may not create namespaces; expecting it to exist", namespace=namespace
                    )
            bus = Bus(settings)
            await bus.connect()
            try:
                yield cls(
                    settings,
                    bus=bus,
                    environments=EnvironmentService(
                        cluster=cluster,
                        bus=bus,
                        read_model=ReadModel(bus.redis),
                        book=LifecycleBook(bus.redis),
                        catalog=load_catalog(settings.catalog_file),
                        quotas=load_quotas(settings.quota_file),
                        platform=settings.platform(),
                        timeouts=settings.stage_timeouts(),
                        resync_s=settings.start_resync_s,
                        node_cache_s=settings.node_cache_s,
                        expiry_warning_s=settings.expiry_warning_s,
                        extend_by_s=settings.extend_by_s,
                        index=EnvironmentIndex(),
                    ),
                    services=ServiceDeployer(
                        cluster=cluster,
                        bus=bus,
                        read_model=ReadModel(bus.redis),
                        platform=settings.service_platform(),
                        host_paths_enabled=settings.allow_host_path,
                    ),
                    scaling=ScalingService(cluster, bus),
                )
            finally:
                await bus.stop()
        finally:
            await cluster.close()

    async def _on_environment_command(self, command: EnvironmentCommand) -> None:
        await self.environments.handle(command)

    async def _on_service_command(self, command: ServiceCommand) -> None:
        await self.services.handle(command)

    async def _on_scale_command(self, command: ScaleDeployment) -> None:
        await self.scaling.handle(command)

    async def _watch_environment_objects(
        self, kind: str, feed: Callable[[str, dict[str, Any]], None]
    ) -> None:
        """Into the reconciler's cache: no Redis, so a Redis outage never holds the watch;
        commands on their way to their first write delay its events, for the milliseconds
        they take and at most workqueue.MAX_CALM_WAIT_S if one is stuck (workqueue.py).
        A (re)list is fed at once: commands wait for the caches it fills, so waiting for
        them to be on their way first would hold both (a restarted worker with 180
        redelivered creates took 14 s to list its pods, one calm wait per pod)."""
        selector = f"{LABEL_KIND}={WorkloadKind.ENVIRONMENT.value}"
        namespace = self.settings.environments_namespace
        queue = self.environments.reconciler.queue
        listing = False
        async for event, manifest in self.environments.cluster.watch(kind, namespace, selector):
            listing, waits = waits_for_calm(event, listing=listing)
            if waits:
                await queue.calm()
            feed(event, manifest)

    async def _watch_environment_pods(self) -> None:
        await self._watch_environment_objects("Pod", self.environments.reconciler.on_pod_event)

    async def _watch_environment_claims(self) -> None:
        await self._watch_environment_objects(
            "PersistentVolumeClaim", self.environments.reconciler.on_claim_event
        )

    async def _watch_storage_classes(self) -> None:
        reconciler = self.environments.reconciler
        async for event, storage_class in self.environments.cluster.watch("StorageClass", None, ""):
            reconciler.on_storage_class_event(event, storage_class)

    async def _watch_environment_deployments(self) -> None:
        selector = f"{LABEL_KIND}={WorkloadKind.ENVIRONMENT.value}"
        namespace = self.settings.environments_namespace
        index = self.environments.index
        reconciler = self.environments.reconciler
        async for event, deployment in self.environments.cluster.watch(
            "Deployment", namespace, selector
        ):
            index.observe(event, deployment)
            if event == SYNCED and (old := named_the_old_way(index.all())):
                _log.error(
                    "environments named the old way: this worker does not see them by name; "
                    "stop it and run akros-k8s-worker-rename (docs/DESIGN.md)",
                    deployments=old[:20],
                    count=len(old),
                )
            # A (re)list is in the index once it has synced: then each of its Deployments.
            for changed in index.all() if event == SYNCED else [deployment]:
                reconciler.on_deployment_event(changed)

    def background(self) -> Background:
        return [
            self._watch_environment_deployments,
            self._watch_environment_pods,
            self._watch_environment_claims,
            self._watch_storage_classes,
            self.environments.reconciler.run,
            self.services.watch_deployments,
            self.services.watch_autoscalers,
        ]


def main() -> None:
    settings = load_settings(WorkerSettings)
    run_service(settings, Worker.open(settings))


if __name__ == "__main__":
    main()
