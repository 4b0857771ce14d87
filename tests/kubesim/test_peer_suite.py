"""The official Python client's own end-to-end suite against kubesim, as `make peer-suite` runs it.

The suite is upstream's (kubernetes-client/python, kubernetes/e2e_test) and is not in this
repository: libs/kubesim/scripts/peer_suite.py takes it from a git copy of that repository. The
run must match what libs/kubesim/README.md records: at least the recorded number of passes, and
exactly the listed failures, so a kubesim change that breaks one of upstream's tests fails here.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "libs" / "kubesim" / "scripts" / "peer_suite.py"
README = ROOT / "libs" / "kubesim" / "README.md"
MIRROR = Path("/work/.mirror/kubernetes-client+python/repo")


def _readme_record() -> tuple[int, set[str]]:
    """The passes and the failing tests that the README's "A peer's test suite" records."""
    section = README.read_text().split("## A peer's test suite", 1)[1].split("\n## ", 1)[0]
    passes = re.search(r"(\d+) of the suite's (\d+) tests pass", section)
    assert passes is not None, "the README section states how many pass"
    failing = set(re.findall(r"^\| `([^`]+::[^`]+)` \|", section, flags=re.MULTILINE))
    return int(passes.group(1)), failing


def _upstream_copy() -> str | None:
    given = os.environ.get("AKROS_PEER_SUITE_GIT")
    if given:
        return given
    return str(MIRROR) if MIRROR.exists() else None


@pytest.mark.slow
def test_the_client_e2e_suite_passes_as_the_readme_records(tmp_path: Path) -> None:
    upstream = _upstream_copy()
    if upstream is None:
        pytest.skip(
            "no copy of kubernetes-client/python: git clone --filter=blob:none "
            "https://github.com/kubernetes-client/python and set AKROS_PEER_SUITE_GIT to it"
        )
    report_file = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--upstream", upstream, "--report", str(report_file)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert report_file.exists(), f"the script wrote no report:\n{run.stdout[-3000:]}{run.stderr}"
    report = json.loads(report_file.read_text())
    recorded_passes, recorded_failures = _readme_record()
    summary = run.stdout[-4000:]
    assert set(report["failed"]) == recorded_failures, summary
    assert len(report["passed"]) >= recorded_passes, summary
    assert report["skipped"] == [], summary
    assert report["as_expected"], summary
    assert run.returncode == 0, summary
