"""The pure decision functions, tested without HTTP: selectors, patches, scheduling, validation."""

from decimal import Decimal
from typing import Any

import pytest

from akros_kubesim import hpa, patch, quota, scheduler, selectors, tables, usage, validation
from akros_kubesim.errors import ApiError, Cause
from akros_kubesim.quantity import QuantityError, millicores, parse_quantity, whole_units
from akros_kubesim.resources import DEPLOYMENT, NAMESPACE, POD
from akros_kubesim.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
    selector_to_string,
)


def test_quantities_parse_in_base_units() -> None:
    assert parse_quantity("500m") == Decimal("0.5")
    assert whole_units("2Gi") == 2 * 2**30
    assert whole_units("1e3") == 1000
    assert millicores("1.5") == 1500
    assert millicores(2) == 2000


@pytest.mark.parametrize("text", ["abc", "1.2.3", "5 Gi", "Gi"])
def test_malformed_quantities_are_rejected(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_equality_and_set_based_label_selectors_match_like_kubernetes() -> None:
    selector = parse_label_selector("app=web,tier!=db,env in (prod, staging),!legacy,team")
    assert labels_match(selector, {"app": "web", "env": "prod", "team": "a"})
    assert not labels_match(selector, {"app": "web", "env": "dev", "team": "a"})
    assert not labels_match(selector, {"app": "web", "env": "prod", "team": "a", "legacy": "1"})
    assert not labels_match(selector, {"app": "web", "env": "prod"})


def test_a_label_selector_that_cannot_be_parsed_is_a_bad_request() -> None:
    with pytest.raises(ApiError) as raised:
        parse_label_selector("app in prod")
    assert raised.value.code == 400


def test_match_expressions_become_requirements_and_text() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}],
    }
    requirements = selector_from_label_selector(selector)
    assert labels_match(requirements, {"app": "web", "env": "prod"})
    assert not labels_match(requirements, {"app": "web", "env": "dev"})
    assert selector_to_string(selector) == "app=web,env notin (dev)"


def test_field_selectors_support_the_indexed_pod_fields_only() -> None:
    selector = parse_field_selector("spec.nodeName=n1,status.phase!=Failed", "Pod")
    assert fields_match(selector, {"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    assert not fields_match(selector, {"spec": {"nodeName": "n2"}, "status": {"phase": "Running"}})
    with pytest.raises(ApiError) as raised:
        parse_field_selector("spec.hostname=x", "Pod")
    assert raised.value.code == 400


def _deployment(containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }


def test_strategic_merge_merges_containers_by_name_and_keeps_ports_and_resources() -> None:
    original = _deployment(
        [
            {
                "name": "web",
                "image": "nginx:1",
                "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "1"}},
            }
        ]
    )
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"name": "web", "image": "nginx:2"}],
                }
            }
        }
    }
    result = patch.apply_patch(patch.STRATEGIC, original, body)
    container = result["spec"]["template"]["spec"]["containers"][0]
    assert container == {
        "name": "web",
        "image": "nginx:2",
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1"}},
    }


def test_strategic_merge_deletes_list_items_and_orders_them_as_told() -> None:
    original = _deployment(
        [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}, {"name": "c", "image": "z"}]
    )
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
                    "containers": [{"name": "b", "$patch": "delete"}],
                }
            }
        }
    }
    containers = patch.apply_patch(patch.STRATEGIC, original, body)["spec"]["template"]["spec"][
        "containers"
    ]
    assert [c["name"] for c in containers] == ["c", "a"]


def test_strategic_merge_replace_directive_and_retain_keys() -> None:
    original = _deployment([{"name": "a", "image": "x"}])
    original["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    body = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {
                "spec": {"containers": [{"name": "n", "image": "i"}, {"$patch": "replace"}]}
            },
        }
    }
    result = patch.apply_patch(patch.STRATEGIC, original, body)
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "n", "image": "i"}]


def test_strategic_merge_replaces_lists_without_a_merge_strategy() -> None:
    original = _deployment([{"name": "a", "image": "x", "args": ["1", "2"]}])
    body = {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["3"]}]}}}}
    result = patch.apply_patch(patch.STRATEGIC, original, body)
    assert result["spec"]["template"]["spec"]["containers"][0]["args"] == ["3"]


