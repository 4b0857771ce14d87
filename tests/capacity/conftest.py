"""The capacity loop as real processes (Redis, kubesim, worker, monitor, poller), with the
cluster changed directly through the official client."""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from kubernetes import client, config

from akros_bus.wire import DATA_FIELD
from akros_devtools import wait_until
from akros_devtools.platform import Platform, PlatformOptions
from akros_devtools.streams import seconds_from_now, wait_until_handled
from akros_msgs import ScaleDeployment
from akros_msgs.streams import CAPACITY, SCALE_COMMANDS, Groups

INFERENCE_NAMESPACE = "akros-inference"
INFERENCE_DEPLOYMENT = "auto-inference"
ALL_GPUS = 16  # kubesim's default cluster: two 8-GPU servers; a replica takes one GPU
LOOP_SERVICES = ("k8s-worker", "monitor", "poller")


@dataclass
class CapacityLoop:
    platform: Platform
    kube: client.ApiClient
    redis: "redis.Redis"

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.kube)

    def replicas(self) -> int:
        deployment = client.AppsV1Api(self.kube).read_namespaced_deployment(
            INFERENCE_DEPLOYMENT, INFERENCE_NAMESPACE
        )
        return int(deployment.spec.replicas)

    def wait_for_replicas(self, wanted: int, timeout_s: float = 15) -> None:
        wait_until(
            lambda: self.replicas() == wanted,
            timeout_s=timeout_s,
            interval_s=0.05,
            what=f"auto-inference at {wanted} replicas (now {self.replicas()})",
        )

    def poller_handled_through(self, seconds: float) -> None:
        """Wait until the poller has handled every capacity event the monitor published in
        the next ``seconds``, and one after: a scale it decided on is published before its
        event is acknowledged, so none missing from ``scale_commands()`` then means the
        poller decided against it. The monitor sends its capacity on a heartbeat, so events
        keep coming when nothing changes."""
        wait_until_handled(
            self.redis,
            CAPACITY.name,
            Groups.POLLER,
            through=seconds_from_now(seconds),
            timeout_s=seconds + 15,
        )

    def scale_commands(self) -> list[int]:
        """The replica counts the poller commanded, in order."""
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrange(SCALE_COMMANDS.name)
        )
        commands = [SCALE_COMMANDS.parse(fields[DATA_FIELD]) for _, fields in entries]
        return [c.replicas for c in commands if isinstance(c, ScaleDeployment)]

    def poller_status(self) -> dict[str, str]:
        raw = cast(dict[bytes, bytes], self.redis.hgetall("akros:poller:status"))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def researcher_pod(self, name: str, gpus: int, **spec: Any) -> None:
        """A pod labelled as a researcher's environment, taking ``gpus``; ``spec``: more of
        the pod's spec (tolerations, a node selector, volumes)."""
        body: dict[str, Any] = {
            "metadata": {"name": name, "labels": {"akros.io/kind": "environment"}},
            "spec": {
                "containers": [
                    {
                        "name": "work",
                        "image": "registry.local/research/pytorch:1",
                        "resources": {
                            "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": str(gpus)},
                            "limits": {"nvidia.com/gpu": str(gpus)},
                        },
                    }
                ],
                **spec,
            },
        }
        self.core.create_namespaced_pod("default", body)

    def delete_pod(self, name: str) -> None:
        self.core.delete_namespaced_pod(name, "default", grace_period_seconds=0)


LoopFactory = Callable[[Mapping[str, str]], CapacityLoop]


@pytest.fixture
def start_loop(tmp_path: Path) -> Iterator[LoopFactory]:
    """Starts the loop with the given poller settings (AKROS_*); stopped after the test."""
    started: list[tuple[Platform, client.ApiClient, redis.Redis]] = []

    def start(settings: Mapping[str, str]) -> CapacityLoop:
        platform = Platform(
            PlatformOptions(
                state=tmp_path / f"loop-{len(started)}",
                pod_start_seconds=0.1,
                services=LOOP_SERVICES,
                environment={
                    "AKROS_CAPACITY_HEARTBEAT_S": "0.5",
                    "AKROS_POLL_INTERVAL_MS": "50",
                    **settings,
                },
            )
        )
        try:
            platform.start()
        except BaseException:
            platform.stop()
            raise
        configuration = client.Configuration()
        config.load_kube_config(str(platform.kubeconfig), client_configuration=configuration)
        kube = client.ApiClient(configuration)
        connection = redis.Redis.from_url(platform.redis.url)
        started.append((platform, kube, connection))
        return CapacityLoop(platform, kube, connection)

    try:
        yield start
    finally:
        for platform, kube, connection in started:
            connection.close()
            kube.close()
            platform.stop()
