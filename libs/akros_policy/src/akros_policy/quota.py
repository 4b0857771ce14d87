"""Per-user quotas: one rule, used by the gateway before publishing and by the worker before
creating, so that a request refused by one is refused by the other for the same reason."""

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from akros_msgs import Resources
from akros_msgs.quantity import CpuQuantity, MemoryQuantity, format_cpu, format_memory


class Quota(BaseModel):
    """The most one user may hold at once, written as in a pod spec: cpu "32", memory "256Gi"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: CpuQuantity
    memory: MemoryQuantity
    gpus: int = Field(default=0, ge=0)
    environments: int = Field(ge=0)

    @property
    def resources(self) -> Resources:
        return Resources.of(self.cpu, self.memory, self.gpus)


DEFAULT_QUOTA = Quota(cpu="32", memory="256Gi", gpus=4, environments=5)


class QuotaPolicy(BaseModel):
    """The default quota and per-user overrides (configuration)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: Quota = DEFAULT_QUOTA
    overrides: dict[str, Quota] = Field(default_factory=dict)

    def for_user(self, user_id: str) -> Quota:
        return self.overrides.get(user_id, self.default)

    @classmethod
    def from_file(cls, path: Path) -> "QuotaPolicy":
        """Load a YAML (or JSON) quota file; errors name the field. Without ``default`` the
        built-in default quota applies."""
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})


def load_quotas(path: Path | None) -> QuotaPolicy:
    """The quotas in the file at ``path`` (a service's AKROS_QUOTA_FILE), or the built-in
    defaults when no file is configured."""
    return QuotaPolicy.from_file(path) if path else QuotaPolicy()


class Holding(BaseModel):
    """What a user holds now: the sum of their environments' reservations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resources: Resources = Resources()
    environments: int = Field(default=0, ge=0)


class QuotaDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str = ""


def check_quota(holding: Holding, request: Resources, quota: Quota) -> QuotaDecision:
    """May a user holding ``holding`` add one environment reserving ``request``?

    The reason, when refused, names each exceeded dimension with the numbers, in words a
    researcher understands.
    """
    problems: list[str] = []
    if holding.environments + 1 > quota.environments:
        problems.append(
            f"you already have {holding.environments} of your {quota.environments} environments"
        )
    after = holding.resources + request
    limit = quota.resources
    if after.cpu_millis > limit.cpu_millis:
        problems.append(
            f"CPU would be {format_cpu(after.cpu_millis)} of your {format_cpu(limit.cpu_millis)}"
        )
    if after.memory_bytes > limit.memory_bytes:
        problems.append(
            f"memory would be {format_memory(after.memory_bytes)} "
            f"of your {format_memory(limit.memory_bytes)}"
        )
    if after.gpus > limit.gpus:
        problems.append(f"GPUs would be {after.gpus} of your {limit.gpus}")
    if problems:
        return QuotaDecision(
            allowed=False,
            reason="Over quota: "
            + "; ".join(problems)
            + ". Delete an environment or ask an admin.",
        )
    return QuotaDecision(allowed=True)
