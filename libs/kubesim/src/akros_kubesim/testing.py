"""A launcher for tests: runs `kubesim serve` as a real subprocess on a free loopback port.

with run_kubesim(pod_start_seconds=0.2) as cluster:
    config.load_kube_config(str(cluster.kubeconfig))
    ...  # cluster.base_url for the admin endpoints under /_kubesim/
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunningKubesim:
    base_url: str
    kubeconfig: Path
    pid: int

    def admin(self, method: str, path: str, document: Any = None) -> Any:
        """Calls an admin endpoint such as /_kubesim/faults and returns its JSON answer."""
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is this loopback server's
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
            return json.loads(response.read() or b"null")

    def set_faults(self, **settings: Any) -> Any:
        """Replaces the fault settings, e.g. set_faults(failNext=2, errorStatus=429)."""
        return self.admin("PUT", "/_kubesim/faults", settings)

    def clear_faults(self) -> Any:
        return self.admin("DELETE", "/_kubesim/faults")

    def dcgm_metrics(self) -> str:
        url = self.base_url + "/_kubesim/dcgm/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            text: str = response.read().decode()
        return text


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kubesim exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1):  # noqa: S310 - loopback only
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.05)
    raise TimeoutError(f"kubesim did not answer at {url} in time")


@contextlib.contextmanager
def run_kubesim(
    cluster_file: Path | None = None,
    pod_start_seconds: float = 0.2,
    time_factor: float = 0.01,
    extra_args: tuple[str, ...] = (),
    startup_timeout: float = 30.0,
) -> Iterator[RunningKubesim]:
    """Starts kubesim, yields once it answers, and stops that process (by its pid) afterwards."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kubesim-") as workdir:
        kubeconfig = Path(workdir) / "kubeconfig.yaml"
        command = [
            sys.executable, "-m", "akros_kubesim", "serve",
            "--host", "127.0.0.1", "--port", str(port),
            "--kubeconfig-out", str(kubeconfig),
            "--pod-start-seconds", str(pod_start_seconds),
            "--time-factor", str(time_factor),
            *extra_args,
        ]  # fmt: skip
        if cluster_file is not None:
            command += ["--cluster", str(cluster_file)]
        log = open(Path(workdir) / "kubesim.log", "wb")  # noqa: SIM115 - closed in finally below
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own server
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_answering(base_url, process, time.monotonic() + startup_timeout)
            while not kubeconfig.exists():
                time.sleep(0.02)
            yield RunningKubesim(base_url, kubeconfig, process.pid)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
            log.close()
