"""The whole platform as local processes: Redis, kubesim, and every service.

Used by `make run` (state under .akros/) and by the end-to-end tests and benchmarks (state
in a temporary directory). Each part is a child process with its log in the state
directory; everything is stopped by pid, in reverse order of start.
"""

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from akros_devtools.processes import ChildProcess, free_port
from akros_devtools.redis_server import LocalRedis
from akros_devtools.waiting import wait_until

SERVICES = ("k8s-worker", "api-gateway", "monitor", "poller")
DASHBOARD = "dashboard"
"""Started on request (``services``): `make run` and the dashboard's browser test want it."""
SLACK = "slack"
"""Started only when asked for (it needs Slack credentials, or a local stand-in of Slack)."""
# What each consumer service logs once it is up.
_CONSUMERS = {
    "k8s-worker": ("akros-k8s-worker", '"service running"'),
    "monitor": ("akros-monitor", '"service running"'),
    "poller": ("akros-poller", '"service running"'),
    SLACK: ("akros-slack", '"slack app listening"'),
}
_INFERENCE = Path(__file__).resolve().parents[4] / "deploy" / "base" / "inference"
# Created in kubesim at start, in this order: the platform's auto-inference workload.
PLATFORM_MANIFESTS = tuple(
    _INFERENCE / name for name in ("namespace.yaml", "priorityclass.yaml", "deployment.yaml")
)
# The default class of the team's cluster (deploy/rke2/local-path-storage.yaml) and of kubesim's
# default cluster, as cluster-file YAML: a cluster file of nodes alone has no class, and there,
# as on a real cluster without a provisioner, the environments' claims never bind.
LOCAL_PATH_CLASS_NAME = "local-path"
LOCAL_PATH_STORAGE_CLASS = """objects:
  - apiVersion: storage.k8s.io/v1
    kind: StorageClass
    metadata:
      name: local-path
      annotations: {storageclass.kubernetes.io/is-default-class: "true"}
    provisioner: rancher.io/local-path
    volumeBindingMode: WaitForFirstConsumer
    reclaimPolicy: Delete
"""


def _console_script(name: str) -> str:
    """A console script of this virtual environment (where the workspace is installed)."""
    return str(Path(sys.executable).parent / name)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 -- loopback
            return bool(response.status < 500)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@dataclass
class PlatformOptions:
    state: Path
    redis_port: int = 0
    kubesim_port: int = 0
    gateway_port: int = 0
    dashboard_port: int = 0
    slack_port: int = 0
    monitor_metrics_port: int = 0
    cluster_file: Path | None = None
    pod_start_seconds: float | None = None
    time_factor: float = 0.01
    """kubesim's scale of real-cluster durations (grace periods, pulls, metrics-server's
    resolution): tests and benchmarks keep a real cluster's sequence of states at a hundredth
    of its time; `make run` chooses its own (akros_devtools.devstack)."""
    environment: dict[str, str] = field(default_factory=dict)
    """Extra AKROS_* settings for every service (catalog and quota files, timeouts...)."""
    services: tuple[str, ...] = SERVICES
    kubesim_niceness: int = 0
    """Run kubesim at a lower CPU priority: benchmarks use it to model an API server that runs
    on its own control-plane machine instead of competing for the platform's cores."""
    manifests: tuple[Path, ...] = PLATFORM_MANIFESTS


