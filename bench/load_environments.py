"""1,000 concurrent environment creates from 50 users against the gateway, the worker and
kubesim (real processes): nothing accepted is lost and per-user quotas hold.

Each user may hold QUOTA environments and sends PER_USER creates, all at once: exactly
USERS * QUOTA must be accepted, the rest refused for quota, and the cluster must end with
exactly one Deployment per accepted create and no user over quota. A 503 (the gateway
shedding load: an owner's quota lock waited for too long) is retried with the same
Idempotency-Key (and so is a dropped connection), as the API asks clients to do. Prints
p50/p99 accept latency (first attempt to final answer), answers per second and creates
applied per second; the last line is one JSON object.

Run: uv run python bench/load_environments.py
"""

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx2
from kubernetes import client

from akros_devtools.figures import percentile

# Run as a script (`make bench`), which puts bench/ rather than the repository on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.resilience_faults import (
    ENVIRONMENT_NAMESPACE,
    Report,
    Rig,
    rig,
    settle,
)

USERS = 50
PER_USER = 20
QUOTA = 15
CONNECTIONS = 1000
MAX_ATTEMPTS = 20
QUOTAS = f'default: {{cpu: "64", memory: 512Gi, gpus: 8, environments: {QUOTA}}}\n'


async def _create(
    http: httpx2.AsyncClient, token: str, owner: str, name: str
) -> tuple[int, float, str, str, str, int]:
    """One create, retried on 503 as a well-behaved client does: with the same
    Idempotency-Key, so a retry of a create that was in fact accepted changes nothing.
    Latency is from the first attempt to the final answer."""
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        try:
            answer = await http.post(
                "/v1/environments",
                json={"name": name, "image": "quant-cpu", "cpu": "100m", "memory": "128Mi"},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"{owner}.{name}"},
            )
        except httpx2.TransportError:
            # A dropped connection tells the client nothing: retry with the same key.
            if attempts >= MAX_ATTEMPTS:
                raise
        else:
            if answer.status_code != 503 or attempts >= MAX_ATTEMPTS:
                break
        await asyncio.sleep(random.uniform(0.5, 2.0))
    elapsed_ms = (time.perf_counter() - started) * 1000
    accepted = answer.status_code == 202
    detail = answer.json().get("request_id" if accepted else "code", "")
    return answer.status_code, elapsed_ms, detail, owner, name, attempts


async def _burst(r: Rig) -> tuple[list[tuple[int, float, str, str, str, int]], float]:
    limits = httpx2.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx2.AsyncClient(
        base_url=r.platform.gateway_url, timeout=120, limits=limits
    ) as http:
        started = time.perf_counter()
        answers = await asyncio.gather(
            *(
                _create(http, r.tokens[user], f"user{user:02d}", f"load-{index}")
                for index in range(PER_USER)
                for user in range(USERS)
            )
        )
        return list(answers), time.perf_counter() - started


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="akros-load-") as state,
        rig(Path(state), users=USERS, quotas=QUOTAS) as r,
    ):
        print(f"== {USERS * PER_USER} concurrent creates from {USERS} users, quota {QUOTA} each")
        started = time.perf_counter()
        answers, accept_s = asyncio.run(_burst(r))
        accepted = {
            rid: (owner, name) for status, _, rid, owner, name, _ in answers if status == 202
        }
        refusals = Counter((status, rid) for status, _, rid, _, _, _ in answers if status != 202)
        report = Report("load", tried=len(answers))
        settle(r, accepted, report, timeout_s=600)
        applied_s = time.perf_counter() - started
        per_owner = Counter(
            d.metadata.labels.get("akros.io/owner")
            for d in client.AppsV1Api(r.kube)
            .list_namespaced_deployment(ENVIRONMENT_NAMESPACE)
            .items
        )
    latencies = [elapsed for _, elapsed, *_ in answers]
    quota_holds = len(accepted) == USERS * QUOTA and max(per_owner.values()) <= QUOTA
    figures = {
        "requests": len(answers),
        "users": USERS,
        "accepted": len(accepted),
        "refused": {f"{status} {code}": n for (status, code), n in refusals.items()},
        "applied": report.applied,
        "failed": report.failed,
        "lost": report.lost,
        "duplicate_objects": report.duplicate_objects,
        "conflicting_outcomes": report.conflicting_outcomes,
        "most_held_by_one_user": max(per_owner.values()),
        "quota_holds": quota_holds,
        "retries_after_503": sum(a[5] - 1 for a in answers),
        "accept_p50_ms": round(statistics.median(latencies), 1),
        "accept_p99_ms": round(percentile(latencies, 0.99), 1),
        "accepts_per_s": round(len(answers) / accept_s, 1),
        "applied_per_s": round(report.applied / applied_s, 1),
    }
    print(report.line())
    print(json.dumps(figures, sort_keys=True))
    return 0 if report.clean and quota_holds else 1


if __name__ == "__main__":
    sys.exit(main())
