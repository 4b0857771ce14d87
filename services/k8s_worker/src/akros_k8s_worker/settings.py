"""The worker's settings: AKROS_* environment variables, checked at start."""

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from akros_bus import BusSettings
from akros_k8s_worker.objects import (
    RKE2_DNS_POD_LABELS,
    RKE2_INGRESS_CONTROLLER_POD_LABELS,
    EgressAllowance,
    EnvironmentNetwork,
    EnvironmentPlatform,
)
from akros_k8s_worker.reconcile import StageTimeouts
from akros_k8s_worker.service_objects import ServicePlatform
from akros_msgs.services import Protocol
from akros_policy import EnvironmentDomainSettings, LifetimeSettings, PolicyFileSettings


def _network(value: str) -> str:
    """A CIDR as NetworkPolicy's ipBlock takes it: "10.8.0.0/16", not a host's address."""
    return str(ipaddress.ip_network(value, strict=True))


class AllowedPort(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    port: int = Field(ge=1, le=65535)
    protocol: Protocol = Protocol.TCP


class EgressAllowanceSetting(BaseModel):
    """One entry of AKROS_ENVIRONMENT_EGRESS_ALLOWLIST: ``{"cidr": "10.8.0.0/16", "ports":
    [{"port": 443}]}``; no ports means every port."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cidr: Annotated[str, AfterValidator(_network)]
    ports: list[AllowedPort] = Field(default_factory=list)

    def allowance(self) -> EgressAllowance:
        return EgressAllowance(
            cidr=self.cidr, ports=tuple((p.port, p.protocol.value) for p in self.ports)
        )


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
    ingress_controller_pod_labels: dict[str, str] = Field(
        default_factory=lambda: dict(RKE2_INGRESS_CONTROLLER_POD_LABELS),
        min_length=1,
        description="The labels of the ingress controller's pods, the only ones of its "
        "namespace that reach environments (JSON; RKE2's rke2-ingress-nginx by default)",
    )
    dns_namespace: str = Field(
        default="kube-system", description="Where the cluster DNS runs (RKE2: rke2-coredns)"
    )
    dns_pod_labels: dict[str, str] = Field(
        default_factory=lambda: dict(RKE2_DNS_POD_LABELS),
        min_length=1,
        description="The labels of the cluster DNS's pods, which environments may query (JSON)",
    )
    environment_egress_allowlist: list[EgressAllowanceSetting] = Field(
        default_factory=list,
        description="What environments may reach beyond DNS and their owner's other "
        'environments (JSON: [{"cidr": "10.8.0.0/16", "ports": [{"port": 443}]}]); empty: '
        "nothing",
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
            network=EnvironmentNetwork(
                ingress_controller_namespace=self.ingress_controller_namespace,
                ingress_controller_pod_labels=tuple(self.ingress_controller_pod_labels.items()),
                dns_namespace=self.dns_namespace,
                dns_pod_labels=tuple(self.dns_pod_labels.items()),
                egress_allowlist=tuple(a.allowance() for a in self.environment_egress_allowlist),
            ),
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
