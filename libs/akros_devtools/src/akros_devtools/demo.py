"""`make demo`: the platform's story, told against the platform `make run` started.

A researcher asks for GPUs; auto-inference, which had filled the free GPUs, shrinks at once so
the environment gets them; left idle, the environment earns its owner an under-use nudge; it is
deleted and auto-inference grows back. Every
step goes through the public HTTP API; the inference replica count is read from the cluster.
"""

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENDPOINTS = Path(".akros/endpoints.json")
INFERENCE = "/apis/apps/v1/namespaces/akros-inference/deployments/auto-inference"
ENVIRONMENT_PODS = "/api/v1/namespaces/akros-envs/pods"
IDLE = {"metadata": {"annotations": {"kubesim.akros.io/usage-profile": "idle"}}}


class DemoError(Exception):
    pass


def _call(method: str, url: str, token: str | None = None, body: object = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 -- the local platform's URLs
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- as above
            text = response.read()
    except urllib.error.HTTPError as error:
        raise DemoError(f"{method} {url}: {error.code} {error.read().decode()}") from error
    return json.loads(text) if text else None


def _patch_merge(url: str, patch: object) -> None:
    request = urllib.request.Request(  # noqa: S310 -- the local kubesim's URL
        url,
        data=json.dumps(patch).encode(),
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json"},
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 -- as above
        pass


def _wait(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.5)


def run(say: Callable[[str], None]) -> None:
    if not ENDPOINTS.exists():
        raise DemoError("nothing is running here: start `make run` in another terminal first")
    endpoints = json.loads(ENDPOINTS.read_text())
    gateway, kubesim = endpoints["gateway_url"], endpoints["kubesim_url"]
    admin = Path(endpoints["admin_token_file"]).read_text().strip()

    def inference() -> int:
        replicas: int = _call("GET", kubesim + INFERENCE)["status"].get("readyReplicas") or 0
        return replicas

    say("1. Auto-inference soaks up the free GPUs (the poller grows it after its window)...")
    _wait("auto-inference to use the free GPUs", lambda: inference() > 8, timeout_s=120)
    before = inference()
    say(f"   auto-inference runs {before} replicas, one GPU each")

    issued = _call("POST", gateway + "/v1/tokens", admin, {"user": "demo", "role": "researcher"})
    researcher = issued["token"]
    say("2. A researcher asks for an environment with 4 GPUs...")
    accepted = _call(
        "POST",
        gateway + "/v1/environments",
        researcher,
        {"name": "story", "image": "pytorch", "cpu": "8", "memory": "64Gi", "gpus": 4},
    )
    started = time.monotonic()

    def settled() -> bool:
        state = _call("GET", f"{gateway}/v1/requests/{accepted['request_id']}", researcher)
        if state["status"] == "failed":
            raise DemoError(f"the environment failed: {state['reason']}")
        return bool(state["status"] == "applied")

    _wait("the environment to be ready", settled, timeout_s=60)
    environment = _call("GET", gateway + "/v1/environments/story", researcher)
    say(
        f"   ready in {time.monotonic() - started:.1f}s at {environment['url']} "
        f"on {environment['node']}"
    )
    say(f"3. Auto-inference made room: {inference()} replicas (was {before})")

    say("4. The researcher leaves it idle (kubesim's simulated usage drops to 1% CPU)...")
    pods = _call("GET", kubesim + ENVIRONMENT_PODS + "?labelSelector=akros.io/env%3Dstory")
    for pod in pods["items"]:
        _patch_merge(kubesim + ENVIRONMENT_PODS + "/" + pod["metadata"]["name"], IDLE)

    def nudges() -> list[dict[str, Any]]:
        found = _call("GET", gateway + "/v1/notifications", researcher)["notifications"]
        return [n for n in found if n["name"] == "story"]

    _wait("the under-use nudge", lambda: bool(nudges()), timeout_s=300)
    nudge = nudges()[0]
    say(
        f"   nudged: CPU at {nudge['cpu_used_fraction']:.0%} of its request since "
        f"{nudge['since']} (threshold {nudge['threshold']:.0%})"
    )

    say("5. The researcher deletes it (the work volume is kept)...")
    deleted = _call("DELETE", gateway + "/v1/environments/story", researcher)
    _wait(
        "the delete",
        lambda: (
            _call("GET", f"{gateway}/v1/requests/{deleted['request_id']}", researcher)["status"]
            != "pending"
        ),
        timeout_s=60,
    )
    volumes = _call("GET", gateway + "/v1/volumes", researcher)["volumes"]
    say(f"   kept volumes: {[v['name'] for v in volumes]}")
    say("6. ...and auto-inference grows back into the freed GPUs after its window")
    _wait("auto-inference to grow back", lambda: inference() >= before, timeout_s=120)
    say(f"   auto-inference runs {inference()} replicas again")
    _call("DELETE", gateway + "/v1/volumes/story", researcher)


def main() -> int:
    try:
        run(print)
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
