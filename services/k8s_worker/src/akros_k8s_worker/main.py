"""The worker process: consume commands; watch environments' pods, claims and the storage
classes into the start reconciler's caches; run the reconciler."""

from collections.abc import Callable
from typing import Any

from akros_bus import Bus, configure_logging, get_logger
from akros_bus.runner import run_forever, serve
from akros_bus.settings import load_settings
from akros_k8s_worker.environments import EnvironmentService
from akros_k8s_worker.index import EnvironmentIndex
from akros_k8s_worker.reconciler import waits_for_calm
from akros_k8s_worker.scaling import ScalingService
from akros_k8s_worker.services import ServiceDeployer
from akros_k8s_worker.settings import WorkerSettings
from akros_kube import Cluster, ForbiddenError
from akros_msgs import EnvironmentCommand, Groups, ScaleDeployment, ServiceCommand
from akros_msgs.streams import ENVIRONMENT_COMMANDS, SCALE_COMMANDS, SERVICE_COMMANDS
from akros_policy import load_catalog, load_quotas
from akros_policy.naming import LABEL_KIND, WorkloadKind
from akros_readmodel import LifecycleBook, ReadModel

_log = get_logger("akros.worker")


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.bus = Bus(settings)
        self._environments: EnvironmentService | None = None
        self._services: ServiceDeployer | None = None
        self.bus.consume(
            ENVIRONMENT_COMMANDS,
            Groups.K8S_WORKER,
            concurrency=settings.command_concurrency,
            on_dead_letter=self._on_dead_environment_command,
        )(self._on_environment_command)
        self.bus.consume(
            SERVICE_COMMANDS, Groups.K8S_WORKER, on_dead_letter=self._on_dead_service_command
        )(self._on_service_command)
        self._scaling: ScalingService | None = None
        # One at a time: scale commands for one Deployment must apply in the order sent.
        self.bus.consume(SCALE_COMMANDS, Groups.K8S_WORKER)(self._on_scale_command)

    @property
    def environments(self) -> EnvironmentService:
        if self._environments is None:
            raise RuntimeError("the worker has not started")
        return self._environments

    async def _on_environment_command(self, command: EnvironmentCommand) -> None:
        await self.environments.handle(command)

    async def _on_dead_environment_command(self, body: bytes, reason: str, malformed: bool) -> None:
        await self.environments.on_dead_letter(body, reason, malformed)

    @property
    def services(self) -> ServiceDeployer:
        if self._services is None:
            raise RuntimeError("the worker has not started")
        return self._services

    async def _on_service_command(self, command: ServiceCommand) -> None:
        await self.services.handle(command)

    async def _on_dead_service_command(self, body: bytes, reason: str, malformed: bool) -> None:
        await self.services.on_dead_letter(body, reason, malformed)

    async def _on_scale_command(self, command: ScaleDeployment) -> None:
        if self._scaling is None:
            raise RuntimeError("the worker has not started")
        await self._scaling.handle(command)

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
        async for event, deployment in self.environments.cluster.watch(
            "Deployment", namespace, selector
        ):
            index.observe(event, deployment)

    async def run(self) -> None:
        settings = self.settings
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
            await self.bus.connect()
            self._environments = EnvironmentService(
                cluster=cluster,
                bus=self.bus,
                read_model=ReadModel(self.bus.redis),
                book=LifecycleBook(self.bus.redis),
                catalog=load_catalog(settings.catalog_file),
                quotas=load_quotas(settings.quota_file),
                platform=settings.platform(),
                timeouts=settings.stage_timeouts(),
                resync_s=settings.start_resync_s,
                node_cache_s=settings.node_cache_s,
                index=EnvironmentIndex(),
            )
            self._services = ServiceDeployer(
                cluster=cluster,
                bus=self.bus,
                read_model=ReadModel(self.bus.redis),
                platform=settings.service_platform(),
                host_paths_enabled=settings.allow_host_path,
            )
            self._scaling = ScalingService(cluster, self.bus)
            await serve(
                self.bus,
                background=[
                    self._watch_environment_deployments,
                    self._watch_environment_pods,
                    self._watch_environment_claims,
                    self._watch_storage_classes,
                    self._environments.reconciler.run,
                    self._services.watch_deployments,
                    self._services.watch_autoscalers,
                ],
            )
        finally:
            await cluster.close()


def main() -> None:
    settings = load_settings(WorkerSettings)
    configure_logging(settings.service_name, settings.log_level)
    run_forever(Worker(settings).run())


if __name__ == "__main__":
    main()
