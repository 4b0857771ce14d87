"""The architecture's import boundaries, the import-linter contracts of the root pyproject.toml,
hold for the repository, and each one fails when a single deliberate import breaks it.

A violation is planted in a copy of a real package made in a temporary directory that comes
first on PYTHONPATH, so lint-imports reads the copy instead of the installed package while
every other package stays the real one; the copy is the repository's code plus one import.
"""

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from akros_devtools.import_contracts import imports_outside

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONFIG = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
CONTRACT_NAMES = [contract["name"] for contract in CONFIG["contracts"]]


def _packages(pattern: str) -> set[str]:
    return {path.parent.name for path in ROOT.glob(f"{pattern}/src/*/__init__.py")}


def _contract(contract_id: str) -> dict[str, Any]:
    return next(c for c in CONFIG["contracts"] if c["id"] == contract_id)


def _lint_imports(
    *arguments: str, cwd: Path, pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200"}  # rich would wrap long contract names
    if pythonpath is not None:
        environment["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _broken_contracts(output: str) -> list[str]:
    return re.findall(r"^(.+) BROKEN$", output, flags=re.MULTILINE)


def test_the_repository_keeps_every_contract() -> None:
    result = _lint_imports(cwd=ROOT)  # as `make lint` runs it: the config found by itself

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACT_NAMES)} kept, 0 broken." in result.stdout


def test_the_contracts_name_every_package_of_the_workspace() -> None:
    """A package added under libs/ or services/ and left out of the contracts would escape
    them, as would a service left out of the independence contract."""
    libraries, services = _packages("libs/*"), _packages("services/*")

    assert set(CONFIG["root_packages"]) == libraries | services
    assert set(_contract("services-independent")["modules"]) == services
    platform_but_kubesim = (libraries | services) - {"akros_kubesim"}
    assert set(_contract("kubesim-standalone")["forbidden_modules"]) == platform_but_kubesim


@pytest.mark.parametrize(
    ("package_source", "module", "violation", "broken"),
    [
        pytest.param(
            "services/slack/src/akros_slack",
            "boundary_violation",
            "import akros_gateway\n",
            "Services never import each other",
            id="a service imports another",
        ),
        pytest.param(
            # every service imports akros_bus, so this one import joins them all
            "libs/akros_bus/src/akros_bus",
            "__init__",
            "from akros_gateway import app\n",
            "Services never import each other",
            id="a library every service imports imports a service",
        ),
        pytest.param(
            "services/poller/src/akros_poller",
            "boundary_violation",
            "from kubernetes.aio import client\n",
            "Only akros_kube's adapter module imports the Kubernetes client",
            id="a service imports the Kubernetes client",
        ),
        pytest.param(
            "libs/akros_kube/src/akros_kube",
            "boundary_violation",
            "import kubernetes\n",
            "Only akros_kube's adapter module imports the Kubernetes client",
            id="a second module of akros_kube imports the Kubernetes client",
        ),
        pytest.param(
            "libs/akros_msgs/src/akros_msgs",
            "boundary_violation",
            "import redis\n",
            "akros_msgs imports pydantic and the standard library only",
            id="the message contract imports a third-party package",
        ),
        pytest.param(
            "libs/akros_msgs/src/akros_msgs",
            "boundary_violation",
            "from akros_policy import check_quota\n",
            "akros_msgs imports pydantic and the standard library only",
            id="the message contract imports a platform package",
        ),
        pytest.param(
            "libs/kubesim/src/akros_kubesim",
            "boundary_violation",
            "from akros_msgs import envelope\n",
            "kubesim imports nothing of the platform",
            id="kubesim imports a platform package",
        ),
    ],
)
def test_one_deliberate_import_breaks_exactly_its_contract(
    tmp_path: Path, package_source: str, module: str, violation: str, broken: str
) -> None:
    package = tmp_path / Path(package_source).name
    shutil.copytree(ROOT / package_source, package, ignore=shutil.ignore_patterns("__pycache__"))
    with (package / f"{module}.py").open("a") as source:
        source.write(violation)
    importer = package.name if module == "__init__" else f"{package.name}.{module}"

    result = _lint_imports(str(PYPROJECT), cwd=tmp_path, pythonpath=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert _broken_contracts(result.stdout) == [broken], result.stdout
    assert f"{importer} -> " in result.stdout, result.stdout


def test_the_allow_list_admits_submodules_but_not_lookalike_names() -> None:
    imports = [
        ("akros_msgs.envelope", "akros_msgs.names"),
        ("akros_msgs.envelope", "datetime"),
        ("akros_msgs.envelope", "pydantic.fields"),
        ("akros_msgs.envelope", "pydantic_settings"),
        ("akros_msgs.envelope", "akros_msgs_extra"),
    ]

    outside = imports_outside(imports, package="akros_msgs", allowed=["pydantic"])

    assert outside == [
        ("akros_msgs.envelope", "pydantic_settings"),
        ("akros_msgs.envelope", "akros_msgs_extra"),
    ]
