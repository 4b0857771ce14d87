"""Runs the official Python client's own end-to-end tests against kubesim.

    python libs/kubesim/scripts/peer_suite.py [--upstream GIT_DIR] [--report FILE] [-- PYTEST_ARGS]

(`make peer-suite` runs it.) kubernetes-client/python keeps, in `kubernetes/e2e_test`, the tests
it runs against a real cluster. They are upstream's (Apache-2.0) and are not copied into this
repository: the script takes them at a pinned commit, either from the installed client (should a
release ever ship them; 37.0.2's wheel and sdist do not) or from a git repository of
kubernetes-client/python, extracts them into a temporary directory, starts kubesim on a free
port, points the suite at it through KUBECONFIG (its base.py loads the default kubeconfig) and
runs pytest on it.

Each upstream test that fails against kubesim is listed in KNOWN_FAILURES with the reason, and
libs/kubesim/README.md ("A peer's test suite") shows the same table. The script exits 0 only
when the failures are exactly those and at least RECORDED_PASSES tests pass, so a kubesim change
that breaks a passing test, or one that makes a listed test pass unnoticed, fails the run.
"""

import argparse
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from akros_kubesim.testing import run_kubesim

UPSTREAM = "https://github.com/kubernetes-client/python"
# kubernetes-client/python master of 2026-08-17 (merge of #2683), the newest commit the
# project's mirror holds; its e2e_test runs unchanged on the client the workspace installs.
PINNED_COMMIT = "024658493d124f046fc0a9827a2a3165cf2aee28"
SUITE_PATH = "kubernetes/e2e_test"
# Where a session's machine keeps a bare mirror of the repository; AKROS_PEER_SUITE_GIT or
# --upstream name any other clone.
MIRROR = Path("/work/.mirror/kubernetes-client+python/repo")

RECORDED_PASSES = 33

_STREAMS = (
    "exec, attach and port-forward are streamed over WebSocket/SPDY from a kubelet; kubesim "
    "runs no containers and does not serve these subresources"
)
_REPLICATION_CONTROLLERS = (
    "core/v1 ReplicationControllers (superseded by ReplicaSets; the platform uses Deployments) "
    "are not served"
)
KNOWN_FAILURES: dict[str, str] = {
    "test_client.py::TestClient::test_pod_apis": _STREAMS + " (pods/exec)",
    "test_client.py::TestClient::test_exit_code": _STREAMS + " (pods/exec)",
    "test_client.py::TestClient::test_pod_exec_close_channel": _STREAMS + " (pods/exec)",
    "test_client.py::TestClient::test_portforward_raw": _STREAMS + " (pods/portforward)",
    "test_client.py::TestClient::test_portforward_http": _STREAMS + " (pods/portforward)",
    "test_client.py::TestClient::test_replication_controller_apis": _REPLICATION_CONTROLLERS,
    "test_utils.py::TestUtils::test_create_from_multi_resource_yaml": _REPLICATION_CONTROLLERS,
    "test_utils.py::TestUtils::test_create_from_multi_resource_yaml_with_conflict": (
        _REPLICATION_CONTROLLERS
    ),
    "test_utils.py::TestUtils::test_create_multi_resource_from_directory": (
        _REPLICATION_CONTROLLERS
    ),
    "test_batch.py::TestClientBatch::test_job_apis": (
        "batch/v1 Jobs are not served: there is no Job controller (the platform runs no Jobs), "
        "though the kubelet can end a container (images marked `exit`)"
    ),
    "test_utils.py::TestUtils::test_create_apiservice_from_yaml_with_conflict": (
        "apiregistration.k8s.io APIServices (the aggregation layer) are not served; "
        "metrics.k8s.io is served by kubesim itself"
    ),
    "test_utils.py::TestUtils::test_create_apps_deployment_from_yaml_with_apply_is_idempotent": (
        "server-side apply (application/apply-patch+yaml) is not served: it needs managedFields "
        "and field ownership with conflicts, and an apply without them would be kinder than a "
        "real cluster"
    ),
}


@dataclass(frozen=True)
class Outcome:
    passed: list[str]
    failed: list[str]  # failures and errors alike
    skipped: list[str]

    def unexpected_failures(self) -> list[str]:
        return sorted(set(self.failed) - KNOWN_FAILURES.keys())

    def unexpected_passes(self) -> list[str]:
        return sorted(KNOWN_FAILURES.keys() - set(self.failed))

    def as_expected(self) -> bool:
        return (
            not self.unexpected_failures()
            and not self.unexpected_passes()
            and not self.skipped
            and len(self.passed) >= RECORDED_PASSES
        )


