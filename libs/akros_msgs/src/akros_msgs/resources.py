"""Resource amounts in the units the platform computes with."""

from typing import Self

from pydantic import BaseModel, ConfigDict, Field

from akros_msgs.quantity import cpu_millicores, format_cpu, format_memory, memory_bytes


class Resources(BaseModel):
    """An amount of CPU, memory and GPUs, in integers so sums and comparisons are exact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_millis: int = Field(default=0, ge=0, description="CPU in millicores (1000 = one core)")
    memory_bytes: int = Field(default=0, ge=0, description="Memory in bytes")
    gpus: int = Field(default=0, ge=0, description="Whole GPUs (nvidia.com/gpu)")

    @classmethod
    def of(cls, cpu: str = "0", memory: str = "0", gpus: int = 0) -> Self:
        """Resources from Kubernetes quantity strings: Resources.of("500m", "4Gi", 1)."""
        return cls(cpu_millis=cpu_millicores(cpu), memory_bytes=memory_bytes(memory), gpus=gpus)

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(
            cpu_millis=self.cpu_millis + other.cpu_millis,
            memory_bytes=self.memory_bytes + other.memory_bytes,
            gpus=self.gpus + other.gpus,
        )

    def minus(self, other: "Resources") -> "Resources":
        """What is left after taking ``other`` away, never below zero in any dimension."""
        return Resources(
            cpu_millis=max(0, self.cpu_millis - other.cpu_millis),
            memory_bytes=max(0, self.memory_bytes - other.memory_bytes),
            gpus=max(0, self.gpus - other.gpus),
        )

    def fits_within(self, limit: "Resources") -> bool:
        """True when every dimension is at most the limit's."""
        return (
            self.cpu_millis <= limit.cpu_millis
            and self.memory_bytes <= limit.memory_bytes
            and self.gpus <= limit.gpus
        )

    def describe(self) -> str:
        """A short human form: '4 CPU, 16Gi memory, 1 GPU'."""
        gpus = f", {self.gpus} GPU" + ("s" if self.gpus != 1 else "") if self.gpus else ""
        return f"{format_cpu(self.cpu_millis)} CPU, {format_memory(self.memory_bytes)} memory{gpus}"