class Platform:
    def __init__(self, options: PlatformOptions) -> None:
        self.options = options
        state = options.state
        state.mkdir(parents=True, exist_ok=True)
        self.redis = LocalRedis(state / "redis", port=options.redis_port)
        self.kubesim_port = options.kubesim_port or free_port()
        self.gateway_port = options.gateway_port or free_port()
        self.dashboard_port = options.dashboard_port or free_port()
        self.slack_port = options.slack_port or free_port()
        self.monitor_metrics_port = options.monitor_metrics_port or free_port()
        self.kubeconfig = state / "kubeconfig.yaml"
        self.admin_token_file = state / "admin-token"
        self.children: dict[str, ChildProcess] = {}

    @property
    def kubesim_url(self) -> str:
        return f"http://127.0.0.1:{self.kubesim_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def monitor_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_metrics_port}/metrics"

    @property
    def slack_url(self) -> str:
        """Where the Slack app takes signed requests in HTTP mode."""
        return f"http://127.0.0.1:{self.slack_port}/slack/events"

    def service_environment(self) -> dict[str, str]:
        return {
            "AKROS_REDIS_URL": self.redis.url,
            "AKROS_KUBECONFIG": str(self.kubeconfig.resolve()),
            "AKROS_GATEWAY_PORT": str(self.gateway_port),
            "AKROS_SLACK_PORT": str(self.slack_port),
            "AKROS_BOOTSTRAP_ADMIN_TOKEN_FILE": str(self.admin_token_file.resolve()),
            "AKROS_DASHBOARD_GATEWAY_URL": self.gateway_url,
            "AKROS_DASHBOARD_PORT": str(self.dashboard_port),
            "AKROS_MONITOR_METRICS_PORT": str(self.monitor_metrics_port),
            # kubesim's default cluster and the benchmarks' cluster files have this class.
            "AKROS_STORAGE_CLASS": LOCAL_PATH_CLASS_NAME,
            **self.options.environment,
        }

    def start(self) -> None:
        self.redis.start()
        self._start_kubesim()
        for service in self.options.services:
            self.start_service(service)

    def _start_kubesim(self) -> None:
        self.kubeconfig.unlink(missing_ok=True)
        niceness = self.options.kubesim_niceness
        args = [
            *(["nice", "-n", str(niceness)] if niceness else []),
            sys.executable, "-m", "akros_kubesim", "serve",
            "--port", str(self.kubesim_port),
            "--kubeconfig-out", str(self.kubeconfig),
            "--time-factor", str(self.options.time_factor),
        ]  # fmt: skip
        if self.options.cluster_file is not None:
            args += ["--cluster", str(self.options.cluster_file)]
        if self.options.pod_start_seconds is not None:
            args += ["--pod-start-seconds", str(self.options.pod_start_seconds)]
        for manifest in self.options.manifests:
            args += ["--manifests", str(manifest)]
        kubesim = ChildProcess(args, log_path=self.options.state / "kubesim.log").start()
        self.children["kubesim"] = kubesim
        wait_until(
            lambda: self._alive_or_raise(kubesim) and self.kubeconfig.exists()
            and _answers(self.kubesim_url + "/readyz"),
            timeout_s=30,
            what="kubesim to answer",
        )  # fmt: skip

    def start_service(
        self, service: str, *, environment: Mapping[str, str] | None = None
    ) -> ChildProcess:
        """Start one service (again, after a kill) and wait until it is up."""
        env = {**self.service_environment(), **(environment or {})}
        log_path = self.options.state / f"{service}.log"
        if service == "api-gateway":
            child = ChildProcess(
                [_console_script("akros-gateway"), "serve"], log_path=log_path, env=env
            ).start()
            self.children[service] = child
            wait_until(
                lambda: self._alive_or_raise(child) and _answers(self.gateway_url + "/healthz"),
                timeout_s=30,
                what="the gateway to answer",
            )
            wait_until(self.admin_token_file.exists, timeout_s=10, what="the admin token")
            return child
        if service == DASHBOARD:
            child = ChildProcess(
                [_console_script("akros-dashboard")], log_path=log_path, env=env
            ).start()
            self.children[service] = child
            wait_until(
                lambda: (
                    self._alive_or_raise(child) and _answers(self.dashboard_url + "/_stcore/health")
                ),
                timeout_s=60,
                what="the dashboard to answer",
            )
            return child
        script, running = _CONSUMERS[service]
        child = ChildProcess([_console_script(script)], log_path=log_path, env=env).start()
        self.children[service] = child
        wait_until(
            lambda: self._alive_or_raise(child) and running in child.log_text(),
            timeout_s=30,
            what=f"{service} to run",
        )
        return child

    @staticmethod
    def _alive_or_raise(child: ChildProcess) -> bool:
        if not child.alive():
            raise RuntimeError(f"{child.args[0]} exited:\n{child.log_text()[-4000:]}")
        return True

    def kill(self, service: str) -> None:
        """SIGKILL a service, as a crash would."""
        child = self.children.pop(service)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout_s=10)

    def admin_token(self) -> str:
        return self.admin_token_file.read_text().strip()

    def endpoints(self) -> dict[str, Any]:
        return {
            "redis_url": self.redis.url,
            "kubeconfig": str(self.kubeconfig.resolve()),
            "kubesim_url": self.kubesim_url,
            "gateway_url": self.gateway_url,
            **({"dashboard_url": self.dashboard_url} if DASHBOARD in self.children else {}),
            **({"slack_url": self.slack_url} if SLACK in self.children else {}),
            "admin_token_file": str(self.admin_token_file.resolve()),
        }

    def write_endpoints(self) -> Path:
        path = self.options.state / "endpoints.json"
        path.write_text(json.dumps(self.endpoints(), indent=2, sort_keys=True) + "\n")
        return path

    def failed_child(self) -> str | None:
        return next((name for name, child in self.children.items() if not child.alive()), None)

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()
        self.children.clear()
        self.redis.stop()
