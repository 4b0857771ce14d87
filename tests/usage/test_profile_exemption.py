"""Environments created through the gateway from a catalog profile: one whose profile the
catalog marks underuse_exempt is never nudged, one of an ordinary profile is, and the catalog,
not the environment, decides: once the profile leaves the catalog, nothing exempts it."""

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from akros_devtools import wait_until
from tests.usage.conftest import (
    GRACE_S,
    UsageRig,
    create_from_profile,
    make_idle,
    running_rig,
)

CATALOG = """
images:
  pytorch: {image: registry.local/research/pytorch:1}
profiles:
  cpu-small: {cpu: "2", memory: 4Gi}
  overnight: {cpu: "2", memory: 4Gi, underuse_exempt: true}
"""
# The same catalog after an admin dropped the exempt profile.
CATALOG_WITHOUT_OVERNIGHT = """
images:
  pytorch: {image: registry.local/research/pytorch:1}
profiles:
  cpu-small: {cpu: "2", memory: 4Gi}
"""


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[UsageRig]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    yield from running_rig(
        tmp_path / "platform",
        services=("k8s-worker", "api-gateway", "monitor"),
        environment={"AKROS_CATALOG_FILE": str(catalog)},
    )


def test_an_idle_environment_of_an_exempt_profile_is_never_flagged(
    rig: UsageRig, tmp_path: Path
) -> None:
    with httpx2.Client(base_url=rig.platform.gateway_url, timeout=10) as http:
        create_from_profile(rig, http, "overnight-run", "overnight")
        create_from_profile(rig, http, "small-lab", "cpu-small")
    make_idle(rig, "overnight-run")
    make_idle(rig, "small-lab")

    wait_until(lambda: bool(rig.notified("small-lab")), timeout_s=15, what="small-lab flagged")
    # The exempt one has been idle as long, and longer now.
    rig.sampled_through(2 * GRACE_S, "overnight-run")
    assert {n.name for n in rig.notifications()} == {"small-lab"}

    changed = tmp_path / "catalog-changed.yaml"
    changed.write_text(CATALOG_WITHOUT_OVERNIGHT)
    rig.platform.kill("monitor")
    rig.platform.start_service("monitor", environment={"AKROS_CATALOG_FILE": str(changed)})
    wait_until(
        lambda: bool(rig.notified("overnight-run")),
        timeout_s=15,
        what="overnight-run flagged once its profile left the catalog",
    )
