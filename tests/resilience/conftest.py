"""The whole platform as real processes, with a quota file small enough to race against."""

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Running, running_platform
from tests.slack.conftest import door, standin  # noqa: F401  # the Slack tier's, for the Slack matrix

# "racer" may hold two environments: enough to show that twenty racing creates get two.
QUOTAS = """
default: {cpu: "32", memory: 256Gi, gpus: 4, environments: 5}
overrides:
  racer: {cpu: "32", memory: 256Gi, gpus: 4, environments: 2}
"""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = tmp_path_factory.mktemp("platform")
    quota_file = state / "resilience-quotas.yaml"
    quota_file.write_text(QUOTAS)
    yield from running_platform(state, environment={"AKROS_QUOTA_FILE": str(quota_file)})
