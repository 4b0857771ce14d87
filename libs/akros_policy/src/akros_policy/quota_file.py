"""The quota configuration file admins write, in Kubernetes quantities:

    default: {cpu: "32", memory: 256Gi, gpus: 4, environments: 5}
    overrides:
      alice: {cpu: "64", memory: 512Gi, gpus: 8, environments: 10}

The gateway and the k8s_worker both load it with ``load_quota_policy`` so that they apply the
same numbers.
"""

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from akros_msgs import Resources
from akros_msgs.names import UserId
from akros_msgs.quantity import CpuQuantity, MemoryQuantity
from akros_policy.quota import DEFAULT_QUOTA, Quota, QuotaPolicy


class QuotaEntry(BaseModel):
    """One quota as written in the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: CpuQuantity
    memory: MemoryQuantity
    gpus: int = Field(default=0, ge=0)
    environments: int = Field(ge=0)

    def to_quota(self) -> Quota:
        return Quota(
            resources=Resources.of(self.cpu, self.memory, self.gpus),
            environments=self.environments,
        )


class QuotaFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: QuotaEntry | None = None
    overrides: dict[UserId, QuotaEntry] = Field(default_factory=dict)

    def to_policy(self) -> QuotaPolicy:
        return QuotaPolicy(
            default=self.default.to_quota() if self.default else DEFAULT_QUOTA,
            overrides={user: entry.to_quota() for user, entry in self.overrides.items()},
        )


def load_quota_policy(path: Path) -> QuotaPolicy:
    """The policy in a YAML (or JSON) quota file; a bad file raises a ValidationError naming
    the field. A missing ``default`` keeps the built-in default quota."""
    return QuotaFile.model_validate(yaml.safe_load(path.read_text()) or {}).to_policy()
