"""An admin's idle stop, end to end (gateway, worker, monitor, kubesim, Redis): an environment
of a profile that asks for it is stopped once its under-use nudge went unanswered for the
profile's wait, told why; one its owner kept, and one of a profile without it, keep running."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx2
import pytest
from kubernetes import client

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_msgs import EnvironmentStopped
from akros_msgs.streams import RESULTS
from akros_policy.naming import environment_object_name
from akros_readmodel import underuse_exemption_key
from tests.usage.conftest import (
    ENVIRONMENTS_NAMESPACE,
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
  batch: {cpu: "2", memory: 4Gi, idle_stop_after_s: 1}
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


def _stopped(rig: UsageRig) -> list[EnvironmentStopped]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], rig.redis.xrange(RESULTS.name))
    parsed = [RESULTS.parse(fields[DATA_FIELD]) for _, fields in entries]
    return [m for m in parsed if isinstance(m, EnvironmentStopped)]


def _replicas(rig: UsageRig, name: str) -> int:
    apps = client.AppsV1Api(rig.kube)
    deployment = apps.read_namespaced_deployment(
        environment_object_name("ada", name), ENVIRONMENTS_NAMESPACE
    )
    return int(deployment.spec.replicas)


def test_an_unanswered_nudge_stops_an_environment_of_an_idle_stop_profile(rig: UsageRig) -> None:
    with httpx2.Client(base_url=rig.platform.gateway_url, timeout=10) as http:
        for name, profile in (("sweep", "batch"), ("kept", "batch"), ("lab", "cpu-small")):
            create_from_profile(rig, http, name, profile)
    # ada pressed Keep on "kept" (what the Slack app's button writes).
    rig.redis.set(underuse_exemption_key("ada", "kept"), "until later", ex=3600)
    for name in ("sweep", "kept", "lab"):
        make_idle(rig, name)

    wait_until(
        lambda: [s.name for s in _stopped(rig)] == ["sweep"],
        timeout_s=30,
        what="the idle environment of the idle-stop profile stopped",
    )
    [stop] = _stopped(rig)
    assert stop.owner == "ada"
    assert "went unanswered" in stop.reason
    assert "akros env start sweep" in stop.reason
    view = json.loads(rig.redis.get("akros:rm:env:ada:sweep") or "{}")
    assert (view["status"], view["reason"]) == ("stopped", stop.reason)
    assert _replicas(rig, "sweep") == 0

    def nudged_long_ago() -> bool:
        nudges = rig.notified("lab")
        return bool(nudges) and datetime.now(UTC) - nudges[0].occurred_at > timedelta(seconds=3)

    wait_until(nudged_long_ago, timeout_s=20, what="the ordinary profile nudged 3 s ago")
    # Nudged three times the batch profile's wait ago, and still running: it has no idle stop.
    assert [s.name for s in _stopped(rig)] == ["sweep"]
    assert (_replicas(rig, "kept"), _replicas(rig, "lab")) == (1, 1)
