"""The workspace keeps the layout rules of DESIGN.md section 2 and issue 2."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _member_pyprojects() -> list[Path]:
    return sorted([*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")])


def test_every_member_imports_under_the_akros_prefix() -> None:
    for pyproject in _member_pyprojects():
        packages = [p.name for p in (pyproject.parent / "src").iterdir() if p.is_dir()]
        assert packages, f"{pyproject.parent} has no package under src/"
        for package in packages:
            assert package.startswith("akros_"), f"{pyproject.parent}: {package} lacks the prefix"


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0]


def test_no_service_depends_on_another_service() -> None:
    pyprojects = ROOT.glob("services/*/pyproject.toml")
    services = [tomllib.loads(p.read_text())["project"] for p in pyprojects]
    service_names = {project["name"] for project in services}
    for project in services:
        dependencies = {_requirement_name(r) for r in project["dependencies"]}
        others = service_names - {project["name"]}
        assert not dependencies & others, f"{project['name']} depends on another service"


def test_every_service_has_a_console_entry_point() -> None:
    for pyproject in ROOT.glob("services/*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        assert project.get("scripts"), f"{pyproject} declares no console entry point"
