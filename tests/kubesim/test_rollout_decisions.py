"""The deployment and ReplicaSet controllers' decisions, as values: no server."""

from typing import Any

from akros_kubesim import replicasets, rollout


def _deployment(
    replicas: int, strategy: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "team", "uid": "d-uid", "generation": 1},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}},
            "strategy": strategy or {"type": "RollingUpdate"},
        }
        | spec,
    }


def _rs(
    name: str,
    replicas: int,
    available: int | None = None,
    revision: int = 1,
    created: str = "2026-01-01T00:00:00Z",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    pods = replicas if available is None else available
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "annotations": {replicasets.REVISION: str(revision)} | (annotations or {}),
        },
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": name}}}},
        "status": {"replicas": replicas, "readyReplicas": pods, "availableReplicas": pods},
    }


def _rolling(surge: object, unavailable: object) -> dict[str, Any]:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }


def test_fnv32a_matches_the_published_test_vectors() -> None:
    assert replicasets.fnv32a(b"") == 0x811C9DC5
    assert replicasets.fnv32a(b"a") == 0xE40C292C
    assert replicasets.fnv32a(b"foobar") == 0xBF9CF968


def test_hashes_are_decimal_digits_in_the_safe_alphabet() -> None:
    assert replicasets.safe_encode("0123456789") == "456789bcdf"
    template = _deployment(1)["spec"]["template"]
    digest = replicasets.pod_template_hash(template)
    assert digest == replicasets.safe_encode(
        str(int(digest.translate(str.maketrans("456789bcdf", "0123456789"))))
    )
    assert 1 <= len(digest) <= 10
    assert set(digest) <= set("456789bcdf")
    assert replicasets.pod_template_hash(template, collision_count=1) != digest


def test_the_hash_ignores_the_pod_template_hash_label() -> None:
    template = _deployment(1)["spec"]["template"]
    labelled = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}},
        "spec": template["spec"],
    }
    assert replicasets.pod_template_hash(labelled) == replicasets.pod_template_hash(template)


def test_generated_names_stay_within_63_characters() -> None:
    base = replicasets.pod_generate_name("a" * 60 + "-7d4b9c8f6")
    assert replicasets.generated_name(base, "xyz12") == "a" * 58 + "xyz12"
    assert replicasets.generated_name("web-5b85bc8649-", "abcde") == "web-5b85bc8649-abcde"


def test_fenceposts_round_surge_up_and_unavailability_down() -> None:
    assert rollout.fenceposts(_deployment(10)["spec"]) == (3, 2)
    assert rollout.fenceposts(_deployment(1)["spec"]) == (1, 0)
    assert rollout.fenceposts(_deployment(4, _rolling(0, "10%"))["spec"]) == (0, 1)
    assert rollout.fenceposts(_deployment(5, _rolling(2, 1))["spec"]) == (2, 1)
    assert rollout.max_unavailable(_deployment(3, {"type": "Recreate"})["spec"]) == 0


def test_a_new_template_first_gets_a_new_replicaset_within_the_surge() -> None:
    deployment = _deployment(3, _rolling(1, 0))
    old = [_rs("web-old", 3)]
    assert rollout.plan(deployment, None, old, True) == rollout.Plan(create_replicas=1)


def test_a_rolling_update_scales_old_down_only_as_new_pods_become_available() -> None:
    deployment = _deployment(3, _rolling(1, 0))
    old = [_rs("web-old", 3)]
    waiting = _rs("web-new", 1, available=0, revision=2)
    assert rollout.plan(deployment, waiting, old, True) == rollout.Plan()
    ready = _rs("web-new", 1, revision=2)
    assert rollout.plan(deployment, ready, old, True).scales == {"web-old": 2}
    assert rollout.plan(deployment, ready, [_rs("web-old", 2)], True).scales == {"web-new": 2}


def test_max_unavailable_lets_old_pods_go_before_new_ones_are_ready() -> None:
    deployment = _deployment(4, _rolling(0, 2))
    new = _rs("web-new", 0, revision=2)
    assert rollout.plan(deployment, new, [_rs("web-old", 4)], True).scales == {"web-old": 2}


def test_old_pods_that_are_not_available_go_first() -> None:
    """Two of the three old pods are broken: one may go although too few pods are available."""
    deployment = _deployment(3, _rolling(1, 0))
    new = _rs("web-new", 1, revision=3)
    broken = _rs("web-old", 3, available=1, revision=2)
    assert rollout.plan(deployment, new, [broken], True).scales == {"web-old": 2}


def test_recreate_scales_old_to_zero_waits_for_their_pods_then_creates() -> None:
    deployment = _deployment(2, {"type": "Recreate"})
    assert rollout.plan(deployment, None, [_rs("web-old", 2)], True).scales == {"web-old": 0}
    assert rollout.plan(deployment, None, [_rs("web-old", 0)], True) == rollout.Plan()
    assert rollout.plan(deployment, None, [_rs("web-old", 0)], False) == rollout.Plan(
        create_replicas=2
    )


