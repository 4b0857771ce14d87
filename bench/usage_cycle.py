"""One usage cycle of the monitor on a large cluster, and the monitor's memory.

kubesim runs 1,000 nodes and 20,000 environment pods (loaded as bench/kubesim_scale.py does;
a third idle, a third normal, a third busy, 2,000 owners); the real monitor process samples
them every few seconds: one list of metrics.k8s.io pod metrics, one list of dcgm-exporter
pods (none: the nodes have no GPUs, so nothing to scrape), the window
update of every environment, and the WorkloadUsage batches with any notifications published
to Redis in one round trip. The cycle time is the monitor's own ("usage sampled" took_ms,
the worst, the median and the best of several cycles: the first writes every environment's
state, and one, a grace period in, notifies a third of them at once); the RSS is read from
/proc after those cycles.
Targets (issue 6): a cycle under 2 s, the monitor under 300 MB.

The last line is one JSON object. Talks to 127.0.0.1 only. Run it as a module, so that it
can share bench/kubesim_scale.py's loader: `uv run python -m bench.usage_cycle`.
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from akros_devtools import wait_until
from akros_devtools.platform import Platform, PlatformOptions
from bench.kubesim_scale import PODS, cluster_file, load_pods, rss_mb

CYCLES = 5
INTERVAL_S = 3.0
OWNERS = 2_000
PROFILES = ("idle", "normal", "busy")


def environment_pod(index: int, node: str) -> dict[str, Any]:
    owner, name = f"user{index % OWNERS:04d}", f"env{index:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{owner}-{name}-0",
            "labels": {
                "akros.io/kind": "environment",
                "akros.io/owner": owner,
                "akros.io/env": name,
            },
            "annotations": {"kubesim.akros.io/usage-profile": PROFILES[index % len(PROFILES)]},
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "work",
                    "image": "registry.local/research/pytorch:1",
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                }
            ],
        },
    }


def cycle_times(log: Path) -> list[tuple[float, float]]:
    """(whole cycle, fetching) of every usage cycle that sampled the whole cluster, in s."""
    times = []
    for line in log.read_text().splitlines():
        if '"usage sampled"' not in line:
            continue
        record = json.loads(line)
        if record.get("samples") == PODS:
            times.append((float(record["took_ms"]) / 1000, float(record["fetch_ms"]) / 1000))
    return times


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="usage-bench-") as workdir:
        directory = Path(workdir)
        platform = Platform(
            PlatformOptions(
                state=directory / "platform",
                cluster_file=cluster_file(directory),
                pod_start_seconds=0.5,
                services=(),
                environment={
                    "AKROS_USAGE_INTERVAL_S": str(INTERVAL_S),
                    # The grace period passes during the run, so cycles also notify.
                    "AKROS_UNDERUSE_GRACE_S": str(INTERVAL_S),
                    "AKROS_UNDERUSE_MINIMUM_AGE_S": "0",
                },
            )
        )
        try:
            platform.start()
            load_s = asyncio.run(load_pods(platform.kubesim_url, environment_pod))
            print(f"{PODS} environment pods created in {load_s:.1f} s")
            time.sleep(2)  # let the simulated kubelets start every pod
            monitor = platform.start_service("monitor")
            log = directory / "platform" / "monitor.log"
            wait_until(
                lambda: len(cycle_times(log)) >= CYCLES,
                timeout_s=CYCLES * INTERVAL_S * 10,
                interval_s=0.5,
                what=f"{CYCLES} full usage cycles",
            )
            rss = rss_mb(monitor.pid)
            measured = cycle_times(log)
            times = [cycle for cycle, _ in measured]
            fetches = [fetch for _, fetch in measured]
        finally:
            platform.stop()
    print(
        f"usage cycle over {PODS} pods: best {min(times):.2f} s, worst {max(times):.2f} s "
        f"({len(times)} cycles); monitor RSS {rss:.0f} MB"
    )
    figures = {
        "pods": PODS,
        "cycles": len(times),
        "cycle_s": round(max(times), 3),
        "cycle_median_s": round(statistics.median(times), 3),
        "cycle_best_s": round(min(times), 3),
        "fetch_median_s": round(statistics.median(fetches), 3),
        "rss_mb": round(rss, 1),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
