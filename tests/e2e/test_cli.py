"""`akros env ...` as a researcher runs it, against the running platform."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client

from akros_cli.main import (
    create_body,
    environment_rows,
    event_rows,
    parse,
    progress_line,
    usage_rows,
)
from tests.e2e.conftest import Running
from tests.followed import followed

AKROS = str(Path(sys.executable).parent / "akros")


def _akros(running: Running, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AKROS_URL": running.platform.gateway_url, "AKROS_TOKEN": token}
    return subprocess.run(
        [AKROS, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.cluster
def test_a_researcher_creates_lists_and_deletes_an_environment_from_the_cli(
    running: Running,
) -> None:
    token = running.token_for("hana")["Authorization"].removeprefix("Bearer ")
    created = _akros(
        running, token, "env", "create", "notebook", "--image", "pytorch", "--cpu", "2",
        "--memory", "8Gi",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "notebook: accepted as request" in created.stdout
    assert "notebook is ready at https://notebook-hana-8.research.akros.local/" in created.stdout

    listed = _akros(running, token, "env", "list")
    assert "notebook" in listed.stdout
    assert "ready" in listed.stdout

    usage = _akros(running, token, "env", "usage")
    assert "hana (researcher)" in usage.stdout
    assert "environments" in usage.stdout

    deleted = _akros(running, token, "env", "delete", "notebook")
    assert deleted.returncode == 0, deleted.stderr
    assert "notebook deleted; its volume is kept" in deleted.stdout


@pytest.mark.cluster
def test_a_researcher_stops_and_starts_an_environment_from_the_cli(running: Running) -> None:
    token = running.token_for("tomas")["Authorization"].removeprefix("Bearer ")
    created = _akros(
        running, token, "env", "create", "lab", "--image", "pytorch", "--cpu", "1",
        "--memory", "2Gi",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    stopped = _akros(running, token, "env", "stop", "lab")
    assert stopped.returncode == 0, stopped.stderr
    assert "lab is stopped; `akros env start lab` brings it back" in stopped.stdout
    listed = _akros(running, token, "env", "list")
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("lab ")]
    assert " stopped " in row
    again = _akros(running, token, "env", "stop", "lab")
    assert again.returncode == 1
    assert "stopped already" in again.stderr

    started = _akros(running, token, "env", "start", "lab")
    assert started.returncode == 0, started.stderr
    assert "lab is ready at https://lab-tomas-3.research.akros.local/" in started.stdout

    resized = _akros(running, token, "env", "resize", "lab", "--cpu", "2", "--memory", "3Gi")
    assert resized.returncode == 0, resized.stderr
    assert "lab is ready with 2 CPU, 3Gi memory, 0 GPUs" in resized.stdout


@pytest.mark.cluster
def test_a_researcher_reads_follows_and_asks_about_an_environment_from_the_cli(
    running: Running,
) -> None:
    token = running.token_for("ines")["Authorization"].removeprefix("Bearer ")
    created = _akros(
        running, token, "env", "create", "talk", "--image", "pytorch", "--cpu", "1",
        "--memory", "2Gi",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    logs = _akros(running, token, "env", "logs", "talk", "--tail", "1")
    assert logs.returncode == 0, logs.stderr
    [line] = logs.stdout.splitlines()
    assert "kubesim: container " in line
    assert line.endswith(" started")

    events = _akros(running, token, "env", "events", "talk")
    assert events.returncode == 0, events.stderr
    assert "placed on node " in events.stdout
    assert "its program started" in events.stdout
    assert "Pending:" not in events.stdout  # it is ready

    env = {**os.environ, "AKROS_URL": running.platform.gateway_url, "AKROS_TOKEN": token}
    command = [AKROS, "env", "logs", "talk", "--follow", "--tail", "1"]
    with followed(command, env) as following:
        assert following.stdout is not None
        assert following.stdout.readline().rstrip().endswith(" started")
        # Stopping the environment ends its program, its log and so the follow, by itself.
        stopped = _akros(running, token, "env", "stop", "talk")
        assert stopped.returncode == 0, stopped.stderr
        rest, errors = following.communicate(timeout=30)
    assert following.returncode == 0, errors
    assert rest.rstrip().endswith("was killed at the end of its grace period")

    other = running.token_for("intruder-cli")["Authorization"].removeprefix("Bearer ")
    refused = _akros(running, other, "env", "logs", "talk", "--user", "ines")
    assert refused.returncode == 1
    assert "You may not act on ines's environments" in refused.stderr


def test_events_print_why_it_is_pending_then_what_happened_in_words() -> None:
    document = {
        "why_pending": "waiting for a GPU: no node has one free",
        "events": [
            {
                "at": "2026-12-07T10:00:01Z",
                "object": "Pod/alice-nb-6b7-abcde",
                "words": "waiting for a GPU: no node has one free",
                "warning": True,
                "count": 3,
            }
        ],
    }
    rows = event_rows(document)
    assert rows[0] == "Pending: waiting for a GPU: no node has one free"
    assert rows[-1].startswith("2026-12-07T10:00:01  Pod/alice-nb-6b7-abcde")
    assert rows[-1].endswith("!waiting for a GPU: no node has one free (x3)")
    quiet = event_rows({"why_pending": None, "events": []})
    assert quiet == ["the cluster has said nothing about it in the last hour"]


@pytest.mark.cluster
def test_a_researcher_extends_an_environments_expiry_from_the_cli(running: Running) -> None:
    token = running.token_for("ulla")["Authorization"].removeprefix("Bearer ")
    expires_at = datetime.now(UTC) + timedelta(hours=2)
    created = _akros(
        running, token, "env", "create", "lab", "--image", "pytorch", "--cpu", "1",
        "--memory", "2Gi", "--expires-at", expires_at.isoformat(),
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    extended = _akros(running, token, "env", "extend", "lab", "--hours", "1.5")
    assert extended.returncode == 0, extended.stderr
    [said] = [line for line in extended.stdout.splitlines() if "now expires at" in line]
    now_expires = datetime.fromisoformat(said.rsplit(" ", 1)[1])
    assert abs(now_expires - (expires_at + timedelta(hours=1.5))) < timedelta(seconds=1)
    too_far = _akros(running, token, "env", "extend", "lab", "--hours", "100")
    assert too_far.returncode == 1
    assert "at most 24 hours" in too_far.stderr


@pytest.mark.cluster
def test_the_cli_says_what_the_gateway_refused_and_exits_non_zero(running: Running) -> None:
    token = running.token_for("ivan")["Authorization"].removeprefix("Bearer ")
    refused = _akros(
        running, token, "env", "create", "bad", "--image", "pytorch", "--cpu", "lots",
        "--memory", "1Gi",
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.startswith("akros: ")
    assert "cpu" in refused.stderr
    assert _akros(running, "not-a-token", "env", "list").returncode == 1


def test_a_create_with_a_profile_sends_only_the_options_given() -> None:
    args = parse(["env", "create", "lab", "--image", "pytorch", "--profile", "gpu-single"])
    assert create_body(args) == {"name": "lab", "image": "pytorch", "profile": "gpu-single"}
    args = parse(
        ["env", "create", "lab", "--image", "jax", "--profile", "gpu-single", "--cpu", "4",
         "--gpus", "0", "--dedicated-cores"]
    )  # fmt: skip
    assert create_body(args) == {
        "name": "lab",
        "image": "jax",
        "profile": "gpu-single",
        "cpu": "4",
        "gpus": 0,
        "dedicated_cores": True,
    }


@pytest.mark.cluster
def test_a_researcher_creates_an_environment_from_a_profile(running: Running) -> None:
    token = running.token_for("kiri")["Authorization"].removeprefix("Bearer ")
    created = _akros(
        running, token, "--json", "env", "create", "sized", "--image", "quant-cpu",
        "--profile", "cpu-dedicated",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    environment = json.loads(created.stdout)
    assert environment["resources"] == {"cpu": "8", "memory": "32Gi", "gpus": 0}
    assert environment["dedicated_cores"] is True
    deployment = client.AppsV1Api(running.kube).read_namespaced_deployment(
        "kiri-sized-4", "akros-envs"
    )
    assert deployment.metadata.labels["akros.io/profile"] == "cpu-dedicated"
    assert deployment.spec.template.metadata.labels["akros.io/profile"] == "cpu-dedicated"


def test_environments_print_as_one_line_each_under_a_header() -> None:
    rows = environment_rows(
        [
            {
                "name": "exp",
                "owner": "alice",
                "status": "ready",
                "resources": {"cpu": "4", "memory": "16Gi", "gpus": 1},
                "url": "https://exp-alice.example/",
            }
        ]
    )
    assert rows[0].split() == ["NAME", "OWNER", "STATUS", "CPU", "MEMORY", "GPUS", "URL"]
    assert rows[1].split() == [
        "exp",
        "alice",
        "ready",
        "4",
        "16Gi",
        "1",
        "https://exp-alice.example/",
    ]


def test_an_environments_usage_prints_its_latest_points_against_requests() -> None:
    point = {
        "at": "2026-11-29T10:05:00+00:00",
        "cpu_requested_millis": 4000,
        "cpu_used_millis": 250,
        "memory_requested_bytes": 16 * 2**30,
        "memory_used_bytes": 2 * 2**30,
        "gpus": 1,
        "gpu_utilisation": 0.05,
    }
    rows = usage_rows([point])
    assert rows[1].split() == ["2026-11-29T10:05:00", "0.25/4", "2.0/16", "5%"]
    assert usage_rows([]) == ["no usage sampled yet"]


def test_a_pending_create_says_its_stage_and_what_it_waits_for() -> None:
    pulling = {
        "status": "pending",
        "stage": "pulling image",
        "progress": "retrying the pull of registry.local/cuda:12: ErrImagePull (timeout)",
    }
    assert progress_line(pulling) == (
        "pending: pulling image (retrying the pull of registry.local/cuda:12: ErrImagePull "
        "(timeout))"
    )
    assert progress_line({"status": "pending"}) == "pending"
    assert progress_line({"status": "applied", "stage": "ready", "progress": None}) == "applied"