def test_scaling_mid_rollout_is_shared_in_proportion() -> None:
    """The documented example: 10 replicas, maxSurge 3, 8 old and 5 new; scaled to 15, the old
    ReplicaSet gets 3 more and the new one 2."""
    deployment = _deployment(15, _rolling(3, 2))
    annotations = {replicasets.DESIRED_REPLICAS: "10", replicasets.MAX_REPLICAS: "13"}
    old = [_rs("web-old", 8, annotations=annotations)]
    new = _rs(
        "web-new",
        5,
        available=0,
        revision=2,
        created="2026-01-02T00:00:00Z",
        annotations=annotations,
    )
    assert rollout.plan(deployment, new, old, True).scales == {"web-old": 11, "web-new": 7}


def test_a_single_active_replicaset_takes_the_new_size() -> None:
    annotations = {replicasets.DESIRED_REPLICAS: "3"}
    new = _rs("web-new", 3, annotations=annotations)
    assert rollout.plan(_deployment(5), new, [_rs("web-old", 0)], False).scales == {"web-new": 5}


def test_history_beyond_the_limit_is_pruned_oldest_revision_first() -> None:
    deployment = _deployment(1, revisionHistoryLimit=1)
    new = _rs("web-c", 1, revision=3)
    old = [_rs("web-b", 0, revision=2), _rs("web-a", 0, revision=1)]
    assert rollout.plan(deployment, new, old, False).prune == ("web-a",)


def test_status_counts_and_conditions_of_a_finished_rollout() -> None:
    deployment = _deployment(3)
    update = rollout.deployment_status(deployment, _rs("web-new", 3), [], False, "T")
    status = update.status
    assert {k: status.get(k) for k in ("replicas", "updatedReplicas", "availableReplicas")} == {
        "replicas": 3,
        "updatedReplicas": 3,
        "availableReplicas": 3,
    }
    assert "unavailableReplicas" not in status
    reasons = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert reasons == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["message"] == 'ReplicaSet "web-new" has successfully progressed.'


def test_a_stalled_rollout_times_out_only_after_its_deadline() -> None:
    deployment = _deployment(1)
    stuck = _rs("web-new", 1, available=0)
    created = [rollout.condition("Progressing", "True", "NewReplicaSetCreated", "m", "T0")]
    deployment["status"] = {"replicas": 1, "updatedReplicas": 1, "conditions": created}
    waiting = rollout.deployment_status(deployment, stuck, [], False, "T1").status
    assert next(c for c in waiting["conditions"] if c["type"] == "Progressing")["reason"] == (
        "NewReplicaSetCreated"
    )
    available = next(c for c in waiting["conditions"] if c["type"] == "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert waiting["unavailableReplicas"] == 1
    timed_out = rollout.deployment_status(deployment, stuck, [], True, "T2").status
    progressing = next(c for c in timed_out["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"] == 'ReplicaSet "web-new" has timed out progressing.'


def test_progress_refreshes_the_condition_and_keeps_its_transition_time() -> None:
    deployment = _deployment(2)
    created = [rollout.condition("Progressing", "True", "NewReplicaSetCreated", "m", "T0")]
    deployment["status"] = {"replicas": 2, "updatedReplicas": 1, "conditions": created}
    update = rollout.deployment_status(deployment, _rs("web-new", 2, available=1), [], True, "T1")
    progressing = next(c for c in update.status["conditions"] if c["type"] == "Progressing")
    assert update.progressed
    assert (
        progressing["reason"],
        progressing["lastUpdateTime"],
        progressing["lastTransitionTime"],
    ) == (
        "ReplicaSetUpdated",
        "T1",
        "T0",
    )


def test_a_replicaset_deletes_unscheduled_and_unready_pods_first() -> None:
    def pod(name: str, node: str, ready: bool, created: str) -> dict[str, Any]:
        conditions = [{"type": "Ready", "status": "True"}] if ready else []
        phase = "Running" if ready else "Pending"
        return {
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions},
        }

    older = pod("older", "n", True, "2026-01-01T00:00:00Z")
    younger = pod("younger", "n", True, "2026-01-02T00:00:00Z")
    pending = pod("pending", "", False, "2026-01-01T00:00:00Z")
    create, delete = replicasets.pods_to_create_and_delete(1, [older, younger, pending])
    assert create == 0
    assert [p["metadata"]["name"] for p in delete] == ["pending", "younger"]
    assert replicasets.pods_to_create_and_delete(3, [older]) == (2, [])


def test_availability_waits_for_min_ready_seconds() -> None:
    assert not replicasets.is_available(None, 0)
    assert replicasets.is_available(0.0, 0)
    assert not replicasets.is_available(0.5, 1.0)
    assert replicasets.is_available(1.0, 1.0)
