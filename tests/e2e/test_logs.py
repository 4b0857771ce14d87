"""A followed log through the running gateway: it ends its follow of the cluster when its
reader hangs up, so no stream is left open behind a closed connection."""

import json
import time
import urllib.request

import httpx2
import pytest

from tests.e2e.conftest import Running

pytestmark = pytest.mark.cluster


def _open_follows(running: Running) -> int:
    url = running.platform.kubesim_url + "/_kubesim/log-follows"
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback only
        document = json.loads(answer.read())
    count: int = document["open"]
    return count


def _eventually_open(running: Running, expected: int) -> None:
    deadline = time.monotonic() + 10
    while _open_follows(running) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_follows(running) == expected


@pytest.mark.kubesim_only("counts the follows kubesim serves")
def test_a_reader_hanging_up_ends_the_gateways_follow_of_the_cluster(running: Running) -> None:
    owner = running.token_for("lena")
    body = {"name": "quiet", "image": "pytorch", "cpu": "1", "memory": "2Gi"}
    answer = running.http.post("/v1/environments", json=body, headers=owner)
    assert answer.status_code == 202, answer.text
    assert running.settle(answer.json()["request_id"], owner)["status"] == "applied"
    _eventually_open(running, 0)

    timeout = httpx2.Timeout(10, read=None)
    with (
        httpx2.Client(base_url=running.platform.gateway_url, timeout=timeout) as reader,
        reader.stream(
            "GET", "/v1/environments/quiet/logs?follow=true&tail=1", headers=owner
        ) as stream,
    ):
        assert stream.status_code == 200
        first = next(stream.iter_lines())
        assert first.endswith(" started")
        _eventually_open(running, 1)  # the program runs on: the follow stays open
    # The reader hung up: the gateway closed its connection to the cluster.
    _eventually_open(running, 0)
    assert running.http.get("/healthz").status_code == 200
