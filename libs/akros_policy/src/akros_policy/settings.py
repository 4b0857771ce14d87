"""The settings naming a service's catalog and quota files, declared once for every service
that loads them (``load_catalog``, ``load_quotas``): the same variables, the same meaning.

These are mixins for a service's one pydantic-settings class (``class WorkerSettings(
BusSettings, PolicyFileSettings)``), which reads them as ``AKROS_CATALOG_FILE`` and
``AKROS_QUOTA_FILE`` through its ``AKROS_`` prefix. They are plain pydantic models on purpose:
pydantic merges the ``model_config`` of every base class, and a ``BaseSettings`` mixin would
bring its own defaults (no prefix, extra fields forbidden) into the service's settings.
"""

from pathlib import Path

from pydantic import BaseModel, Field


class CatalogFileSettings(BaseModel):
    """The catalog alone, for a service that never checks quotas (the monitor)."""

    catalog_file: Path | None = Field(
        default=None, description="YAML catalog of images and profiles; the built-in one if unset"
    )


class PolicyFileSettings(CatalogFileSettings):
    """The catalog and the quotas, for the services that accept or apply requests."""

    quota_file: Path | None = Field(
        default=None, description="YAML default quota and per-user overrides; built-in if unset"
    )


class LifetimeSettings(BaseModel):
    """How far an environment's expiry may be moved, for the services that extend it (the
    gateway and the Slack app bound an extension by it; the worker gives an environment
    started again after its expiry that long)."""

    extend_by_s: float = Field(
        default=86_400,
        gt=0,
        description="How far one extension moves an environment's expiry, and the most it may "
        "then be ahead of now",
    )


class EnvironmentDomainSettings(BaseModel):
    """The domain environments' URLs are under, for the services that build them (the
    worker's Ingress hosts) and that read them back (the gateway tells an environment from
    the host it is asked to authenticate for): one variable, so the two cannot disagree."""

    domain: str = Field(
        default="research.akros.local",
        min_length=1,
        description="Environments' URLs' domain: <env>-<owner>-<c>.<domain>",
    )
