"""Environment creates through HTTP against kubesim: throughput, overhead and time to ready.

Runs the platform as real processes (Redis, kubesim, k8s_worker, gateway, monitor, poller)
and first sends LONE creates one at a time (the baseline: the overhead of an idle platform),
then CREATES creates in bursts of BURST concurrent HTTP requests from distinct users.
Measures:
- accept latency: the HTTP round trip of POST /v1/environments (202);
- overhead: from the gateway's accept (the command's occurred_at, stamped as it is published)
  to the worker's first write to the cluster, as the worker logs it just before sending it:
  the platform's own cost before Kubernetes work;
- ready: from the gateway's accept to EnvironmentReady (includes kubesim's pod start delay).

It runs twice, with two placements of the processes on this machine's cores: "shared" (every
process on every core, as the kernel schedules them) and, with two cores or more,
"worker-core" (the worker alone on core 0, everything else on the others), which is what a
worker with its own CPU reservation gets on a real cluster. The load generator and kubesim
(standing for the researchers' machines and the API server's) run at a lower CPU priority.
The last line is one JSON object: the worker-core figures at the top level (the shared ones
when the machine has one core), each placement's under its name.
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import httpx2
import redis

from akros_bus.wire import DATA_FIELD
from akros_devtools.figures import percentile
from akros_devtools.platform import LOCAL_PATH_STORAGE_CLASS, Platform, PlatformOptions
from akros_msgs.streams import ENVIRONMENT_COMMANDS, RESULTS

CREATES = 500
BURST = 100
LONE = 20
USERS = 100
POD_START_SECONDS = 0.2
NICENESS = 10
QUOTAS = 'default: {cpu: "64", memory: 512Gi, gpus: 8, environments: 50}\n'
# Room for every environment: 110 pods per node (the kubelet's default) would cap the
# default four-node cluster at 330 pods.
CLUSTER = (
    "nodes:\n"
    + "".join(
        f"  - {{name: cpu-{index}, cpu: 64, memory: 512Gi, pods: 250}}\n" for index in range(4)
    )
    + LOCAL_PATH_STORAGE_CLASS
)


async def _issue_tokens(http: httpx2.AsyncClient, admin: str) -> list[str]:
    tokens = []
    for index in range(USERS):
        answer = await http.post(
            "/v1/tokens",
            json={"user": f"user{index:03d}", "role": "researcher"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        answer.raise_for_status()
        tokens.append(answer.json()["token"])
    return tokens


async def _create(http: httpx2.AsyncClient, token: str, name: str) -> float:
    """One create; its accept latency in ms."""
    started = time.perf_counter()
    answer = await http.post(
        "/v1/environments",
        json={"name": name, "image": "quant-cpu", "cpu": "100m", "memory": "128Mi"},
        headers={"Authorization": f"Bearer {token}"},
    )
    elapsed = time.perf_counter() - started
    if answer.status_code != 202:
        raise RuntimeError(f"create {name} answered {answer.status_code}: {answer.text}")
    return elapsed * 1000


def _entries(client: "redis.Redis", stream: str) -> list[dict[str, Any]]:
    raw = cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(stream))
    return [json.loads(fields[DATA_FIELD]) for _, fields in raw]


def _environment_outcomes(client: "redis.Redis") -> list[dict[str, Any]]:
    """Outcomes of environment creates (the monitor and poller publish other results too)."""
    kinds = {"environment_ready", "command_failed"}
    return [
        o
        for o in _entries(client, RESULTS.name)
        if o["type"] in kinds
        and o.get("command_type", "create_environment") == "create_environment"
    ]


def _wait_for_outcomes(client: "redis.Redis", count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(_environment_outcomes(client)) >= count:
            return
        time.sleep(0.2)
    raise TimeoutError(f"only {len(_environment_outcomes(client))} of {count} outcomes arrived")


def _overheads(worker_log: Path, prefix: str) -> list[float]:
    """The overhead of each create whose name starts with ``prefix``, as the worker logged it."""
    values = []
    for line in worker_log.read_text().splitlines():
        if '"applying environment"' in line:
            record = json.loads(line)
            if str(record["name"]).startswith(prefix):
                values.append(float(record["since_accepted_ms"]))
    return values


def _place(platform: Platform, placement: str) -> None:
    """Pin the processes to cores for ``placement`` ("shared" leaves them to the kernel)."""
    if placement != "worker-core":
        return
    others = set(range(1, os.cpu_count() or 1))
    for service, child in platform.children.items():
        os.sched_setaffinity(child.pid, {0} if service == "k8s-worker" else others)
    redis_server = platform.redis.child
    for pid in ([redis_server.pid] if redis_server else []) + [0]:
        os.sched_setaffinity(pid, others)


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(platform: Platform) -> dict[str, float]:
    processes = {"gateway": "api-gateway", "worker": "k8s-worker", "kubesim": "kubesim"}
    async with httpx2.AsyncClient(
        base_url=platform.gateway_url,
        timeout=60,
        limits=httpx2.Limits(max_connections=BURST, max_keepalive_connections=BURST),
    ) as http:
        tokens = await _issue_tokens(http, platform.admin_token())
        for index in range(LONE):
            await _create(http, tokens[index], f"lone-{index}")
            await asyncio.sleep(0.05)
        client = redis.Redis.from_url(platform.redis.url)
        try:
            _wait_for_outcomes(client, LONE, timeout_s=60)
        finally:
            client.close()
        cpu_before = {k: _cpu_seconds(platform.children[v].pid) for k, v in processes.items()}
        accepts: list[float] = []
        started = time.perf_counter()
        for burst in range(CREATES // BURST):
            accepts += await asyncio.gather(
                *(_create(http, tokens[i % USERS], f"env-{burst}-{i}") for i in range(BURST))
            )
        accepted_s = time.perf_counter() - started
    client = redis.Redis.from_url(platform.redis.url)
    try:
        _wait_for_outcomes(client, LONE + CREATES, timeout_s=300)
        ready_s = time.perf_counter() - started
        accepted_at = {
            m["request_id"]: m["occurred_at"] for m in _entries(client, ENVIRONMENT_COMMANDS.name)
        }
        outcomes = _environment_outcomes(client)
    finally:
        client.close()
    failures = [o for o in outcomes if o["type"] != "environment_ready"]
    if failures:
        raise RuntimeError(f"{len(failures)} creates failed, e.g. {failures[0]}")
    ready_ms = [
        (_timestamp(o["occurred_at"]) - _timestamp(accepted_at[o["request_id"]])) * 1000
        for o in outcomes[LONE:]
    ]
    log = platform.options.state / "k8s-worker.log"
    lone = _overheads(log, "lone-")
    overhead = _overheads(log, "env-")
    cpu_ms = {
        k: (_cpu_seconds(platform.children[v].pid) - cpu_before[k]) * 1000 / CREATES
        for k, v in processes.items()
    }
    return {
        "creates": CREATES,
        "burst": BURST,
        "accepts_per_s": round(CREATES / accepted_s, 1),
        "creates_per_s": round(CREATES / ready_s, 1),
        "accept_p50_ms": round(statistics.median(accepts), 2),
        "accept_p99_ms": round(percentile(accepts, 0.99), 2),
        "overhead_p50_ms": round(statistics.median(overhead), 2),
        "overhead_p99_ms": round(percentile(overhead, 0.99), 2),
        "lone_overhead_p50_ms": round(statistics.median(lone), 2),
        "burst_p99_to_lone_p50": round(percentile(overhead, 0.99) / statistics.median(lone), 1),
        "ready_p50_ms": round(statistics.median(ready_ms), 1),
        "ready_p99_ms": round(percentile(ready_ms, 0.99), 1),
        "pod_start_s": POD_START_SECONDS,
        **{f"{k}_cpu_ms_per_create": round(v, 2) for k, v in cpu_ms.items()},
    }


def _timestamp(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def _run(placement: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory)
        (state / "quotas.yaml").write_text(QUOTAS)
        (state / "cluster.yaml").write_text(CLUSTER)
        platform = Platform(
            PlatformOptions(
                state=state,
                cluster_file=state / "cluster.yaml",
                kubesim_niceness=NICENESS,
                pod_start_seconds=POD_START_SECONDS,
                environment={
                    "AKROS_QUOTA_FILE": str(state / "quotas.yaml"),
                    "AKROS_LOG_LEVEL": "INFO",
                },
            )
        )
        try:
            platform.start()
            _place(platform, placement)
            return asyncio.run(_drive(platform))
        finally:
            platform.stop()
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def _report(placement: str, figures: dict[str, float]) -> None:
    print(f"-- {placement}: {CREATES} creates in bursts of {BURST} concurrent requests")
    print(
        f"accepted: {figures['accepts_per_s']}/s, HTTP p50 {figures['accept_p50_ms']} ms, "
        f"p99 {figures['accept_p99_ms']} ms"
    )
    print(
        f"platform overhead (accept -> worker's first cluster write): "
        f"p50 {figures['overhead_p50_ms']} ms, p99 {figures['overhead_p99_ms']} ms "
        f"(target <= 20); a lone create's p50 {figures['lone_overhead_p50_ms']} ms, "
        f"so the burst's p99 is {figures['burst_p99_to_lone_p50']}x that"
    )
    print(
        f"ready (accept -> EnvironmentReady, pod start {figures['pod_start_s']} s): "
        f"p50 {figures['ready_p50_ms']} ms, p99 {figures['ready_p99_ms']} ms; "
        f"{figures['creates_per_s']} environments ready per second"
    )
    print(
        "CPU per create: "
        + ", ".join(
            f"{name} {figures[name + '_cpu_ms_per_create']} ms"
            for name in ("gateway", "worker", "kubesim")
        )
    )


def main() -> dict[str, Any]:
    # The load generator stands for researchers' own machines, and kubesim for an API server on
    # its control-plane machine: both run at a lower CPU priority than the platform's services,
    # so the figures measure the platform rather than its neighbours on these cores.
    os.nice(NICENESS)
    placements = ["shared"] + (["worker-core"] if (os.cpu_count() or 1) >= 2 else [])
    results: dict[str, dict[str, float]] = {}
    for placement in placements:
        results[placement] = _run(placement)
        _report(placement, results[placement])
    return {**results[placements[-1]], "placement": placements[-1], **results}


if __name__ == "__main__":
    print(json.dumps(main()))
    sys.exit(0)