def _installed_suite() -> Path | None:
    """The installed client's own kubernetes/e2e_test, if its release ships one."""
    spec = importlib.util.find_spec("kubernetes.e2e_test")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _extract_from_git(git_dir: Path, destination: Path) -> None:
    """Writes SUITE_PATH at PINNED_COMMIT under destination, read with git, never checked out."""
    archive = subprocess.run(  # noqa: S603 - git on a repository the user named
        ["git", "-C", str(git_dir), "archive", "--format=tar", PINNED_COMMIT, SUITE_PATH],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"{git_dir} has no {SUITE_PATH} at {PINNED_COMMIT}: "
            f"{archive.stderr.decode().strip()}\n{_how_to_get_upstream()}"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")


def _how_to_get_upstream() -> str:
    return (
        "Get kubernetes-client/python (history without blobs is enough):\n"
        f"  git clone --filter=blob:none {UPSTREAM} /tmp/kubernetes-client-python\n"
        "then run again with --upstream /tmp/kubernetes-client-python "
        "(or AKROS_PEER_SUITE_GIT=/tmp/kubernetes-client-python)."
    )


def _upstream_git(given: str | None) -> Path:
    """The copy named by --upstream or AKROS_PEER_SUITE_GIT, else the machine's mirror."""
    named = given or os.environ.get("AKROS_PEER_SUITE_GIT")
    candidate = Path(named) if named else MIRROR
    if not candidate.exists():
        where = f"{candidate} does not exist" if named else "no copy of kubernetes-client/python"
        raise SystemExit(f"{where}.\n{_how_to_get_upstream()}")
    return candidate


def _suite_directory(workdir: Path, upstream: str | None) -> Path:
    """A directory holding kubernetes/e2e_test: the installed client's, or the pinned commit's."""
    installed = _installed_suite()
    if installed is not None:
        return installed.parent.parent
    _extract_from_git(_upstream_git(upstream), workdir)
    return workdir


def _write_harness(workdir: Path, suite_root: Path) -> Path:
    """A pytest configuration of the temporary directory's own, and the import hook the suite
    needs: it imports itself as kubernetes.e2e_test, a subpackage of the installed client."""
    (workdir / "conftest.py").write_text(
        f"import kubernetes\nkubernetes.__path__.append({str(suite_root / 'kubernetes')!r})\n"
    )
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\ntimeout = 120\n")
    return ini


def _outcome(junit_xml: Path) -> Outcome:
    passed: list[str] = []
    failed: list[str] = []
    skipped: list[str] = []
    # The report is the one our own pytest run just wrote.
    for case in ElementTree.parse(junit_xml).iter("testcase"):  # noqa: S314
        module = case.get("classname", "").split(".")
        # classname is "e2e_test.test_client.TestClient" (or with a kubernetes. prefix)
        test_id = f"{module[-2]}.py::{module[-1]}::{case.get('name')}"
        results = {child.tag for child in case}
        if results & {"failure", "error"}:
            failed.append(test_id)
        elif "skipped" in results:
            skipped.append(test_id)
        else:
            passed.append(test_id)
    return Outcome(sorted(passed), sorted(failed), sorted(skipped))


def run(upstream: str | None, pytest_args: list[str]) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="peer-suite-") as temporary:
        workdir = Path(temporary)
        suite_root = _suite_directory(workdir, upstream)
        ini = _write_harness(workdir, suite_root)
        junit_xml = workdir / "results.xml"
        with run_kubesim(pod_start_seconds=0.2) as cluster:
            command = [
                sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(workdir),
                "-p", "no:cacheprovider", "-q", "-rfE", f"--junitxml={junit_xml}",
                str(suite_root / SUITE_PATH), *pytest_args,
            ]  # fmt: skip
            # The suite reads KUBECONFIG (kube_config.KUBE_CONFIG_DEFAULT_LOCATION); HOME keeps
            # it from finding anything else of the user's.
            environment = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), HOME=temporary)
            subprocess.run(command, cwd=workdir, env=environment, check=False)  # noqa: S603
        return _outcome(junit_xml)


def _print_summary(outcome: Outcome) -> None:
    print(f"\npeer suite: kubernetes-client/python {SUITE_PATH} at {PINNED_COMMIT[:12]}")
    for test_id in outcome.failed:
        reason = KNOWN_FAILURES.get(test_id, "NOT EXPECTED: kubesim regressed or changed")
        print(f"  failed  {test_id}: {reason}")
    for test_id in outcome.unexpected_passes():
        print(f"  passed  {test_id}: listed as failing; update KNOWN_FAILURES and the README")
    for test_id in outcome.skipped:
        print(f"  skipped {test_id}")
    print(f"recorded: at least {RECORDED_PASSES} passed, {len(KNOWN_FAILURES)} known failures")
    verdict = "as recorded" if outcome.as_expected() else "NOT as recorded"
    print(f"peer suite: {len(outcome.passed)} passed, {len(outcome.failed)} failed ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", help="a git repository (bare or not) of the client")
    parser.add_argument("--report", type=Path, help="write the outcome as JSON to this file")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed on to pytest")
    arguments = parser.parse_args()
    outcome = run(arguments.upstream, arguments.pytest_args)
    _print_summary(outcome)
    if arguments.report is not None:
        report = {
            "commit": PINNED_COMMIT,
            "passed": outcome.passed,
            "failed": outcome.failed,
            "skipped": outcome.skipped,
            "as_expected": outcome.as_expected(),
        }
        arguments.report.write_text(json.dumps(report, indent=2) + "\n")
    raise SystemExit(0 if outcome.as_expected() else 1)


if __name__ == "__main__":
    main()
