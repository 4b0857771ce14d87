"""Debian's kubectl 1.20 against kubesim: the commands researchers and admins actually type."""

import json
import time
import uuid
from pathlib import Path

import pytest

from akros_devtools import wait_for
from tests.kubesim.conftest import KubectlRunner


def _manifest(namespace: str, replicas: int, image: str, cpu: str) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {namespace}
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
      annotations: {{kubesim.akros.io/usage-profile: busy}}
    spec:
      containers:
      - name: web
        image: {image}
        ports:
        - containerPort: 8080
          name: http
        resources:
          requests: {{cpu: {cpu}, memory: 128Mi}}
          limits: {{cpu: "1", memory: 256Mi}}
"""


@pytest.fixture(scope="module")
def project(kubectl: KubectlRunner) -> str:
    name = f"k-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    return name


def _wait_for(kubectl: KubectlRunner, *arguments: str, expect: str, timeout: float = 15.0) -> str:
    return wait_for(
        lambda: kubectl(*arguments).stdout,
        until=lambda output: expect in output,
        timeout_s=timeout,
        interval_s=0.2,
        what=f"{expect!r} in kubectl {' '.join(arguments)}",
    )


def test_version_reports_client_and_server(kubectl: KubectlRunner) -> None:
    output = kubectl("version").stdout
    assert 'GitVersion:"v1.20' in output
    assert "Server Version" in output


def test_get_nodes_lists_the_default_cluster(kubectl: KubectlRunner) -> None:
    lines = kubectl("get", "nodes").stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATUS", "ROLES"]
    names = {line.split()[0] for line in lines[1:]}
    assert names == {"gpu-server-1", "gpu-server-2", "cpu-server-1", "control-plane-1"}
    assert all(line.split()[1] == "Ready" for line in lines[1:])


def test_create_then_apply_twice_keeps_ports_and_resources(
    kubectl: KubectlRunner, project: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(_manifest(project, replicas=2, image="nginx:1.25", cpu="100m"))
    assert "created" in kubectl("create", "-f", str(manifest)).stdout
    manifest.write_text(_manifest(project, replicas=3, image="nginx:1.26", cpu="200m"))
    kubectl("apply", "-f", str(manifest))
    manifest.write_text(_manifest(project, replicas=3, image="nginx:1.27", cpu="200m"))
    kubectl("apply", "-f", str(manifest))
    deployment = json.loads(kubectl("get", "deployment", "web", "-n", project, "-o", "json").stdout)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3
    assert container["image"] == "nginx:1.27"
    assert container["ports"] == [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]
    assert container["resources"]["requests"] == {"cpu": "200m", "memory": "128Mi"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "256Mi"}
    _wait_for(kubectl, "get", "deployment", "web", "-n", project, expect="3/3")


def test_applying_an_environment_manifest_twice_keeps_what_the_server_filled_in(
    kubectl: KubectlRunner, project: str, tmp_path: Path
) -> None:
    """Service, claim, ingress and network policy, applied twice: the cluster IP and the claim's
    default class and protection finalizer, filled in by the server, stay."""
    manifest = tmp_path / "env.yaml"
    template = """
apiVersion: v1
kind: Service
metadata: {{name: env, namespace: {ns}, labels: {{rev: "{rev}"}}}}
spec:
  selector: {{app: env}}
  ports: [{{port: 8888, targetPort: 8888, name: http}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: work, namespace: {ns}, labels: {{rev: "{rev}"}}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 10Gi}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: env, namespace: {ns}}}
