"""A newcomer's everyday kubectl session against kubesim, with the oldest and newest kubectl.

kubectl 1.37, like every client-go program, writes built-in objects as protobuf and asks for
protobuf answers; kubectl 1.20 writes JSON. The session must work either way.
"""

import json
import re
import uuid
from typing import Any

import pytest

from akros_kubesim.testing import RunningKubesim
from tests.kubesim.conftest import (
    KUBECTL_NEWEST,
    KUBECTL_OLDEST,
    KubectlRunner,
    kubectl_binary,
    kubectl_runner,
)

PROTOBUF = "application/vnd.kubernetes.protobuf"


@pytest.fixture(params=[KUBECTL_OLDEST, KUBECTL_NEWEST])
def release(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def kubectl(
    release: str, cluster: RunningKubesim, tmp_path_factory: pytest.TempPathFactory
) -> KubectlRunner:
    home = tmp_path_factory.mktemp(f"home-{release}")
    return kubectl_runner(kubectl_binary(release), cluster.kubeconfig, home)


def _get(kubectl: KubectlRunner, *arguments: str) -> Any:
    return json.loads(kubectl("get", *arguments, "-o", "json").stdout)


def _logged_headers(log: str, first_line: str) -> dict[str, str]:
    """The headers kubectl -v=8 logged in the entry whose first line matches first_line (a
    regular expression): `"Request" verb="POST" url=... headers=<`, tab-indented lines, ` >`."""
    match = re.search(first_line + r"[^\n]*headers=<\n((?:\t[^\n]*\n)*) >", log)
    assert match, f"no logged entry {first_line!r} in:\n{log}"
    lines = (line.strip().split(": ", 1) for line in match.group(1).splitlines())
    return {name: value for name, value in lines}


def test_kubectl_1_37_writes_and_reads_protobuf_1_20_json(
    release: str, kubectl: KubectlRunner
) -> None:
    """-v=8 logs each request's and answer's headers (1.20 in its older format)."""
    name = f"wire-{uuid.uuid4().hex[:6]}"
    log = kubectl("create", "namespace", name, "-v=8").stderr
    if release == KUBECTL_NEWEST:
        request = _logged_headers(log, r'"Request" verb="POST" url="[^"]*/api/v1/namespaces\?')
        answer = _logged_headers(log, r'"Response" status="201 Created"')
        assert request["Content-Type"] == PROTOBUF
        assert request["Accept"] == f"{PROTOBUF},application/json"
        assert answer["Content-Type"] == PROTOBUF
    else:
        assert 'Request Body: {"apiVersion":"v1","kind":"Namespace"' in log
        assert PROTOBUF not in log
    assert _get(kubectl, "namespace", name)["status"]["phase"] == "Active"


def test_an_everyday_session_works(release: str, kubectl: KubectlRunner) -> None:
    ns = f"session-{uuid.uuid4().hex[:6]}"
    assert kubectl("create", "namespace", ns).stdout.strip() == f"namespace/{ns} created"
    n = ("-n", ns)
    kubectl(*n, "create", "secret", "generic", "tokens", "--from-literal=token=s3cret")
    kubectl(*n, "create", "configmap", "settings", "--from-literal=mode=train")
    kubectl(*n, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=2")
    kubectl(*n, "create", "service", "clusterip", "backend", "--tcp=80:8080")
    kubectl(*n, "run", "lab", "--image=busybox:1.36", "--labels=app=lab", "--", "sleep", "3600")
    kubectl(*n, "expose", "deployment", "web", "--port=80", "--target-port=8080")
    kubectl(*n, "scale", "deployment", "web", "--replicas=3")
    kubectl(*n, "label", "pod", "lab", "tier=research")
    kubectl(*n, "annotate", "deployment", "web", "akros.io/note=hello")
    kubectl(*n, "rollout", "restart", "deployment", "web")
    status = kubectl(*n, "rollout", "status", "deployment", "web", "--timeout=60s").stdout
    assert status.strip().endswith('deployment "web" successfully rolled out')
    history = kubectl(*n, "rollout", "history", "deployment", "web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    assert _get(kubectl, *n, "secret", "tokens")["data"] == {"token": "czNjcmV0"}
    assert _get(kubectl, *n, "configmap", "settings")["data"] == {"mode": "train"}
    web = _get(kubectl, *n, "deployment", "web")
    assert web["spec"]["replicas"] == 3
    assert web["status"]["updatedReplicas"] == 3
    assert web["metadata"]["annotations"]["akros.io/note"] == "hello"
    assert "kubectl.kubernetes.io/restartedAt" in web["spec"]["template"]["metadata"]["annotations"]
    exposed = _get(kubectl, *n, "service", "web")
    assert exposed["spec"]["selector"] == {"app": "web"}
    assert exposed["spec"]["ports"][0]["targetPort"] == 8080
    assert _get(kubectl, *n, "service", "backend")["spec"]["ports"][0]["port"] == 80
    lab = _get(kubectl, *n, "pod", "lab")
    assert lab["metadata"]["labels"] == {"app": "lab", "tier": "research"}
    assert lab["spec"]["containers"][0]["args"] == ["sleep", "3600"]

    kubectl(*n, "delete", "pod", "lab", "--grace-period=0", "--force")
    kubectl(*n, "delete", "configmap/settings", "secret/tokens", "service/backend")
    names = kubectl(*n, "get", "pods,configmaps,secrets,services", "-o", "name").stdout.split()
    assert "pod/lab" not in names
    assert not {"configmap/settings", "secret/tokens", "service/backend"} & set(names)
    # The namespace still holds the deployment, its pods (with grace periods) and a service.
    deleted = kubectl("delete", "namespace", ns, "--wait=true", "--timeout=60s")
    assert deleted.stdout.strip() == f'namespace "{ns}" deleted'
    gone = kubectl("get", "namespace", ns, check=False)
    assert "NotFound" in gone.stderr
