"""kubesim at scale: 1,000 nodes and 20,000 pods.

Measures listing every pod through the official client (as JSON, and as protobuf with a raw
request: what client-go programs ask for) and through kubectl 1.37 and 1.20 (`get pods -A`),
the server's resident memory, and the rate of creating then deleting 1,000 pods. Targets
(issues 3 and 15): each list < 2 s, RSS < 1.5 GB, >= 300 pods/s.
The last line printed is one JSON object with the figures. Talks to 127.0.0.1 only.

    uv run python -m bench.kubesim_scale [--nodes N --pods N --churn N]

(smaller sizes only to check that the benchmark runs; the figures are for the defaults).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kubernetes import client, config

from akros_kubesim import protobuf
from akros_kubesim.testing import RunningKubesim, run_kubesim

NODES = 1_000
PODS = 20_000
CHURN = 1_000
NAMESPACES = 20
ROOT = Path(__file__).resolve().parent.parent


def kubectl_binary(newest: bool = False) -> str:
    """Debian's kubectl 1.20 (scripts/ensure-tools.sh), or the newest, 1.37 (`uv sync`)."""
    if newest:
        binary = os.environ.get("AKROS_KUBECTL_NEWEST") or str(ROOT / ".venv" / "bin" / "kubectl")
        if not Path(binary).exists():
            raise SystemExit(f"no kubectl 1.37 at {binary}: run `make sync` first")
        return binary
    given = os.environ.get("AKROS_KUBECTL")
    if given:
        return given
    for line in (ROOT / ".akros" / "tools" / "paths").read_text().splitlines():
        if line.startswith("KUBECTL="):
            return line.removeprefix("KUBECTL=")
    raise SystemExit("run scripts/ensure-tools.sh first: no kubectl recorded")


def cluster_file(directory: Path, node_count: int = NODES) -> Path:
    nodes = [
        {"name": f"node-{i:04d}", "cpu": 64, "memory": "256Gi", "pods": 110}
        for i in range(node_count)
    ]
    path = directory / "cluster.yaml"
    path.write_text(yaml.safe_dump({"nodes": nodes}))
    return path


def pod_body(name: str, node: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "main",
                "image": "python:3.11",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }
        ]
    }
    if node is not None:
        spec["nodeName"] = node  # bound up front, as a DaemonSet's pods are
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "yes"}},
        "spec": spec,
    }


async def load_pods(
    base_url: str,
    body: Callable[[int, str], dict[str, Any]] | None = None,
    pod_count: int = PODS,
    node_count: int = NODES,
) -> float:
    """Creates the 20,000 resident pods over 32 concurrent connections; returns the seconds.
    ``body`` makes pod ``index`` bound to a node (default: ``pod_body``'s plain pods)."""
    started = time.perf_counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(pod_count):
        queue.put_nowait(index)
    async with aiohttp.ClientSession(base_url) as session:
        for index in range(NAMESPACES):
            await session.post(
                "/api/v1/namespaces", json={"metadata": {"name": f"bench-{index:02d}"}}
            )

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                namespace = f"bench-{index % NAMESPACES:02d}"
                node = f"node-{index % node_count:04d}"
                manifest = body(index, node) if body else pod_body(f"pod-{index:05d}", node)
                async with session.post(
                    f"/api/v1/namespaces/{namespace}/pods", json=manifest
                ) as response:
                    if response.status != 201:
                        raise RuntimeError(await response.text())

        await asyncio.gather(*(worker() for _ in range(32)))
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def time_client_lists(cluster: RunningKubesim) -> tuple[float, float, int]:
    """(seconds for a raw JSON list, seconds for a list into typed models, pods seen)."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = client.CoreV1Api(api)
    started = time.perf_counter()
    response = core.list_pod_for_all_namespaces(_preload_content=False)
    count = len(json.loads(response.data)["items"])
    raw_seconds = time.perf_counter() - started
    started = time.perf_counter()
    typed = core.list_pod_for_all_namespaces()
    typed_seconds = time.perf_counter() - started
    assert len(typed.items) == count
    api.close()
    return raw_seconds, typed_seconds, count


def time_protobuf_list(cluster: RunningKubesim) -> tuple[float, float, int, int]:
    """(seconds for the list answered in protobuf, seconds kubesim's codec takes to decode it
    here, bytes, pods seen). The request is the official client's, with the Accept header a
    client-go program sends; the client cannot decode protobuf, so the answer is kept raw."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = client.CoreV1Api(api)
    accept = f"{protobuf.MEDIA_TYPE},application/json"
    started = time.perf_counter()
    response = core.list_pod_for_all_namespaces(_preload_content=False, _headers={"Accept": accept})
    body = response.data
    seconds = time.perf_counter() - started
    content_type = response.headers["Content-Type"]
    if content_type != protobuf.MEDIA_TYPE:
        raise RuntimeError(f"the list came back as {content_type}")
    started = time.perf_counter()
    count = len(protobuf.decode(body)["items"])
    decode_seconds = time.perf_counter() - started
    api.close()
    return seconds, decode_seconds, len(body), count


