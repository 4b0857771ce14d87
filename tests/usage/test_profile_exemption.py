"""Environments created through the gateway from a catalog profile: one whose profile the
catalog marks underuse_exempt is never nudged, one of an ordinary profile is, and the catalog,
not the environment, decides: once the profile leaves the catalog, nothing exempts it."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from kubernetes import client

from akros_devtools import wait_until
from tests.usage.conftest import GRACE_S, UsageRig, running_rig

ENVIRONMENTS_NAMESPACE = "akros-envs"
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


def _create(rig: UsageRig, http: httpx2.Client, name: str, profile: str) -> None:
    """Create ada's environment ``name`` from ``profile`` and wait until it is applied."""
    admin = {"Authorization": f"Bearer {rig.platform.admin_token()}"}
    body = {"name": name, "image": "pytorch", "profile": profile, "owner": "ada"}
    answer = http.post("/v1/environments", json=body, headers=admin)
    assert answer.status_code == 202, answer.text
    request_id = answer.json()["request_id"]

    def settled() -> bool:
        status = http.get(f"/v1/requests/{request_id}", headers=admin).json()["status"]
        assert status != "failed", f"{name} failed"
        return bool(status == "applied")

    wait_until(settled, timeout_s=30, what=f"{name} applied")


def _idle(rig: UsageRig, name: str) -> None:
    """Make ada's environment ``name`` idle in kubesim's simulated usage, and return once its
    pod carries the profile label the worker gave it."""
    core = client.CoreV1Api(rig.kube)
    [pod] = core.list_namespaced_pod(
        ENVIRONMENTS_NAMESPACE, label_selector=f"akros.io/owner=ada,akros.io/env={name}"
    ).items
    assert "akros.io/profile" in pod.metadata.labels
    patch = {"metadata": {"annotations": {"kubesim.akros.io/usage-profile": "idle"}}}
    core.patch_namespaced_pod(pod.metadata.name, ENVIRONMENTS_NAMESPACE, patch)


def test_an_idle_environment_of_an_exempt_profile_is_never_flagged(
    rig: UsageRig, tmp_path: Path
) -> None:
    with httpx2.Client(base_url=rig.platform.gateway_url, timeout=10) as http:
        _create(rig, http, "overnight-run", "overnight")
        _create(rig, http, "small-lab", "cpu-small")
    _idle(rig, "overnight-run")
    _idle(rig, "small-lab")

    wait_until(lambda: bool(rig.notified("small-lab")), timeout_s=15, what="small-lab flagged")
    time.sleep(2 * GRACE_S)  # the exempt one has been idle as long, and longer now
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
