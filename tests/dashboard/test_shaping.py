"""The dashboard's pure helpers: the schema check, defaults, the diff and chart rows."""

import json

from akros_dashboard.shaping import (
    check_spec,
    environment_rows,
    event_rows,
    history_rows,
    lifecycle_choices,
    node_rows,
    spec_diff,
    user_usage_rows,
    with_defaults,
)
from akros_msgs.services import ServiceSpec

SCHEMA = ServiceSpec.model_json_schema()


def test_a_valid_spec_passes_the_schema_check() -> None:
    check = check_spec(json.dumps({"name": "web", "image": "registry.local/web:1"}), SCHEMA)

    assert check == type(check)({"name": "web", "image": "registry.local/web:1"}, [])


def test_schema_problems_name_the_field_and_broken_json_names_the_line() -> None:
    unknown = check_spec('{"name": "web", "image": "r/w:1", "privileged": true}', SCHEMA)
    nested = check_spec('{"name": "web", "image": "r/w:1", "ports": [{"port": 0}]}', SCHEMA)
    broken = check_spec('{"name": "web",\n "image": }', SCHEMA)

    assert unknown.spec is None
    assert "'privileged' was unexpected" in unknown.problems[0]
    assert nested.problems == ["ports.0.port: 0 is less than the minimum of 1"]
    assert broken.problems[0].startswith("not JSON: Expecting value (line 2")


def test_defaults_are_filled_in_as_the_gateway_stores_the_spec() -> None:
    written = {"name": "web", "image": "r/w:1", "ports": [{"port": 80}]}

    filled = with_defaults(written, SCHEMA)

    assert (filled["replicas"], filled["service_type"]) == (1, "ClusterIP")
    assert filled["ports"] == [{"port": 80, "target_port": None, "name": None, "protocol": "TCP"}]
    assert filled["resources"]["cpu"] == "500m"


def test_a_stored_spec_and_the_same_spec_as_written_have_no_diff() -> None:
    written = {"name": "web", "image": "r/w:1", "ports": [{"port": 80}]}
    stored = ServiceSpec.model_validate(written).model_dump(mode="json")

    assert spec_diff(stored, with_defaults(written, SCHEMA)) == ""


def test_the_diff_shows_only_what_changes_and_is_empty_for_the_same_spec() -> None:
    deployed = {"name": "web", "image": "r/w:1", "replicas": 1}
    proposed = {"name": "web", "image": "r/w:2", "replicas": 1}

    diff = spec_diff(deployed, proposed)

    assert '-  "image": "r/w:1",' in diff
    assert '+  "image": "r/w:2",' in diff
    assert [line for line in diff.splitlines() if "replicas" in line] == ['   "replicas": 1']
    assert spec_diff(deployed, dict(deployed)) == ""


def test_node_rows_convert_units_and_leave_usage_empty_without_metrics() -> None:
    node = {
        "name": "cpu-1",
        "allocatable": {"cpu_millis": 16000, "memory_bytes": 64 * 2**30, "gpus": 0},
        "requested": {"cpu_millis": 2500, "memory_bytes": 2**30, "gpus": 0},
        "used": None,
    }

    rows = node_rows([node])

    assert rows["CPU (cores)"] == [
        {"node": "cpu-1", "allocatable": 16.0, "requested": 2.5, "used": None}
    ]
    assert rows["Memory (GiB)"][0]["allocatable"] == 64.0


def test_environment_filters_combine_and_reservations_sum_per_owner() -> None:
    def env(owner: str, name: str, status: str, gpus: int) -> dict[str, object]:
        resources = {"cpu": "1", "memory": "1Gi", "gpus": gpus}
        return {"owner": owner, "name": name, "status": status, "image": "pytorch",
                "resources": resources}  # fmt: skip

    environments = [
        env("ann", "exp", "ready", 1),
        env("ann", "big", "ready", 2),
        env("bob", "exp", "failed", 0),
    ]

    ready_exp = environment_rows(environments, statuses=["ready"], name_contains="EX")

    assert [(r["owner"], r["name"]) for r in ready_exp] == [("ann", "exp")]
    assert len(environment_rows(environments)) == 3


def test_ready_ones_are_offered_to_stop_stopped_ones_to_start_pending_ones_to_ask_why() -> None:
    def env(owner: str, name: str, status: str, reason: str | None = None) -> dict[str, object]:
        resources = {"cpu": "1", "memory": "1Gi", "gpus": 0}
        return {"owner": owner, "name": name, "status": status, "image": "pytorch",
                "resources": resources, "reason": reason}  # fmt: skip

    rows = environment_rows(
        [
            env("ann", "exp", "ready"),
            env("ann", "idle", "stopped", "Its start failed: no node has 1 free GPU."),
            env("bob", "exp", "stopped"),
            env("bob", "new", "pending"),
            env("bob", "halt", "stopping"),
            env("cy", "old", "failed", "It crashed."),
        ]
    )

    assert lifecycle_choices(rows) == {
        "stop": ["ann/exp"],
        "start": ["ann/idle", "bob/exp"],
        "pending": ["bob/new"],
    }
    assert [r["reason"] for r in rows if r["owner"] == "ann"] == [
        "",
        "Its start failed: no node has 1 free GPU.",
    ]
    assert lifecycle_choices([]) == {"stop": [], "start": [], "pending": []}


def test_events_show_newest_first_in_words() -> None:
    def event(at: str, words: str) -> dict[str, object]:
        return {"at": at, "object": "Pod/p", "words": words, "warning": False, "count": 1}

    rows = event_rows([event("10:00", "placed on node n1"), event("10:01", "downloading")])
    assert [r["what"] for r in rows] == ["downloading", "placed on node n1"]
    assert rows[0] == {
        "at": "10:01", "about": "Pod/p", "what": "downloading", "warning": False, "times": 1,
    }  # fmt: skip


def test_usage_rows_are_in_cores_gib_and_percent() -> None:
    user = {
        "user": "ann",
        "environments": 2,
        "cpu_requested_millis": 4000,
        "cpu_used_millis": 500,
        "memory_requested_bytes": 8 * 2**30,
        "memory_used_bytes": 2**30,
        "gpus": 1,
    }
    assert user_usage_rows([user]) == [
        {
            "user": "ann",
            "cpu requested": 4.0,
            "cpu used": 0.5,
            "memory requested": 8.0,
            "memory used": 1.0,
            "gpus": 1,
        }
    ]
    point = {key: value for key, value in user.items() if key not in {"user", "environments"}}
    rows = history_rows(
        [
            {**point, "at": "2026-11-29T10:00:00Z", "gpu_utilisation": 0.125},
            {**point, "at": "2026-11-29T10:05:00Z", "gpu_utilisation": None},
        ]
    )
    assert [(r["at"], r["cpu used"], r["gpu utilisation %"]) for r in rows] == [
        ("2026-11-29T10:00:00Z", 0.5, 12.5),
        ("2026-11-29T10:05:00Z", 0.5, None),
    ]
