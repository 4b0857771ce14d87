"""The poller's settings: AKROS_* environment variables, checked at start."""

from typing import Self

from pydantic import Field, model_validator

from akros_bus import BusSettings
from akros_msgs import Resources
from akros_msgs.quantity import CpuQuantity, MemoryQuantity
from akros_poller.sizing import InferencePolicy


class PollerSettings(BusSettings):
    service_name: str = "poller"
    inference_namespace: str = "akros-inference"
    inference_deployment: str = "auto-inference"
    inference_cpu: CpuQuantity = Field(default="4", description="CPU one replica requests")
    inference_memory: MemoryQuantity = Field(default="32Gi", description="Memory per replica")
    inference_gpus: int = Field(default=1, ge=0, description="GPUs one replica requests")
    inference_node_selector: dict[str, str] = Field(
        default_factory=dict,
        description='Labels of the nodes replicas may run on (JSON, e.g. {"akros.io/pool":"gpu"})',
    )
    headroom_cpu: CpuQuantity = Field(default="0", description="CPU always left free")
    headroom_memory: MemoryQuantity = Field(default="0", description="Memory always left free")
    headroom_gpus: int = Field(default=0, ge=0, description="GPUs always left free")
    inference_min_replicas: int = Field(default=0, ge=0)
    inference_max_replicas: int = Field(default=100, ge=0, le=10_000)
    scale_up_window_s: float = Field(
        default=30.0, ge=0, description="Room must last this long before replicas are added"
    )
    capacity_stale_after_s: float = Field(
        default=15.0,
        gt=0,
        description="No capacity event for this long: hold the size and report it",
    )
    reassert_interval_s: float = Field(
        default=60.0, gt=0, description="How often an unchanged size is commanded again"
    )
    status_interval_s: float = Field(
        default=1.0, gt=0, description="How often staleness is checked and the status written"
    )

    @model_validator(mode="after")
    def _policy_is_coherent(self) -> Self:
        if self.inference_min_replicas > self.inference_max_replicas:
            raise ValueError("inference_min_replicas must not exceed inference_max_replicas")
        if not self.policy().per_replica.model_dump(exclude_defaults=True):
            raise ValueError("a replica must request some CPU, memory or GPUs")
        return self

    def policy(self) -> InferencePolicy:
        return InferencePolicy(
            namespace=self.inference_namespace,
            deployment=self.inference_deployment,
            per_replica=Resources.of(
                self.inference_cpu, self.inference_memory, self.inference_gpus
            ),
            headroom=Resources.of(self.headroom_cpu, self.headroom_memory, self.headroom_gpus),
            min_replicas=self.inference_min_replicas,
            max_replicas=self.inference_max_replicas,
            scale_up_window_s=self.scale_up_window_s,
            node_labels=dict(self.inference_node_selector),
        )