def time_kubectl_list(
    cluster: RunningKubesim, home: Path, *options: str, newest: bool = False
) -> tuple[float, int]:
    command = [kubectl_binary(newest), "--kubeconfig", str(cluster.kubeconfig)]
    environment = {"HOME": str(home), "PATH": os.environ.get("PATH", "")}
    subprocess.run(
        [*command, "get", "nodes", "-o", "name"], check=True, capture_output=True, env=environment
    )
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "get", "pods", "-A", *options],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    seconds = time.perf_counter() - started
    return seconds, len(result.stdout.splitlines()) - 1


def churn(cluster: RunningKubesim, count: int = CHURN) -> float:
    """Creates then deletes 1,000 pods through the official client (8 threads); pods/s."""
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    api.configuration.connection_pool_maxsize = 8
    core = client.CoreV1Api(api)
    names = [f"churn-{i:04d}" for i in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: core.create_namespaced_pod("default", pod_body(n, None)), names))
        list(
            pool.map(
                lambda n: core.delete_namespaced_pod(n, "default", grace_period_seconds=0), names
            )
        )
    seconds = time.perf_counter() - started
    api.close()
    return count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=NODES)
    parser.add_argument("--pods", type=int, default=PODS)
    parser.add_argument("--churn", type=int, default=CHURN)
    sizes = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubesim-bench-") as workdir:
        directory = Path(workdir)
        with run_kubesim(
            cluster_file(directory, sizes.nodes), pod_start_seconds=0.5, startup_timeout=120
        ) as cluster:
            load_seconds = asyncio.run(
                load_pods(cluster.base_url, pod_count=sizes.pods, node_count=sizes.nodes)
            )
            load_rate = sizes.pods / load_seconds
            print(
                f"loaded {sizes.pods} pods on {sizes.nodes} nodes: {load_seconds:.1f} s, "
                f"{load_rate:.0f} pods/s"
            )
            time.sleep(2)  # let the simulated kubelets start every pod
            raw_seconds, typed_seconds, count = time_client_lists(cluster)
            print(f"official client, list all {count} pods:")
            print(f"  {raw_seconds:.2f} s as JSON (_preload_content=False, then json.loads)")
            print(f"  {typed_seconds:.2f} s deserialised into V1Pod models by the client")
            proto_seconds, decode_seconds, proto_bytes, proto_count = time_protobuf_list(cluster)
            if proto_count != count:
                raise RuntimeError(f"the protobuf list had {proto_count} pods, not {count}")
            print(f"  {proto_seconds:.2f} s as protobuf (raw request, {proto_bytes / 1e6:.1f} MB)")
            print(f"    then {decode_seconds:.2f} s to decode it with kubesim's Python codec")
            (directory / "newest").mkdir()  # a discovery cache of its own
            newest_seconds, newest_rows = time_kubectl_list(
                cluster, directory / "newest", newest=True
            )
            print(f"kubectl 1.37 get pods -A ({newest_rows} rows): {newest_seconds:.2f} s")
            kubectl_seconds, rows = time_kubectl_list(cluster, directory)
            print(f"kubectl 1.20 get pods -A ({rows} rows): {kubectl_seconds:.2f} s")
            # kubesim answers Table lists whole; --chunk-size=0 asks for that explicitly, as a
            # cross-check that the default invocation pays nothing for its page size.
            unchunked_seconds, _ = time_kubectl_list(cluster, directory, "--chunk-size=0")
            print(f"kubectl 1.20 get pods -A --chunk-size=0: {unchunked_seconds:.2f} s")
            memory = rss_mb(cluster.pid)
            print(f"server RSS with {count} pods: {memory:.0f} MB")
            rate = churn(cluster, sizes.churn)
            print(
                f"create then delete {sizes.churn} pods (official client, 8 threads): "
                f"{rate:.0f} pods/s"
            )
            figures = {
                "nodes": sizes.nodes,
                "pods": count,
                "client_list_s": round(raw_seconds, 3),
                "client_typed_list_s": round(typed_seconds, 3),
                "client_protobuf_list_s": round(proto_seconds, 3),
                "protobuf_list_bytes": proto_bytes,
                "protobuf_decode_s": round(decode_seconds, 3),
                "kubectl_newest_list_s": round(newest_seconds, 3),
                "kubectl_list_s": round(kubectl_seconds, 3),
                "kubectl_unchunked_list_s": round(unchunked_seconds, 3),
                "rss_mb": round(memory, 1),
                "pods_per_s": round(rate, 1),
                "load_pods_per_s": round(load_rate, 1),
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
            }
            print(json.dumps(figures))


if __name__ == "__main__":
    main()
