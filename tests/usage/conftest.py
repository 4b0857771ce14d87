"""The monitor as a real process beside Redis and kubesim, with grace periods of seconds so
the tests control time by settings rather than by waiting hours."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx2
import pytest
import redis
from kubernetes import client, config

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_devtools.platform import Platform, PlatformOptions
from akros_msgs import UnderusedEnvironment, WorkloadUsage
from akros_msgs.streams import NOTIFICATIONS, USAGE

NAMESPACE = "default"
ENVIRONMENTS_NAMESPACE = "akros-envs"
GRACE_S = 1.5
USAGE_SETTINGS = {
    "AKROS_USAGE_INTERVAL_S": "0.2",
    "AKROS_UNDERUSE_GRACE_S": str(GRACE_S),
    "AKROS_UNDERUSE_MINIMUM_AGE_S": "0",
    "AKROS_UNDERUSE_COOL_DOWN_S": "3600",
    "AKROS_USAGE_HISTORY_STEP_S": "0.5",
}


GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


@dataclass
class UsageRig:
    platform: Platform
    kube: client.ApiClient
    redis: "redis.Redis"

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.kube)

    def environment_pod(
        self,
        owner: str,
        name: str,
        profile: str,
        *,
        gpus: int = 0,
        labels: dict[str, str] | None = None,
        node: str | None = None,
    ) -> None:
        """A running pod labelled as ``owner``'s environment ``name``, used as ``profile``."""
        requests = {"cpu": "2", "memory": "4Gi"}
        if gpus:
            requests["nvidia.com/gpu"] = str(gpus)
        body: dict[str, Any] = {
            "metadata": {
                "name": f"{owner}-{name}-0",
                "labels": {
                    "akros.io/kind": "environment",
                    "akros.io/owner": owner,
                    "akros.io/env": name,
                    **(labels or {}),
                },
                "annotations": {"kubesim.akros.io/usage-profile": profile},
            },
            "spec": {
                "containers": [
                    {
                        "name": "work",
                        "image": "registry.local/research/pytorch:1",
                        "resources": {"requests": requests, "limits": requests},
                    }
                ],
                # As the worker builds GPU environments: GPU nodes are tainted (deploy/rke2).
                "tolerations": [GPU_TOLERATION] if gpus else [],
                "nodeSelector": {"kubernetes.io/hostname": node} if node else {},
            },
        }
        self.core.create_namespaced_pod(NAMESPACE, body)

    def use_as(self, owner: str, name: str, profile: str) -> None:
        patch = {"metadata": {"annotations": {"kubesim.akros.io/usage-profile": profile}}}
        self.core.patch_namespaced_pod(f"{owner}-{name}-0", NAMESPACE, patch)

    def notifications(self) -> list[UnderusedEnvironment]:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrange(NOTIFICATIONS.name)
        )
        parsed = [NOTIFICATIONS.parse(fields[DATA_FIELD]) for _, fields in entries]
        return [n for n in parsed if isinstance(n, UnderusedEnvironment)]

    def notified(self, name: str) -> list[UnderusedEnvironment]:
        return [n for n in self.notifications() if n.name == name]

    def usage_batches(self) -> list[WorkloadUsage]:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrange(USAGE.name))
        parsed = [USAGE.parse(fields[DATA_FIELD]) for _, fields in entries]
        return [u for u in parsed if isinstance(u, WorkloadUsage)]

    def sampled_through(self, seconds: float, environment: str) -> None:
        """Wait until the monitor has sampled ``environment`` ``seconds`` from now, and
        finished the cycle after that one. A cycle publishes its usage and the notices it
        decided on together, so by then every notice of those cycles is on the stream: what
        a check that nothing happened waits for, instead of sleeping and hoping the monitor
        kept up."""
        until = datetime.now(UTC) + timedelta(seconds=seconds)

        def cycles_past() -> int:
            return sum(
                1
                for batch in self.usage_batches()
                if batch.sampled_at >= until
                and any(sample.environment == environment for sample in batch.samples)
            )

        wait_until(
            lambda: cycles_past() >= 2,
            timeout_s=seconds + 15,
            what=f"the monitor to sample {environment} {seconds} s on and finish the cycle after",
        )


def running_rig(
    state: Path,
    services: tuple[str, ...] = ("monitor",),
    environment: dict[str, str] | None = None,
) -> Iterator[UsageRig]:
    """Redis, kubesim and ``services`` with the short usage settings (and ``environment``);
    stopped when resumed."""
    platform = Platform(
        PlatformOptions(
            state=state,
            pod_start_seconds=0.1,
            services=services,
            environment={**USAGE_SETTINGS, **(environment or {})},
        )
    )
    try:
        platform.start()
        configuration = client.Configuration()
        config.load_kube_config(str(platform.kubeconfig), client_configuration=configuration)
        kube = client.ApiClient(configuration)
        connection = redis.Redis.from_url(platform.redis.url)
        try:
            yield UsageRig(platform, kube, connection)
        finally:
            connection.close()
            kube.close()
    finally:
        platform.stop()


def create_from_profile(rig: UsageRig, http: httpx2.Client, name: str, profile: str) -> None:
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


def make_idle(rig: UsageRig, name: str) -> None:
    """Make ada's environment ``name`` idle in kubesim's simulated usage, and return once its
    pod carries the profile label the worker gave it."""
    core = client.CoreV1Api(rig.kube)
    [pod] = core.list_namespaced_pod(
        ENVIRONMENTS_NAMESPACE, label_selector=f"akros.io/owner=ada,akros.io/env={name}"
    ).items
    assert "akros.io/profile" in pod.metadata.labels
    patch = {"metadata": {"annotations": {"kubesim.akros.io/usage-profile": "idle"}}}
    core.patch_namespaced_pod(pod.metadata.name, ENVIRONMENTS_NAMESPACE, patch)


@pytest.fixture
def usage_rig(tmp_path: Path) -> Iterator[UsageRig]:
    yield from running_rig(tmp_path / "platform")
