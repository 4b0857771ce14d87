"""`make run`: the whole platform on embedded defaults, in the foreground, until Ctrl-C.

State lives under .akros/: Redis data (AOF), kubesim's kubeconfig, the admin token, logs, and
endpoints.json saying where each part listens. Everything started is stopped (by pid) on
Ctrl-C; the Redis data and the admin token survive for the next run.
"""

import os
import signal
import socket
import sys
import time
from pathlib import Path

from akros_devtools.platform import DASHBOARD, SERVICES, SLACK, Platform, PlatformOptions

STATE = Path(".akros")
# The embedded cluster runs in minutes what a real one runs in hours: usage is sampled every
# 5 s and an idle environment is nudged after a minute (4 h on a real cluster), so `make demo`
# shows the under-use nudge. Any of these set in the environment wins.
EMBEDDED_TIMINGS = {
    "AKROS_USAGE_INTERVAL_S": "5",
    "AKROS_USAGE_HISTORY_STEP_S": "30",
    "AKROS_UNDERUSE_MINIMUM_AGE_S": "15",
    "AKROS_UNDERUSE_GRACE_S": "60",
}

# kubesim runs the cluster's own durations ten times faster: a pod's 30 s grace period takes
# 3 s and a first pull of a multi-GB research image tens of seconds, so a newcomer still sees
# Terminating pods and slow pulls without waiting minutes for each.
MAKE_RUN_TIME_FACTOR = 0.1


def _overrides(names: dict[str, str]) -> dict[str, str]:
    return {name: os.environ[name] for name in names if name in os.environ}


PREFERRED_PORTS = {"redis": 6390, "kubesim": 6443, "gateway": 8080, "dashboard": 8501}


def _free_or_zero(port: int) -> int:
    """The preferred port when free (stable URLs across runs), else 0: any free port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _tour(platform: Platform) -> str:
    gateway = platform.gateway_url
    slack = ""
    if SLACK in platform.children:
        slack = f"  Slack app:            running; in HTTP mode at {platform.slack_url}\n"
    return f"""
Akros is running on embedded defaults. Ctrl-C stops everything.

  Gateway (HTTP API): {gateway}   (OpenAPI: {gateway}/docs)
  Dashboard:            {platform.dashboard_url}   (sign in with the admin token)
  Kubernetes (kubesim): {platform.kubesim_url}   kubeconfig: {platform.kubeconfig}
  Redis:                {platform.redis.url}   (data in {platform.redis.directory}, AOF on)
  Admin token:          {platform.admin_token_file}
{slack}  Endpoints:            {STATE / "endpoints.json"}   Logs: {STATE}/*.log

First steps (or `make demo` in another terminal for the whole story):
  export AKROS_TOKEN=$(cat {platform.admin_token_file})
  curl -s -H "Authorization: Bearer $AKROS_TOKEN" {gateway}/v1/catalog
  curl -s -H "Authorization: Bearer $AKROS_TOKEN" -H 'Content-Type: application/json' \\
       -d '{{"name": "first", "image": "pytorch", "cpu": "2", "memory": "8Gi"}}' \\
       {gateway}/v1/environments
  curl -s -H "Authorization: Bearer $AKROS_TOKEN" {gateway}/v1/environments/first
  KUBECONFIG={platform.kubeconfig} .akros/tools/kubectl/usr/bin/kubectl get pods -A
  # akros-inference/auto-inference fills free GPUs and yields them to environments
  KUBECONFIG={platform.kubeconfig} .akros/tools/kubectl/usr/bin/kubectl get deploy -A

Or with the CLI (it finds this gateway through .akros/endpoints.json):
  AKROS_TOKEN=$AKROS_TOKEN uv run akros env create second --image quant-cpu --cpu 4 --memory 16Gi
  AKROS_TOKEN=$AKROS_TOKEN uv run akros env list
"""


def main() -> int:
    platform = Platform(
        PlatformOptions(
            state=STATE,
            redis_port=_free_or_zero(PREFERRED_PORTS["redis"]),
            kubesim_port=_free_or_zero(PREFERRED_PORTS["kubesim"]),
            gateway_port=_free_or_zero(PREFERRED_PORTS["gateway"]),
            dashboard_port=_free_or_zero(PREFERRED_PORTS["dashboard"]),
            # The Slack app joins when its credentials are set (services/slack/README.md).
            services=(*SERVICES, DASHBOARD, SLACK)
            if os.environ.get("AKROS_SLACK_BOT_TOKEN")
            else (*SERVICES, DASHBOARD),
            environment={**EMBEDDED_TIMINGS, **_overrides(EMBEDDED_TIMINGS)},
            time_factor=MAKE_RUN_TIME_FACTOR,
        )
    )
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    endpoints = STATE / "endpoints.json"
    try:
        platform.start()
        platform.write_endpoints()
        print(_tour(platform), flush=True)
        while not stopping:
            if failed := platform.failed_child():
                print(f"{failed} exited; see {STATE / (failed + '.log')}", file=sys.stderr)
                return 1
            time.sleep(0.2)
    finally:
        print("Stopping...", flush=True)
        platform.stop()
        endpoints.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
