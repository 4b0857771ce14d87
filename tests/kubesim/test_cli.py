"""`kubesim serve` as a user runs it: loopback by default, a usable kubeconfig, clear errors."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from akros_devtools import wait_for, wait_until
from akros_kubesim.testing import RunningKubesim, run_kubesim


def test_serve_binds_loopback_by_default_and_writes_a_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    command = [
        sys.executable,
        "-m",
        "akros_kubesim",
        "serve",
        "--port",
        "0",
        "--kubeconfig-out",
        str(kubeconfig),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(kubeconfig.exists, timeout_s=30, what="kubesim's kubeconfig")
        document = yaml.safe_load(kubeconfig.read_text())
        server = document["clusters"][0]["cluster"]["server"]
        assert server.startswith("http://127.0.0.1:")
        assert document["current-context"] == "kubesim"
        with urllib.request.urlopen(server + "/version", timeout=5) as response:  # noqa: S310 - loopback
            assert json.loads(response.read())["major"] == "1"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0


def test_a_broken_cluster_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text("nodes:\n  - name: n1\n    cpu: lots\n    memory: 1Gi\n")
    result = subprocess.run(
        [sys.executable, "-m", "akros_kubesim", "serve", "--cluster", str(cluster), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "nodes[0] (n1): cpu" in result.stderr


def test_unknown_fault_settings_are_a_bad_request(cluster: RunningKubesim) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        cluster.set_faults(errorRate=2)
    assert raised.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as raised:
        cluster.set_faults(colour="red")
    assert raised.value.code == 400
    assert cluster.admin("GET", "/_kubesim/faults")["errorRate"] == 0


def test_an_error_rate_of_one_fails_every_write_with_internal_error(
    cluster: RunningKubesim,
) -> None:
    cluster.set_faults(errorRate=1.0, errorStatus=500)
    request = urllib.request.Request(  # noqa: S310 - loopback
        cluster.base_url + "/api/v1/namespaces/default/configmaps",
        data=json.dumps({"metadata": {"name": "x"}}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - loopback
    assert raised.value.code == 500
    assert json.loads(raised.value.read())["reason"] == "InternalError"
    cluster.clear_faults()


def test_events_expire_after_the_configured_ttl() -> None:
    """The API server keeps events for --event-ttl (an hour by default); so does kubesim."""
    with run_kubesim(extra_args=("--event-ttl-seconds", "0.5")) as short_lived:
        body = {
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "R",
        }
        request = urllib.request.Request(  # noqa: S310 - loopback
            short_lived.base_url + "/api/v1/namespaces/default/events",
            data=json.dumps(body).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - loopback
        path = short_lived.base_url + "/api/v1/namespaces/default/events"

        def events() -> list[Any]:
            with urllib.request.urlopen(path, timeout=5) as response:  # noqa: S310 - loopback
                items: list[Any] = json.loads(response.read())["items"]
                return items

        wait_for(events, until=lambda items: items == [], timeout_s=10, what="the event expired")
