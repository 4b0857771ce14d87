"""The platform as real processes: Redis, kubesim, the k8s_worker and the gateway."""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from kubernetes import client, config

from akros_devtools.platform import SERVICES, Platform, PlatformOptions

QUOTAS = """
default: {cpu: "32", memory: 256Gi, gpus: 4, environments: 5}
overrides:
  whale: {cpu: "512", memory: 4Ti, gpus: 128, environments: 50}
"""


@dataclass
class Running:
    platform: Platform
    http: httpx2.Client
    kube: client.ApiClient

    def token_for(self, user: str, role: str = "researcher") -> dict[str, str]:
        admin = {"Authorization": f"Bearer {self.platform.admin_token()}"}
        answer = self.http.post("/v1/tokens", json={"user": user, "role": role}, headers=admin)
        assert answer.status_code == 201, answer.text
        return {"Authorization": f"Bearer {answer.json()['token']}"}

    def settle(self, request_id: str, headers: dict[str, str], timeout_s: float = 30) -> Any:
        """Poll the request until it is applied or failed; return its final document."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            document = self.http.get(f"/v1/requests/{request_id}", headers=headers).json()
            if document["status"] != "pending":
                return document
            time.sleep(0.05)
        raise TimeoutError(f"request {request_id} still pending after {timeout_s}s")


def start_platform(
    state: Path,
    *,
    services: tuple[str, ...] = SERVICES,
    environment: Mapping[str, str] | None = None,
) -> Platform:
    (state / "quotas.yaml").parent.mkdir(parents=True, exist_ok=True)
    (state / "quotas.yaml").write_text(QUOTAS)
    platform = Platform(
        PlatformOptions(
            state=state,
            pod_start_seconds=0.2,
            environment={
                "AKROS_QUOTA_FILE": str(state / "quotas.yaml"),
                "AKROS_START_TIMEOUT_S": "30",
                "AKROS_RECLAIM_IDLE_MS": "1000",
                "AKROS_RECLAIM_INTERVAL_MS": "200",
                **(environment or {}),
            },
            services=services,
        )
    )
    try:
        platform.start()
    except BaseException:
        platform.stop()
        raise
    return platform


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    yield from running_platform(tmp_path_factory.mktemp("platform"))


def running_platform(
    state: Path, environment: Mapping[str, str] | None = None
) -> Iterator[Running]:
    """The platform started in ``state`` with clients to it; stopped when resumed."""
    platform = start_platform(state, environment=environment)
    configuration = client.Configuration()
    config.load_kube_config(str(platform.kubeconfig), client_configuration=configuration)
    try:
        with (
            httpx2.Client(base_url=platform.gateway_url, timeout=10) as http,
            client.ApiClient(configuration) as kube,
        ):
            yield Running(platform, http, kube)
    finally:
        platform.stop()