def test_json_merge_patch_replaces_lists_and_removes_nulls() -> None:
    original = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
    }
    result = patch.apply_patch(
        patch.MERGE, original, {"metadata": {"labels": {"a": None, "c": "3"}}}
    )
    assert result["metadata"]["labels"] == {"b": "2", "c": "3"}


def test_a_failing_json_patch_test_operation_is_unprocessable() -> None:
    with pytest.raises(ApiError) as raised:
        patch.apply_patch(patch.JSON_PATCH, {"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert raised.value.code == 422


def test_an_unknown_patch_type_is_an_unsupported_media_type() -> None:
    with pytest.raises(ApiError) as raised:
        patch.apply_patch("application/apply-patch+yaml", {}, {})
    assert raised.value.code == 415


def _node(
    name: str, cpu: str = "4", memory: str = "8Gi", gpus: int = 0, **extra: Any
) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {
        "metadata": {"name": name, "labels": extra.get("labels", {})},
        "spec": extra.get("spec", {}),
        "status": {"allocatable": allocatable},
    }


def _pod(
    name: str, cpu: str = "1", gpus: int = 0, priority: int = 0, node: str = "", **spec: Any
) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": cpu, "memory": "1Gi"}
    if gpus:
        requests["nvidia.com/gpu"] = gpus
    pod_spec = {
        "containers": [{"name": "c", "resources": {"requests": requests}}],
        "priority": priority,
        **spec,
    }
    if node:
        pod_spec["nodeName"] = node
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": pod_spec,
        "status": {"phase": "Running" if node else "Pending"},
    }


def _allocatable(nodes: list[dict[str, Any]]) -> dict[str, scheduler.Resources]:
    return {n["metadata"]["name"]: scheduler.node_allocatable(n) for n in nodes}


def test_the_scheduler_places_a_gpu_pod_only_where_gpus_are_free() -> None:
    nodes = [_node("cpu", cpu="64"), _node("gpu", gpus=2)]
    used = scheduler.requested_on_nodes([_pod("p", gpus=1, node="gpu")])
    assert scheduler.choose_node(_pod("q", gpus=1), nodes, _allocatable(nodes), used).node == "gpu"
    decision = scheduler.choose_node(_pod("r", gpus=2), nodes, _allocatable(nodes), used)
    assert decision.node is None
    assert (
        "2 Insufficient nvidia.com/gpu" in decision.message
        or "Insufficient nvidia.com/gpu" in decision.message
    )


def test_the_scheduler_honours_node_selectors_and_taints() -> None:
    taint = {"key": "dedicated", "value": "ops", "effect": "NoSchedule"}
    nodes = [_node("tainted", spec={"taints": [taint]}), _node("labelled", labels={"pool": "gpu"})]
    allocatable = _allocatable(nodes)
    assert (
        scheduler.choose_node(_pod("p", nodeSelector={"pool": "gpu"}), nodes, allocatable, {}).node
        == "labelled"
    )
    only_tainted = [nodes[0]]
    refused = scheduler.choose_node(_pod("q"), only_tainted, allocatable, {})
    assert refused.node is None
    assert "untolerated taint {dedicated: ops}" in refused.message
    toleration = {"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}
    assert (
        scheduler.choose_node(
            _pod("r", tolerations=[toleration]), only_tainted, allocatable, {}
        ).node
        == "tainted"
    )


def test_the_scheduler_spreads_to_the_least_allocated_node() -> None:
    nodes = [_node("a"), _node("b")]
    used = scheduler.requested_on_nodes([_pod("p", cpu="3", node="a")])
    assert scheduler.choose_node(_pod("q"), nodes, _allocatable(nodes), used).node == "b"


def test_preemption_evicts_the_fewest_lowest_priority_pods() -> None:
    nodes = [_node("n", cpu="4")]
    residents = [
        _pod("low", cpu="2", priority=1, node="n"),
        _pod("lower", cpu="2", priority=0, node="n"),
    ]
    choice = scheduler.choose_preemption(
        _pod("high", cpu="2", priority=100), nodes, _allocatable(nodes), {"n": residents}
    )
    assert choice is not None
    assert [v["metadata"]["name"] for v in choice.victims] == ["lower"]


def test_preemption_never_evicts_equal_or_higher_priority_pods() -> None:
    nodes = [_node("n", cpu="2")]
    residents = [_pod("peer", cpu="2", priority=5, node="n")]
    assert (
        scheduler.choose_preemption(
            _pod("p", cpu="2", priority=5), nodes, _allocatable(nodes), {"n": residents}
        )
        is None
    )


def _causes(problems: list[Cause]) -> dict[str, str]:
    return {c.field: c.message for c in problems}


def test_schema_validation_names_the_missing_and_malformed_fields() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"image": "x", "resources": {"requests": {"cpu": "lots"}}}]},
    }
    invalid, unknown, warnings = validation.schema_problems(pod, strict_fields=False)
    fields = _causes(invalid)
    assert "spec.containers[0].name" in fields
    assert "quantities must match" in fields["spec.containers[0].resources.requests.cpu"]
    assert not unknown
    assert not warnings


