"""The README's record of the peer suite is the one `make peer-suite` checks a run against.

The suite itself is upstream's (kubernetes-client/python, kubernetes/e2e_test) and is not in
this repository, so `make peer-suite` runs it wherever a git copy of that repository is at hand
(libs/kubesim/README.md, "A peer's test suite"). What runs here, on every machine, is the check
that the script's expectations and the README's table are the same record: a failure fixed in
kubesim, or a new one, must change both.
"""

import importlib.util
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "libs" / "kubesim" / "scripts" / "peer_suite.py"
README = ROOT / "libs" / "kubesim" / "README.md"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_suite", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_record() -> tuple[int, int, set[str]]:
    """The passes, the suite's size and the failing tests the README's section records."""
    section = README.read_text().split("## A peer's test suite", 1)[1].split("\n## ", 1)[0]
    passes = re.search(r"(\d+) of the suite's (\d+) tests pass", section)
    assert passes is not None, "the README section states how many pass"
    failing = set(re.findall(r"^\| `([^`]+::[^`]+)` \|", section, flags=re.MULTILINE))
    return int(passes.group(1)), int(passes.group(2)), failing


def test_the_readme_and_the_script_record_the_same_outcome() -> None:
    script = _script()
    passes, size, failing = _readme_record()
    assert failing == set(script.KNOWN_FAILURES)
    assert passes == script.RECORDED_PASSES
    assert size == passes + len(failing)
