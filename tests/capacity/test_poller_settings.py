"""The poller's policy comes from AKROS_* settings and refuses incoherent ones at start."""

import pytest
from pydantic import ValidationError

from akros_msgs import Resources
from akros_poller.settings import PollerSettings


def test_the_policy_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKROS_INFERENCE_CPU", "2500m")
    monkeypatch.setenv("AKROS_INFERENCE_MEMORY", "16Gi")
    monkeypatch.setenv("AKROS_INFERENCE_GPUS", "2")
    monkeypatch.setenv("AKROS_HEADROOM_GPUS", "1")
    monkeypatch.setenv("AKROS_INFERENCE_NODE_SELECTOR", '{"akros.io/pool": "gpu"}')

    policy = PollerSettings().policy()

    assert policy.per_replica == Resources.of("2500m", "16Gi", 2)
    assert policy.headroom == Resources(gpus=1)
    assert dict(policy.node_labels) == {"akros.io/pool": "gpu"}


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"inference_min_replicas": 5, "inference_max_replicas": 2}, "must not exceed"),
        ({"inference_cpu": "0", "inference_memory": "0", "inference_gpus": 0}, "must request"),
    ],
)
def test_incoherent_policies_stop_the_poller_at_start(
    settings: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        PollerSettings.model_validate(settings)