def test_unknown_fields_are_dropped_with_a_warning_unless_strict() -> None:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x", "colour": "red"}]},
    }
    _, unknown, warnings = validation.schema_problems(pod, strict_fields=False)
    assert warnings == ['unknown field "spec.containers[0].colour"']
    assert "colour" not in pod["spec"]["containers"][0]
    pod["spec"]["containers"][0]["colour"] = "red"
    _, unknown, _ = validation.schema_problems(pod, strict_fields=True)
    assert [c.field for c in unknown] == ["spec.containers[0].colour"]


def test_names_must_be_dns_1123() -> None:
    assert _causes(validation.semantic_problems(NAMESPACE, {"metadata": {"name": "Bad_Name"}}))[
        "metadata.name"
    ].startswith("Invalid value")
    assert not validation.semantic_problems(NAMESPACE, {"metadata": {"name": "good-name"}})


def test_requests_may_not_exceed_limits() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
                }
            ]
        },
    }
    assert "spec.containers[0].resources.requests" in _causes(
        validation.semantic_problems(POD, pod)
    )


def test_a_deployment_selector_must_match_its_template() -> None:
    deployment = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {
                "metadata": {"labels": {"app": "b"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    assert "spec.template.metadata.labels" in _causes(
        validation.semantic_problems(DEPLOYMENT, deployment)
    )


def test_pod_specs_are_immutable_except_images() -> None:
    old = {"spec": {"containers": [{"name": "c", "image": "a"}]}}
    assert not validation.update_problems(
        POD, old, {"spec": {"containers": [{"name": "c", "image": "b"}]}}
    )
    assert validation.update_problems(
        POD, old, {"spec": {"containers": [{"name": "d", "image": "a"}]}}
    )


def test_pod_table_rows_show_readiness_status_and_node() -> None:
    pod = {
        "metadata": {"name": "p", "creationTimestamp": "2020-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "c"}], "nodeName": "n"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "containerStatuses": [{"ready": True, "restartCount": 0}],
        },
    }
    row = tables.table("Pod", [pod], "Metadata")["rows"][0]
    assert row["cells"][:3] == ["p", "1/1", "Running"]
    assert row["cells"][5:7] == ["10.0.0.1", "n"]
    assert row["object"]["kind"] == "PartialObjectMetadata"


def test_usage_follows_the_profile_and_constant_annotations() -> None:
    pod = _pod("p", cpu="2")
    pod["metadata"]["annotations"] = {usage.PROFILE_ANNOTATION: "busy"}
    assert usage.pod_usage(pod).cpu_nanocores == int(2000 * 0.95) * 1_000_000
    pod["metadata"]["annotations"] = {usage.CPU_ANNOTATION: "250m", usage.GPU_ANNOTATION: "12.5"}
    measured = usage.pod_usage(pod)
    assert measured.cpu_nanocores == 250_000_000
    assert measured.gpu_utilization == 12.5


def test_usage_is_computed_again_only_for_a_changed_pod() -> None:
    cache = usage.UsageCache()
    pod = _pod("p", cpu="2")
    pod["metadata"]["resourceVersion"] = "1"
    [first] = cache.usages([pod], all_running=True)
    [again] = cache.usages([pod], all_running=True)
    assert again is first
    pod["metadata"]["annotations"] = {usage.CPU_ANNOTATION: "250m"}
    pod["metadata"]["resourceVersion"] = "2"
    [changed] = cache.usages([pod], all_running=True)
    assert changed.cpu_nanocores == 250_000_000


def test_a_complete_pass_forgets_pods_no_longer_running_and_a_partial_one_does_not() -> None:
    cache = usage.UsageCache()
    kept, gone = _pod("kept", cpu="1"), _pod("gone", cpu="1")
    [kept_usage, gone_usage] = cache.usages([kept, gone], all_running=True)
    cache.usages([kept], all_running=False)
    assert cache.usages([gone], all_running=False)[0] is gone_usage
    cache.usages([kept], all_running=True)  # "gone" stopped running
    assert cache.usages([kept], all_running=False)[0] is kept_usage
    assert cache.usages([gone], all_running=False)[0] is not gone_usage


def test_dcgm_exposition_labels_each_gpu_with_its_pod() -> None:
    node = {"metadata": {"name": "g"}, "status": {"capacity": {"nvidia.com/gpu": "2"}}}
    pod = _pod("train", gpus=1, node="g")
    pod["metadata"]["uid"] = "u1"
    pod["metadata"]["annotations"] = {usage.GPU_ANNOTATION: "88"}
    text = usage.dcgm_exposition([node], {"u1": pod}, {"u1": usage.GpuAssignment("g", (1,))})
    busy = [
        line
        for line in text.splitlines()
        if line.startswith("DCGM_FI_DEV_GPU_UTIL{") and 'pod="train"' in line
    ]
    assert len(busy) == 1
    assert 'gpu="1"' in busy[0]
    assert 'namespace="ns"' in busy[0]
    assert busy[0].endswith(" 88")
    assert "# TYPE DCGM_FI_DEV_GPU_UTIL gauge" in text


def test_large_clusters_are_searched_in_part_and_from_a_rotating_start() -> None:
    """As kube-scheduler: all of 50 nodes, 42% of 1,000, never fewer than 100."""
    assert scheduler.feasible_nodes_to_find(50) == 50
    assert scheduler.feasible_nodes_to_find(1000) == 420
    assert scheduler.feasible_nodes_to_find(200) == 100
    nodes = [_node(f"n{i:03d}") for i in range(200)]
    first = scheduler.choose_node(_pod("p"), nodes, _allocatable(nodes), {}, start=0)
    second = scheduler.choose_node(
        _pod("q"), nodes, _allocatable(nodes), {}, start=first.next_start
    )
    assert first.next_start == 100
    assert first.node == "n000"
    assert second.node == "n100"


def test_quota_demand_counts_pod_requests_limits_and_objects() -> None:
    pod = _pod("p", cpu="500m", gpus=2)
    wanted = quota.demand("Pod", "pods", pod)
    assert wanted["requests.cpu"] == 500
    assert wanted["cpu"] == 500
    assert wanted["requests.nvidia.com/gpu"] == 2
    assert wanted["pods"] == 1
    assert wanted["count/pods"] == 1


def test_quota_admission_refuses_what_would_exceed_a_hard_limit() -> None:
    limits = {
        "metadata": {"name": "team"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "4", "pods": "10"}},
    }
    used = quota.used_in([("Pod", "pods", _pod("a", gpus=3, node="n"))])
    assert (
        quota.admission_problem(limits, used, quota.demand("Pod", "pods", _pod("b", gpus=1)), "Pod")
        is None
    )
    problem = quota.admission_problem(
        limits, used, quota.demand("Pod", "pods", _pod("c", gpus=2)), "Pod"
    )
    assert problem == (
        "exceeded quota: team, requested: requests.nvidia.com/gpu=2, "
        "used: requests.nvidia.com/gpu=3, limited: requests.nvidia.com/gpu=4"
    )


def test_a_cpu_quota_requires_pods_to_request_cpu() -> None:
    limits = {"metadata": {"name": "q"}, "spec": {"hard": {"requests.cpu": "4"}}}
    bare = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    assert quota.admission_problem(limits, {}, quota.demand("Pod", "pods", bare), "Pod") == (
        "failed quota: q: must specify requests.cpu"
    )


def test_finished_pods_do_not_use_quota() -> None:
    done = _pod("done", cpu="2", node="n")
    done["status"]["phase"] = "Succeeded"
    assert quota.used_in([("Pod", "pods", done)])["requests.cpu"] == 0
    assert quota.quota_status(
        {"spec": {"hard": {"requests.cpu": "4"}}}, {"requests.cpu": 1500}
    ) == {
        "hard": {"requests.cpu": "4"},
        "used": {"requests.cpu": "1500m"},
    }


def _busy_pod(cpu_request: str, profile: str) -> dict[str, Any]:
    pod = _pod("p", cpu=cpu_request, node="n")
    pod["metadata"]["annotations"] = {usage.PROFILE_ANNOTATION: profile}
    return pod


def test_the_autoscaler_scales_in_proportion_to_utilisation_over_target() -> None:
    spec = {
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 50},
                },
            }
        ],
    }
    busy = [_busy_pod("100m", "busy"), _busy_pod("100m", "busy")]  # 95% each
    recommendation = hpa.recommend(spec, 2, busy)
    assert recommendation.replicas == 4
    assert recommendation.readings[0].average_utilization == 95
    idle = [_busy_pod("100m", "idle")] * 4
    assert hpa.recommend(spec, 4, idle).replicas == 1


