"""The research images and resource profiles admins offer (configuration, not code)."""

from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from akros_msgs.names import ResourceName
from akros_msgs.quantity import PositiveCpu, PositiveMemory


class CatalogImage(BaseModel):
    """An image researchers may pick by its key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str = Field(min_length=1, max_length=512, description="Full image reference")
    description: str = ""
    port: int = Field(default=8888, ge=1, le=65535, description="Where its web UI listens")
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)


class ResourceProfile(BaseModel):
    """A named bundle of resources offered as a starting point (e.g. "gpu-small")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    cpu: PositiveCpu
    memory: PositiveMemory
    gpus: int = Field(default=0, ge=0)
    dedicated_cores: bool = False
    underuse_exempt: bool = Field(
        default=False, description="Environments of this profile never get under-use nudges"
    )
    idle_stop_after_s: float | None = Field(
        default=None,
        gt=0,
        description="Stop an environment of this profile once an under-use nudge has gone "
        "unanswered this long (Keep spares it, as it spares it nudges); it is stopped, never "
        "deleted, and told why",
    )


class Catalog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    images: dict[ResourceName, CatalogImage]
    profiles: dict[ResourceName, ResourceProfile] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.images:
            raise ValueError("images: the catalog needs at least one image")
        return self

    @classmethod
    def from_file(cls, path: Path) -> Self:
        """Load a YAML (or JSON) catalog file; errors name the file and the field."""
        return cls.model_validate(yaml.safe_load(path.read_text()))

    def idle_stops(self) -> dict[str, float]:
        """How long an unanswered nudge waits before the stop, by profile key, for the
        profiles that ask for an idle stop."""
        return {
            key: profile.idle_stop_after_s
            for key, profile in self.profiles.items()
            if profile.idle_stop_after_s is not None
        }

    def underuse_exempt_profiles(self) -> frozenset[str]:
        """The keys of the profiles whose environments never get under-use nudges."""
        return frozenset(key for key, profile in self.profiles.items() if profile.underuse_exempt)


DEFAULT_CATALOG = Catalog(
    images={
        "pytorch": CatalogImage(
            image="registry.akros.local/research/pytorch:2026.11",
            description="PyTorch, JupyterLab, CUDA 12, the team's quant libraries",
        ),
        "jax": CatalogImage(
            image="registry.akros.local/research/jax:2026.11",
            description="JAX, JupyterLab, CUDA 12",
        ),
        "quant-cpu": CatalogImage(
            image="registry.akros.local/research/quant-cpu:2026.11",
            description="CPU-only: pandas, polars, numba, the backtesting stack",
        ),
    },
    profiles={
        "cpu-small": ResourceProfile(cpu="2", memory="8Gi", description="Notebooks, light work"),
        "cpu-dedicated": ResourceProfile(
            cpu="8", memory="32Gi", dedicated_cores=True, description="Pinned cores, backtests"
        ),
        "gpu-single": ResourceProfile(cpu="8", memory="64Gi", gpus=1, description="One GPU"),
        "gpu-quad": ResourceProfile(cpu="32", memory="256Gi", gpus=4, description="Four GPUs"),
    },
)


def load_catalog(path: Path | None) -> Catalog:
    """The catalog in the file at ``path`` (a service's AKROS_CATALOG_FILE), or the built-in
    one when no file is configured."""
    return Catalog.from_file(path) if path else DEFAULT_CATALOG
