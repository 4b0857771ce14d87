"""The one quota rule, shared by the gateway and the worker."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from akros_msgs import Resources
from akros_policy import DEFAULT_QUOTA, Holding, Quota, QuotaPolicy, check_quota, load_quotas

QUOTA = Quota(cpu="16", memory="64Gi", gpus=2, environments=3)


def test_a_request_within_every_limit_is_allowed() -> None:
    holding = Holding(resources=Resources.of("8", "32Gi", 1), environments=2)
    assert check_quota(holding, Resources.of("8", "32Gi", 1), QUOTA).allowed


def test_a_request_over_the_gpu_limit_is_refused_with_the_numbers() -> None:
    holding = Holding(resources=Resources.of("2", "8Gi", 2), environments=1)
    decision = check_quota(holding, Resources.of("2", "8Gi", 1), QUOTA)
    assert not decision.allowed
    assert "GPUs would be 3 of your 2" in decision.reason


def test_every_exceeded_dimension_is_named() -> None:
    holding = Holding(resources=Resources.of("16", "64Gi", 2), environments=3)
    reason = check_quota(holding, Resources.of("500m", "1Gi", 1), QUOTA).reason
    assert "3 of your 3 environments" in reason
    assert "CPU would be 16500m of your 16" in reason
    assert "memory would be 65Gi of your 64Gi" in reason
    assert "GPUs would be 3 of your 2" in reason


def test_overrides_replace_the_default_for_one_user() -> None:
    big = Quota(cpu="64", memory="512Gi", gpus=8, environments=10)
    policy = QuotaPolicy(default=QUOTA, overrides={"carol": big})
    assert policy.for_user("carol") == big
    assert policy.for_user("dave") == QUOTA


def test_a_quota_file_is_written_like_a_pod_spec(tmp_path: Path) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text(
        "default: {cpu: '8', memory: 32Gi, gpus: 1, environments: 2}\n"
        "overrides:\n  carol: {cpu: 64, memory: 512Gi, gpus: 8, environments: 10}\n"
    )
    policy = QuotaPolicy.from_file(path)
    assert policy.for_user("dave").resources == Resources.of("8", "32Gi", 1)
    assert policy.for_user("carol").gpus == 8


def test_the_quota_file_reads_kubernetes_quantities(tmp_path: Path) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text(
        "default: {cpu: '16', memory: 64Gi, gpus: 2, environments: 3}\n"
        "overrides:\n  alice: {cpu: 500m, memory: 1Gi, environments: 1}\n"
    )
    policy = QuotaPolicy.from_file(path)
    assert policy.for_user("bob").resources == Resources.of("16", "64Gi", 2)
    assert policy.for_user("alice").resources == Resources.of("500m", "1Gi", 0)
    assert policy.for_user("alice").environments == 1


def test_a_quota_file_without_default_keeps_the_built_in_default(tmp_path: Path) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text("overrides: {}\n")
    assert QuotaPolicy.from_file(path).default == DEFAULT_QUOTA


def test_a_service_loads_its_quota_file_or_else_the_built_in_defaults(tmp_path: Path) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text("overrides:\n  alice: {cpu: 500m, memory: 1Gi, environments: 1}\n")
    assert load_quotas(None) == QuotaPolicy()
    assert load_quotas(path).for_user("alice").environments == 1


def test_a_bad_quota_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "quotas.yaml"
    path.write_text("overrides:\n  alice: {cpu: lots, memory: 1Gi, environments: 1}\n")
    with pytest.raises(ValidationError, match=r"overrides\.alice\.cpu"):
        QuotaPolicy.from_file(path)
