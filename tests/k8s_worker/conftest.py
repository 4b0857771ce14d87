"""A worker process between a real Redis and kubesim, driven by publishing commands."""

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from kubernetes import client, config

from akros_bus.wire import DATA_FIELD
from akros_devtools import ChildProcess, wait_until
from akros_kubesim.testing import RunningKubesim, run_kubesim
from akros_msgs import Actor, EnvironmentStarting, Message, Role, Source
from akros_msgs.streams import NOTIFICATIONS, RESULTS, stream_of
from akros_readmodel.views import RequestState, RequestView

ALICE = Actor(user_id="alice", source=Source.HTTP, role=Role.RESEARCHER)
NAMESPACE = "akros-envs"

CATALOG = """
images:
  pytorch: {image: "registry.local/research/pytorch:1"}
  broken: {image: "registry.invalid/research/broken:1"}
"""
QUOTAS = """
default: {cpu: "32", memory: 256Gi, gpus: 4, environments: 5}
overrides:
  tiny: {cpu: "4", memory: 16Gi, gpus: 0, environments: 1}
  whale: {cpu: "512", memory: 4Ti, gpus: 128, environments: 50}
"""


@dataclass
class WorkerHarness:
    redis: "redis.Redis"
    kubesim: RunningKubesim
    directory: Path
    env: dict[str, str]
    workers: list[ChildProcess] = field(default_factory=list)

    def start_worker(self, name: str = "worker") -> ChildProcess:
        worker = ChildProcess.python_module(
            "akros_k8s_worker.main", log_path=self.directory / f"{name}.log", env=self.env
        ).start()
        self.workers.append(worker)
        return worker

    def send(self, command: Message) -> None:
        """Publish as the gateway does: the request recorded pending, then the command."""
        self.record_pending(
            command.request_id, str(getattr(command, "type", "")), command.actor.user_id
        )
        self.redis.xadd(stream_of(command).name, {DATA_FIELD: command.model_dump_json()})

    def record_pending(self, request_id: str, command_type: str, actor: str) -> None:
        """The request recorded pending, as the gateway records what it accepts."""
        view = RequestView(
            request_id=request_id,
            state=RequestState.PENDING,
            command_type=command_type,
            actor=actor,
        )
        self.redis.set(f"akros:rm:req:{request_id}", view.model_dump_json())

    def results(self) -> list[Message]:
        """The outcomes on the results stream (not the stages of starts on their way)."""
        return [m for m in self._results_stream() if not isinstance(m, EnvironmentStarting)]

    def stages(self, request_id: str) -> list[EnvironmentStarting]:
        return [
            m
            for m in self._results_stream()
            if isinstance(m, EnvironmentStarting) and m.request_id == request_id
        ]

    def _results_stream(self) -> list[Message]:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrange(RESULTS.name))
        return [RESULTS.parse(fields[DATA_FIELD]) for _, fields in entries]

    def notifications(self) -> list[Message]:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], self.redis.xrange(NOTIFICATIONS.name)
        )
        return [NOTIFICATIONS.parse(fields[DATA_FIELD]) for _, fields in entries]

    def wait_for_result(self, request_id: str, timeout_s: float = 20) -> Message:
        def found() -> bool:
            return any(m.request_id == request_id for m in self.results())

        wait_until(found, timeout_s=timeout_s, what=f"an outcome of {request_id}", interval_s=0.1)
        return next(m for m in self.results() if m.request_id == request_id)

    def view(self, owner: str, name: str) -> dict[str, Any] | None:
        raw = self.redis.get(f"akros:rm:env:{owner}:{name}")
        return None if raw is None else dict(json.loads(raw))

    def request_state(self, request_id: str) -> str:
        raw = self.redis.get(f"akros:rm:req:{request_id}")
        return str(json.loads(raw)["state"]) if raw else ""

    def logs(self) -> str:
        return "\n".join(w.log_text() for w in self.workers)


@contextlib.contextmanager
def worker_harness(
    directory: Path,
    redis_url: str,
    *,
    catalog: str = CATALOG,
    cluster_file: Path | None = None,
    time_factor: float = 0.01,
) -> Iterator[WorkerHarness]:
    """Redis, kubesim (of ``cluster_file``, else the default cluster) and the environment
    of a worker; the workers it starts are stopped at the end."""
    (directory / "catalog.yaml").write_text(catalog)
    (directory / "quotas.yaml").write_text(QUOTAS)
    connection = redis.Redis.from_url(redis_url)
    with run_kubesim(
        cluster_file=cluster_file, pod_start_seconds=0.2, time_factor=time_factor
    ) as kubesim:
        env = {
            "AKROS_REDIS_URL": redis_url,
            "AKROS_KUBECONFIG": str(kubesim.kubeconfig),
            "AKROS_CATALOG_FILE": str(directory / "catalog.yaml"),
            "AKROS_QUOTA_FILE": str(directory / "quotas.yaml"),
            "AKROS_STORAGE_CLASS": "local-path",
            "AKROS_START_TIMEOUT_S": "30",
            "AKROS_RECLAIM_IDLE_MS": "1000",
            "AKROS_RECLAIM_INTERVAL_MS": "200",
            "AKROS_POLL_INTERVAL_MS": "50",
        }
        harness = WorkerHarness(connection, kubesim, directory, env)
        try:
            yield harness
        finally:
            for worker in harness.workers:
                worker.stop()
            connection.close()


@pytest.fixture
def harness(tmp_path: Path, redis_url: str) -> Iterator[WorkerHarness]:
    with worker_harness(tmp_path, redis_url) as harness:
        yield harness


@pytest.fixture
def kube(harness: WorkerHarness) -> Iterator[client.ApiClient]:
    """The official client, configured from kubesim's kubeconfig, to check what exists."""
    configuration = client.Configuration()
    config.load_kube_config(str(harness.kubesim.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api
