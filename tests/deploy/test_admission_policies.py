"""deploy/base/admission-policies.yaml: a ValidatingAdmissionPolicy pins the images of the
pods (and Deployments) in akros-envs and akros-services to the platform's registry and
bounds their tolerations and nodeSelectors to the ones the platform uses.

Only a real API server evaluates the CEL. These tests check what they can here, honestly:
the policies' structure (what they match, that they deny, that the pod and Deployment
policies say the same), that every validation reads the allowed sets, and that those sets
hold everything the platform itself produces: every catalog image, and the tolerations and
node selectors of every pod the worker's builders make."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from akros_k8s_worker.objects import GPU_PRODUCT_LABEL, GPU_RESOURCE
from tests.deploy.rendering import ROOT
from tests.deploy.test_pod_security import (
    SERVICE_SHAPES,
    _catalogs,
    _environment_pods,
    _service_pod,
)

POLICIES = ROOT / "deploy" / "base" / "admission-policies.yaml"
# Added to every pod by the API server's DefaultTolerationSeconds admission plugin, which
# runs before validating admission.
DEFAULT_TOLERATION_KEYS = {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(POLICIES.read_text()) if d]


def _policies(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == "ValidatingAdmissionPolicy"}


def _variables(policy: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy["spec"]["variables"]}


def _allowed(documents: list[dict[str, Any]], name: str) -> set[str]:
    """A set the policies allow: a CEL list literal of strings, which is JSON as written."""
    [policy, *_] = _policies(documents).values()
    values = json.loads(_variables(policy)[name])
    assert isinstance(values, list)
    assert all(isinstance(v, str) for v in values)
    return set(values)


def test_each_policy_is_bound_to_deny_and_fails_closed(documents: list[dict[str, Any]]) -> None:
    policies = _policies(documents)
    bindings = [d for d in documents if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert sorted(b["spec"]["policyName"] for b in bindings) == sorted(policies)
    for binding in bindings:
        assert binding["apiVersion"] == "admissionregistration.k8s.io/v1"
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert "matchResources" not in binding["spec"], "the policy's own scope, unnarrowed"
    for policy in policies.values():
        assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
        assert policy["spec"]["failurePolicy"] == "Fail"


def test_the_policies_match_pods_and_deployments_in_the_workers_namespaces_only(
    documents: list[dict[str, Any]],
) -> None:
    matched: dict[str, str] = {}
    for policy in _policies(documents).values():
        constraints = policy["spec"]["matchConstraints"]
        assert constraints["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["akros-envs", "akros-services"],
                }
            ]
        }
        [rule] = constraints["resourceRules"]
        assert rule["operations"] == ["CREATE", "UPDATE"], "an image is mutable on a pod"
        [resource] = rule["resources"]
        matched[resource] = _variables(policy)["podSpec"]
    assert matched == {"pods": "object.spec", "deployments": "object.spec.template.spec"}


def test_the_pod_and_deployment_policies_say_the_same_but_where_the_pod_spec_is(
    documents: list[dict[str, Any]],
) -> None:
    pods, deployments = _policies(documents).values()
    without_pod_spec = [
        {k: v for k, v in _variables(p).items() if k != "podSpec"} for p in (pods, deployments)
    ]
    assert without_pod_spec[0] == without_pod_spec[1]
    assert pods["spec"]["validations"] == deployments["spec"]["validations"]


def test_every_container_kind_is_checked_and_every_allowed_set_is_read(
    documents: list[dict[str, Any]],
) -> None:
    [policy, *_] = _policies(documents).values()
    images = _variables(policy)["images"]
    for field in ("containers", "initContainers", "ephemeralContainers"):
        assert f"variables.podSpec.{field}.map(c, c.image)" in images
    expressions = [v["expression"] for v in policy["spec"]["validations"]]
    for name in ("images", "allowedRegistries", "allowedTolerationKeys", "allowedNodeSelectorKeys"):
        assert any(f"variables.{name}" in e for e in expressions), name
    assert any("nodeName" in e for e in expressions)
    for validation in policy["spec"]["validations"]:
        assert validation["message"], "a refusal says which rule"


def test_every_catalog_image_comes_from_an_allowed_registry(
    documents: list[dict[str, Any]],
) -> None:
    registries = _allowed(documents, "allowedRegistries")
    assert all(r.endswith("/") for r in registries), "a prefix that ends a host or path"
    for catalog_name, catalog in _catalogs().items():
        for key, image in catalog.images.items():
            assert any(image.image.startswith(r) for r in registries), (catalog_name, key)


def _placement(spec: dict[str, Any]) -> tuple[set[str | None], set[str]]:
    tolerations = {t.get("key") for t in spec.get("tolerations") or []}
    return tolerations, set(spec.get("nodeSelector") or {})


def test_the_allowed_tolerations_and_node_selectors_are_what_the_platform_sets(
    documents: list[dict[str, Any]],
) -> None:
    tolerations = _allowed(documents, "allowedTolerationKeys")
    node_selector_keys = _allowed(documents, "allowedNodeSelectorKeys")
    assert tolerations == {GPU_RESOURCE} | DEFAULT_TOLERATION_KEYS
    used_tolerations: set[str | None] = set()
    used_selectors: set[str] = set()
    pods = [t["spec"] for _, t in _environment_pods()]
    pods += [_service_pod(shape)["spec"] for shape in SERVICE_SHAPES.values()]
    for spec in pods:
        keys, selectors = _placement(spec)
        used_tolerations |= keys
        used_selectors |= selectors
    assert used_tolerations == {GPU_RESOURCE}
    assert used_selectors == {GPU_PRODUCT_LABEL}
    assert used_selectors <= node_selector_keys
    # The pools deploy/rke2 labels its workers with.
    rke2 = "".join(p.read_text() for p in (ROOT / "deploy" / "rke2").glob("config-*-worker.yaml"))
    assert "akros.io/pool=cpu" in rke2
    assert "akros.io/pool=gpu" in rke2
    assert node_selector_keys == {GPU_PRODUCT_LABEL, "akros.io/pool"}


def test_the_control_planes_taint_is_not_among_the_tolerable_ones(
    documents: list[dict[str, Any]],
) -> None:
    """deploy/rke2/config-server.yaml keeps everything but RKE2's add-ons off the control
    plane with CriticalAddonsOnly; a toleration of it would undo that."""
    server = (Path(ROOT) / "deploy" / "rke2" / "config-server.yaml").read_text()
    assert "CriticalAddonsOnly=true:NoExecute" in server
    assert "CriticalAddonsOnly" not in _allowed(documents, "allowedTolerationKeys")
