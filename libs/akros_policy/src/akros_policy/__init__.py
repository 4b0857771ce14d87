"""Platform rules shared by the services: catalog, quotas, naming. Pure, no I/O."""

from akros_policy.access import may_act_on
from akros_policy.catalog import (
    DEFAULT_CATALOG,
    Catalog,
    CatalogImage,
    ResourceProfile,
    load_catalog,
)
from akros_policy.lifetime import extended_expiry
from akros_policy.quota import (
    DEFAULT_QUOTA,
    Holding,
    Quota,
    QuotaDecision,
    QuotaPolicy,
    check_quota,
    load_quotas,
)
from akros_policy.services import SpecProblem, host_path_problem, may_manage_services
from akros_policy.settings import (
    CatalogFileSettings,
    EnvironmentDomainSettings,
    LifetimeSettings,
    PolicyFileSettings,
)

__all__ = [
    "DEFAULT_CATALOG",
    "DEFAULT_QUOTA",
    "Catalog",
    "CatalogFileSettings",
    "CatalogImage",
    "EnvironmentDomainSettings",
    "Holding",
    "LifetimeSettings",
    "PolicyFileSettings",
    "Quota",
    "QuotaDecision",
    "QuotaPolicy",
    "ResourceProfile",
    "SpecProblem",
    "check_quota",
    "extended_expiry",
    "host_path_problem",
    "load_catalog",
    "load_quotas",
    "may_act_on",
    "may_manage_services",
]
