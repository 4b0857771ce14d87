"""The capacity loop's reaction time, and the cost of one monitor cycle on a large cluster.

Reaction: the platform runs as real processes (Redis, kubesim with the auto-inference
manifests, k8s_worker, monitor, poller); auto-inference fills the default cluster's 16 GPUs.
Then CHANGES times, alternately, a researcher's 1-GPU pod is created (inference must give a
GPU back) or deleted (inference may take it again). Each reaction is the time from just before
the pod request to the moment a watch on the auto-inference Deployment sees the replica count
the poller was expected to set: capacity-changing event to scale patch applied. The poller's
scale-up window is 0 here, so both directions measure the loop itself; in production
scale-up waits AKROS_SCALE_UP_WINDOW_S on purpose and scale-down, the direction a waiting
researcher cares about, never waits.

The stock alternatives are given by their documented periods (not run): the HPA syncs every
15 s and holds scale-down for a 300 s window, KEDA polls every 30 s, the
cluster-proportional-autoscaler every 10 s.

Monitor cycle: kubesim with 1,000 nodes and 20,000 pods (loaded as bench/kubesim_scale.py
does); one cycle is what the monitor does when it (re)lists: list every node and every pod
through akros_kube, reduce them to capacity and serialise the CapacityChanged event.

The last line is one JSON object. Talks to 127.0.0.1 only. Run it as a module, so that it
can share bench/kubesim_scale.py's loader: `uv run python -m bench.capacity_reaction`.
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from akros_devtools.platform import Platform, PlatformOptions
from akros_kube import Cluster
from akros_kubesim.testing import run_kubesim
from akros_monitor.capacity import cluster_capacity
from bench.kubesim_scale import cluster_file, load_pods

CHANGES = 200
PAUSE_S = 0.2
ALL_GPUS = 16
DEPLOYMENT_WATCH = (
    "/apis/apps/v1/namespaces/akros-inference/deployments"
    "?watch=true&fieldSelector=metadata.name%3Dauto-inference"
)
STOCK_REACTION_S = {
    "HPA (15 s sync)": 15.0,
    "HPA scale-down (15 s sync + 300 s window)": 315.0,
    "KEDA (30 s polling)": 30.0,
    "cluster-proportional-autoscaler (10 s polling)": 10.0,
}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * fraction + 0.5) - 1))]


def _researcher_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"akros.io/kind": "environment"}},
        "spec": {
            "containers": [
                {
                    "name": "work",
                    "image": "registry.local/research/pytorch:1",
                    "resources": {
                        "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": "1"},
                        "limits": {"nvidia.com/gpu": "1"},
                    },
                }
            ]
        },
    }


class ReplicaWatch:
    """The auto-inference Deployment's spec.replicas as a watch reports it, with the time."""

    def __init__(self) -> None:
        self.replicas = -1
        self.changed = asyncio.Condition()

    async def follow(self, session: aiohttp.ClientSession) -> None:
        async with session.get(DEPLOYMENT_WATCH, timeout=aiohttp.ClientTimeout()) as response:
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                replicas = int(((event.get("object") or {}).get("spec") or {}).get("replicas", 0))
                async with self.changed:
                    self.replicas = replicas
                    self.changed.notify_all()

    async def reach(self, replicas: int, timeout_s: float = 30) -> float:
        """Wait until the Deployment wants ``replicas``; the perf_counter time it was seen."""
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(lambda: self.replicas == replicas)
            return time.perf_counter()


async def _react(platform: Platform) -> list[float]:
    reactions: list[float] = []
    async with aiohttp.ClientSession(platform.kubesim_url) as session:
        watch = ReplicaWatch()
        follower = asyncio.create_task(watch.follow(session))
        await watch.reach(ALL_GPUS)
        pods = "/api/v1/namespaces/default/pods"
        for index in range(CHANGES):
            name = f"researcher-{index // 2:03d}"
            started = time.perf_counter()
            if index % 2 == 0:
                async with session.post(pods, json=_researcher_pod(name)) as response:
                    response.raise_for_status()
                seen = await watch.reach(ALL_GPUS - 1)
            else:
                async with session.delete(f"{pods}/{name}?gracePeriodSeconds=0") as response:
                    response.raise_for_status()
                seen = await watch.reach(ALL_GPUS)
            reactions.append(seen - started)
            await asyncio.sleep(PAUSE_S)
        follower.cancel()
    return reactions


def measure_reaction(state: Path) -> list[float]:
    platform = Platform(
        PlatformOptions(
            state=state,
            pod_start_seconds=0.1,
            services=("k8s-worker", "monitor", "poller"),
            environment={"AKROS_SCALE_UP_WINDOW_S": "0"},
        )
    )
    try:
        platform.start()
        return asyncio.run(_react(platform))
    finally:
        platform.stop()


async def _monitor_cycle(kubeconfig: Path) -> tuple[float, int, int]:
    cluster = await Cluster.connect(kubeconfig)
    try:
        started = time.perf_counter()
        nodes, _ = await cluster.list("Node")
        pods, _ = await cluster.list("Pod")
        event = cluster_capacity(nodes, pods).event(
            request_id="bench", observed_at=datetime.now(UTC)
        )
        event.model_dump_json()
        return time.perf_counter() - started, len(nodes), len(pods)
    finally:
        await cluster.close()


def measure_monitor_cycle(directory: Path) -> tuple[float, int, int]:
    with run_kubesim(cluster_file(directory), pod_start_seconds=0.5, startup_timeout=120) as sim:
        asyncio.run(load_pods(sim.base_url))
        time.sleep(2)  # let the simulated kubelets start every pod
        cycles = [asyncio.run(_monitor_cycle(sim.kubeconfig)) for _ in range(3)]
    return min(cycles)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="capacity-bench-") as workdir:
        directory = Path(workdir)
        reactions = measure_reaction(directory / "platform")
        p50, p99 = _percentile(reactions, 0.5), _percentile(reactions, 0.99)
        downs, ups = reactions[0::2], reactions[1::2]
        print(f"{len(reactions)} capacity changes (pod created or deleted) to scale applied:")
        print(
            f"  p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms,"
            f" max {max(reactions) * 1000:.0f} ms"
        )
        print(
            f"  scale-down after a create: p50 {statistics.median(downs) * 1000:.0f} ms; "
            f"scale-up after a delete: p50 {statistics.median(ups) * 1000:.0f} ms"
        )
        print("stock alternatives, reaction by their documented period (ratio to our p99):")
        for name, seconds in STOCK_REACTION_S.items():
            print(f"  {name}: {seconds:.0f} s = {seconds / p99:.0f}x slower")
        cycle_s, nodes, pods = measure_monitor_cycle(directory)
        print(f"one monitor cycle over {nodes} nodes and {pods} pods: {cycle_s:.2f} s (best of 3)")
    figures = {
        "changes": len(reactions),
        "reaction_p50_ms": round(p50 * 1000, 1),
        "reaction_p99_ms": round(p99 * 1000, 1),
        "reaction_max_ms": round(max(reactions) * 1000, 1),
        "scale_down_p50_ms": round(statistics.median(downs) * 1000, 1),
        "scale_up_p50_ms": round(statistics.median(ups) * 1000, 1),
        **{
            f"x_{key}": round(seconds / p99, 1)
            for key, seconds in zip(
                ("hpa", "hpa_scale_down", "keda", "cpa"), STOCK_REACTION_S.values(), strict=True
            )
        },
        "monitor_cycle_s": round(cycle_s, 3),
        "monitor_cycle_nodes": nodes,
        "monitor_cycle_pods": pods,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
