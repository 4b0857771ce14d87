"""The platform as real processes: Redis, kubesim, the k8s_worker and the gateway, and the Slack
app in HTTP mode in front of it where a test asks for it."""

import json
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from kubernetes import client, config

from akros_devtools import wait_for
from akros_devtools.platform import SERVICES, SLACK, Platform, PlatformOptions
from akros_devtools.slack_standin import (
    Call,
    SlackStandIn,
    create_form_values,
    interaction_body,
    running_standin,
    signed_headers,
    slash_command_body,
)
from tests.cluster import platform_for_tests

QUOTAS = """
default: {cpu: "32", memory: 256Gi, gpus: 4, environments: 5}
overrides:
  whale: {cpu: "512", memory: 4Ti, gpus: 128, environments: 50}
"""
NAMESPACE = "akros-envs"
SLACK_SIGNING_SECRET = "e2e-signing-secret"
SLACK_BOT_TOKEN = "xoxb-e2e-bot-token"


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
        document: dict[str, Any] = wait_for(
            lambda: self.http.get(f"/v1/requests/{request_id}", headers=headers).json(),
            until=lambda document: document["status"] != "pending",
            timeout_s=timeout_s,
            what=f"request {request_id} applied or failed",
        )
        return document


def start_platform(
    state: Path,
    *,
    services: tuple[str, ...] = SERVICES,
    environment: Mapping[str, str] | None = None,
    gateway_port: int = 0,
) -> Platform:
    (state / "quotas.yaml").parent.mkdir(parents=True, exist_ok=True)
    (state / "quotas.yaml").write_text(QUOTAS)
    platform = platform_for_tests(
        PlatformOptions(
            state=state,
            pod_start_seconds=0.2,
            environment={
                "AKROS_QUOTA_FILE": str(state / "quotas.yaml"),
                "AKROS_START_TIMEOUT_S": "30",
                "AKROS_RECLAIM_IDLE_MS": "1000",
                "AKROS_RECLAIM_INTERVAL_MS": "200",
                # The monitor reads node use once per usage cycle (60 s by default).
                "AKROS_USAGE_INTERVAL_S": "2",
                **(environment or {}),
            },
            services=services,
            gateway_port=gateway_port,
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
    state: Path,
    environment: Mapping[str, str] | None = None,
    *,
    services: tuple[str, ...] = SERVICES,
    gateway_port: int = 0,
) -> Generator[Running, None, None]:
    """The platform started in ``state`` with clients to it; stopped when resumed (or
    closed)."""
    platform = start_platform(
        state, services=services, environment=environment, gateway_port=gateway_port
    )
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


@dataclass
class SlackRun:
    """The platform with the Slack app in HTTP mode, a stand-in for Slack's Web API, and
    what Slack sends, signed with a real HMAC."""

    platform: Platform
    slack: SlackStandIn
    http: httpx2.Client
    kube: client.ApiClient

    def send(
        self, body: str, *, secret: str = SLACK_SIGNING_SECRET, timestamp: int | None = None
    ) -> Any:
        headers = signed_headers(secret, body, timestamp=timestamp)
        return self.http.post(self.platform.slack_url, content=body, headers=headers)

    def command(self, user: str, text: str) -> Any:
        return self.send(slash_command_body(user, text, response_url=self.slack.response_url(user)))

    def submit(self, user: str, view: dict[str, Any], view_id: str, values: dict[str, Any]) -> Any:
        payload = {
            "type": "view_submission",
            "team": {"id": "TAKROS"},
            "user": {"id": user},
            "api_app_id": "AAKROS",
            "view": {**view, "id": view_id, "state": {"values": values}},
        }
        return self.send(interaction_body(payload))

    def press(self, user: str, action_id: str, value: str, container: dict[str, Any]) -> Any:
        payload = {
            "type": "block_actions",
            "team": {"id": "TAKROS"},
            "user": {"id": user},
            "api_app_id": "AAKROS",
            "trigger_id": f"trigger-{time.monotonic_ns()}",
            "container": container,
            "actions": [{"type": "button", "action_id": action_id, "value": value}],
        }
        return self.send(interaction_body(payload))

    def create_environment(self, user: str, name: str, **resources: str) -> list[Call]:
        """``/akros create``, then the form submitted; the calls made until its outcome."""
        assert self.command(user, "create").status_code == 200
        opened = self.slack.wait_for(lambda calls: any(c.method == "views.open" for c in calls))
        values = create_form_values(name, **resources)
        answer = self.submit(user, opened[0].args["view"], f"VCREATE{name}", values)
        assert (answer.status_code, answer.text) == (200, "")
        return self.slack.wait_for(lambda calls: any(c.method == "chat.update" for c in calls))

    def deployment_names(self) -> list[str]:
        items = client.AppsV1Api(self.kube).list_namespaced_deployment(NAMESPACE).items
        return sorted(d.metadata.name for d in items)


def running_slack(
    state: Path, users: Mapping[str, str], admins: frozenset[str] = frozenset()
) -> Generator[SlackRun, None, None]:
    """The platform with the Slack app in HTTP mode, ``users`` mapped (Slack id -> platform
    user) and ``admins`` acting as admins; stopped when resumed."""
    with running_standin() as standin:
        platform = start_platform(
            state,
            services=(*SERVICES, SLACK),
            environment={
                "AKROS_SLACK_MODE": "http",
                "AKROS_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
                "AKROS_SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
                "AKROS_SLACK_API_URL": standin.api_url,
                "AKROS_SLACK_USERS": json.dumps(dict(users)),
                "AKROS_SLACK_ADMINS": json.dumps(sorted(admins)),
            },
        )
        configuration = client.Configuration()
        config.load_kube_config(str(platform.kubeconfig), client_configuration=configuration)
        try:
            with httpx2.Client(timeout=10) as http, client.ApiClient(configuration) as kube:
                yield SlackRun(platform, standin, http, kube)
        finally:
            platform.stop()