spec:
  rules:
  - host: env-{rev}.research.example.org
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {{service: {{name: env, port: {{number: 8888}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: env, namespace: {ns}}}
spec:
  podSelector: {{matchLabels: {{app: env}}}}
  policyTypes: [Ingress]
"""
    manifest.write_text(template.format(ns=project, rev="1"))
    kubectl("apply", "-f", str(manifest))
    first = json.loads(kubectl("get", "service", "env", "-n", project, "-o", "json").stdout)
    manifest.write_text(template.format(ns=project, rev="2"))
    output = kubectl("apply", "-f", str(manifest)).stdout
    assert "service/env configured" in output
    service = json.loads(kubectl("get", "service", "env", "-n", project, "-o", "json").stdout)
    assert service["spec"]["clusterIP"] == first["spec"]["clusterIP"]
    assert service["metadata"]["labels"] == {"rev": "2"}
    claim = json.loads(kubectl("get", "pvc", "work", "-n", project, "-o", "json").stdout)
    assert claim["spec"]["storageClassName"] == "local-path"
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert claim["metadata"]["labels"] == {"rev": "2"}
    ingress = json.loads(kubectl("get", "ingress", "env", "-n", project, "-o", "json").stdout)
    assert ingress["spec"]["rules"][0]["host"] == "env-2.research.example.org"


def test_get_pods_in_all_namespaces_wide_with_labels_and_json(
    kubectl: KubectlRunner, project: str
) -> None:
    # The earlier apply rolled the pods: wait until it is done and the old pods are gone.
    kubectl("rollout", "status", "deployment/web", "-n", project, "--timeout=30s")
    deadline = time.monotonic() + 15
    while True:
        wide = kubectl("get", "pods", "-A", "-o", "wide").stdout.splitlines()
        mine = [line.split() for line in wide[1:] if line.startswith(project)]
        if len(mine) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert wide[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert "NODE" in wide[0]
    assert len(mine) == 3
    workers = {"gpu-server-1", "gpu-server-2", "cpu-server-1"}
    assert all(row[3] == "Running" and row[7] in workers for row in mine)
    labelled = kubectl("get", "pods", "-n", project, "-l", "app=web", "-o", "name").stdout.split()
    assert len(labelled) == 3
    assert kubectl("get", "pods", "-n", project, "-l", "app=other").stdout == ""
    document = json.loads(kubectl("get", "pods", "-n", project, "-o", "json").stdout)
    assert document["kind"] == "List"
    assert all(item["status"]["phase"] == "Running" for item in document["items"])


def test_scale_changes_the_replica_count(kubectl: KubectlRunner, project: str) -> None:
    assert "scaled" in kubectl("scale", "deployment/web", "-n", project, "--replicas=1").stdout
    _wait_for(kubectl, "get", "deployment", "web", "-n", project, expect="1/1")


def test_top_nodes_and_pods_read_metrics(kubectl: KubectlRunner, project: str) -> None:
    _wait_for(kubectl, "get", "deployment", "web", "-n", project, expect="1/1")
    nodes = kubectl("top", "nodes").stdout.splitlines()
    assert nodes[0].split()[:2] == ["NAME", "CPU(cores)"]
    assert len(nodes) == 5
    pods = _wait_for(kubectl, "top", "pods", "-n", project, expect="web-")
    row = next(line.split() for line in pods.splitlines() if line.startswith("web-"))
    assert row[1] == "190m"  # the busy profile uses 95% of the 200m request


def test_logs_of_a_running_pod(kubectl: KubectlRunner, project: str) -> None:
    deadline = time.monotonic() + 15
    pods = kubectl("get", "pods", "-n", project, "-o", "name").stdout.split()
    while len(pods) != 1 and time.monotonic() < deadline:  # scaled-down pods still terminating
        time.sleep(0.2)
        pods = kubectl("get", "pods", "-n", project, "-o", "name").stdout.split()
    pod = pods[0]
    log = kubectl("logs", "-n", project, pod).stdout
    assert "kubesim: container web (nginx:1.27) started" in log


def test_get_watch_prints_changes_until_its_timeout(kubectl: KubectlRunner, project: str) -> None:
    kubectl("create", "configmap", "watched", "-n", project)
    started = time.monotonic()
    result = kubectl("get", "configmaps", "-n", project, "-w", "--request-timeout=2s", check=False)
    assert time.monotonic() - started < 10
    assert "watched" in result.stdout


def test_delete_removes_the_deployment_and_its_pods(kubectl: KubectlRunner, project: str) -> None:
    assert "deleted" in kubectl("delete", "deployment", "web", "-n", project).stdout
    deadline = time.monotonic() + 15
    while (
        kubectl("get", "pods", "-n", project, "-o", "name").stdout and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert kubectl("get", "pods", "-n", project, "-o", "name").stdout == ""
    missing = kubectl("get", "deployment", "web", "-n", project, check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_kubectl_shows_validation_errors_from_the_server(
    kubectl: KubectlRunner, project: str
) -> None:
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c}]}\n"
    )
    result = kubectl("create", "-n", project, "-f", "-", stdin=manifest, check=False)
    assert result.returncode != 0
    assert "is invalid" in result.stderr
    assert "spec.containers[0].image" in result.stderr