def test_the_autoscaler_ignores_changes_within_its_tolerance() -> None:
    spec = {
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 90},
                },
            }
        ],
    }
    assert hpa.recommend(spec, 3, [_busy_pod("100m", "busy")] * 3).replicas == 3  # 95% vs 90%


def test_scale_down_is_stabilised_and_bounded() -> None:
    assert hpa.stabilised([(0.0, 5), (200.0, 3)], now=250.0, window=300.0, wanted=1, current=5) == 5
    assert hpa.stabilised([(0.0, 5)], now=400.0, window=300.0, wanted=1, current=5) == 1
    assert hpa.bounded({"minReplicas": 2, "maxReplicas": 4}, 9) == 4
    assert hpa.bounded({"maxReplicas": 4}, 0) == 1


def _labelled_node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def test_node_selector_terms_match_when_any_term_has_all_requirements_hold() -> None:
    gpu = _labelled_node("gpu-1", {"nvidia.com/gpu.count": "8", "akros.io/pool": "gpu"})
    cpu = _labelled_node("cpu-1", {"akros.io/pool": "cpu"})
    many_gpus = {"matchExpressions": [{"key": "nvidia.com/gpu.count", "operator": "Gt",
                                       "values": ["4"]}]}  # fmt: skip
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["cpu-1"]}]}
    assert selectors.node_selector_terms_match([many_gpus], gpu)
    assert not selectors.node_selector_terms_match([many_gpus], cpu)
    assert selectors.node_selector_terms_match([many_gpus, by_name], cpu)
    not_cpu = {"matchExpressions": [{"key": "akros.io/pool", "operator": "NotIn",
                                     "values": ["cpu"]}]}  # fmt: skip
    assert selectors.node_selector_terms_match([not_cpu], gpu)
    assert not selectors.node_selector_terms_match([not_cpu], cpu)
    assert not selectors.node_selector_terms_match([{}], gpu), "an empty term matches nothing"


def test_a_pod_with_required_node_affinity_is_placed_only_on_a_matching_node() -> None:
    nodes = [_labelled_node("a", {"zone": "x"}), _labelled_node("b", {"zone": "y"})]
    pod = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [
                                {"key": "zone", "operator": "In", "values": ["y"]}]}
                        ]
                    }
                }
            }
        }
    }  # fmt: skip
    failures = [scheduler.placement_failure(pod, node) for node in nodes]
    assert failures == ["node(s) didn't match Pod's node affinity/selector", None]
