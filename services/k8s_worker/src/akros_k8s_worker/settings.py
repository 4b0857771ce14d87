"""The worker's settings: AKROS_* environment variables, checked at start."""

from pathlib import Path

from pydantic import Field

from akros_bus import BusSettings
from akros_k8s_worker.objects import EnvironmentPlatform
from akros_k8s_worker.reconcile import StageTimeouts
from akros_k8s_worker.service_objects import ServicePlatform
from akros_policy import EnvironmentDomainSettings, LifetimeSettings, PolicyFileSettings


class WorkerSettings(BusSettings, PolicyFileSettings, LifetimeSettings, EnvironmentDomainSettings):
    service_name: str = "k8s-worker"
    kubeconfig: Path | None = Field(
        default=None, description="Kubeconfig file; unset: in-cluster config, then ~/.kube/config"
    )
    kube_proxy_from_environment: bool = Field(
        default=False, description="Reach the API server through HTTPS_PROXY/NO_PROXY"
    )
    environments_namespace: str = "akros-envs"
    ingress_class: str | None = "nginx"
    ingress_controller_namespace: str = Field(
        default="kube-system", description="Where the ingress controller runs (RKE2: kube-system)"
    )
    environment_auth_url: str = Field(
        default="http://api-gateway.akros-system.svc.cluster.local/v1/auth/environment",
        min_length=1,
        description="The gateway's environment URL check, as the ingress controller reaches "
        "it in the cluster (ingress-nginx auth-url)",
    )
    environment_sign_in_url: str | None = Field(
        default=None,
        description="Where a browser without credentials is sent (ingress-nginx "
        "auth-signin); unset: https://akros.<domain>/v1/auth/sign-in, the gateway's Ingress",
    )
    environment_tls_secret: str | None = Field(
        default=None,
        description="The TLS Secret (in the environments' namespace) of every environment's "
        "host, a wildcard certificate of the domain; unset: the ingress controller's default "
        "certificate",
    )
    storage_class: str = Field(
        min_length=1,
        description=(
            "The StorageClass of the environments' work volumes; no default, because a cluster"
            " without that class (RKE2 ships none) leaves every claim Pending"
        ),
    )
    work_mount_path: str = "/home/researcher/work"
    run_as_user: int = Field(default=1000, ge=1)
    run_as_group: int = Field(default=100, ge=1)
    environment_priority_class: str | None = None
    start_timeout_s: float = Field(
        default=300,
        gt=0,
        description="How long a start may stay scheduling, attaching its volume or starting "
        "(each stage its own clock)",
    )
    pull_timeout_s: float = Field(
        default=1800,
        gt=0,
        description="How long pulling the image may take (a multi-GB CUDA image's first pull "
        "takes minutes, and transient pull errors are retried)",
    )
    purge_wait_s: float = Field(
        default=120, gt=0, description="How long a purge waits for the claim to be gone"
    )
    stop_wait_s: float = Field(
        default=120,
        gt=0,
        description="How long a stop waits for the environment's pod to be gone (Kubernetes "
        "gives a pod 30 s of grace by default)",
    )
    expiry_warning_s: float = Field(
        default=3600,
        gt=0,
        description="How long before an environment's expiry its owner is told (it is then "
        "stopped, never deleted)",
    )
    start_resync_s: float = Field(
        default=5.0, gt=0, description="How often every open start is reconciled again"
    )
    command_concurrency: int = Field(
        default=1024,
        ge=1,
        le=4096,
        description="Commands in hand at once (each is checked and recorded, then its key "
        "is queued for the reconciler ahead of every other key)",
    )
    node_cache_s: float = Field(
        default=5.0, ge=0, description="How long the node list is reused for feasibility checks"
    )
    services_namespace: str = Field(default="akros-services", description="In-house services")
    allow_host_path: bool = Field(
        default=False, description="Admins may mount host paths into services (as the gateway)"
    )

    def stage_timeouts(self) -> StageTimeouts:
        return StageTimeouts(
            scheduling_s=self.start_timeout_s,
            attaching_volume_s=self.start_timeout_s,
            pulling_image_s=self.pull_timeout_s,
            starting_s=self.start_timeout_s,
            purging_s=self.purge_wait_s,
            stopping_s=self.stop_wait_s,
        )

    def platform(self) -> EnvironmentPlatform:
        return EnvironmentPlatform(
            namespace=self.environments_namespace,
            domain=self.domain,
            ingress_class=self.ingress_class,
            ingress_controller_namespace=self.ingress_controller_namespace,
            storage_class=self.storage_class,
            work_mount_path=self.work_mount_path,
            run_as_user=self.run_as_user,
            run_as_group=self.run_as_group,
            priority_class=self.environment_priority_class,
            auth_url=self.environment_auth_url,
            sign_in_url=self.environment_sign_in_url
            or f"https://akros.{self.domain}/v1/auth/sign-in",
            tls_secret_name=self.environment_tls_secret,
        )

    def service_platform(self) -> ServicePlatform:
        return ServicePlatform(
            namespace=self.services_namespace,
            run_as_user=self.run_as_user,
            run_as_group=self.run_as_group,
        )
