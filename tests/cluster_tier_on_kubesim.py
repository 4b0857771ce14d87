"""The real-cluster tier run against kubesim as if it were a foreign cluster, so the tier
cannot rot where no real cluster is at hand (`make test` runs this after the suite).

kubesim is started here as a separate process with none of the platform's objects; the tests
get only the kubeconfig it writes (AKROS_TEST_KUBECONFIG), so the tier's own set-up creates
the namespaces from deploy/ and its clean-up removes them, as on a real cluster; afterwards
this checks that nothing of the tier is left there. Usage:
``python -m tests.cluster_tier_on_kubesim [pytest arguments]``; exits with pytest's code.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client, config

from akros_kubesim.testing import run_kubesim
from tests.cluster import KUBECONFIG_VARIABLE, needed_objects

CLUSTER_TIER = "cluster"


def main(pytest_arguments: list[str]) -> int:
    # A real cluster's sequence of states at a hundredth of its time, as in the suite.
    with run_kubesim(pod_start_seconds=0.2, time_factor=0.01) as kubesim:
        started = time.monotonic()
        tier = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", CLUSTER_TIER, *pytest_arguments],
            env={**os.environ, KUBECONFIG_VARIABLE: str(kubesim.kubeconfig)},
            check=False,
        )
        print(f"cluster tier against a separate kubesim: {time.monotonic() - started:.1f}s")
        left = left_behind(kubesim.kubeconfig)
        if left:
            print(f"the cluster tier left behind: {left}", file=sys.stderr)
            return tier.returncode or 1
        return tier.returncode


def left_behind(kubeconfig: Path) -> list[str]:
    """What of deploy/ the tier created is still in a cluster that had none of it."""
    with config.new_client_from_config(config_file=str(kubeconfig)) as api:
        namespaces = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
        classes = {c.metadata.name for c in client.SchedulingV1Api(api).list_priority_class().items}
    present = {("Namespace", name) for name in namespaces} | {
        ("PriorityClass", name) for name in classes
    }
    return sorted(f"{kind}/{name}" for kind, name in needed_objects() & present)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
