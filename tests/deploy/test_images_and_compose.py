"""The container images and compose.yaml, checked where no Docker engine runs."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"


def _compose() -> dict[str, object]:
    document: dict[str, object] = yaml.safe_load(COMPOSE.read_text())
    return document


def _builds() -> dict[str, dict[str, object]]:
    """Each compose service built here, with its `build` section."""
    services = _compose()["services"]
    assert isinstance(services, dict)
    return {name: service["build"] for name, service in services.items() if "build" in service}


def _projects() -> dict[str, dict[str, object]]:
    """Every workspace member's [project] table, by its uv package name."""
    pyprojects = [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
    projects = [tomllib.loads(path.read_text())["project"] for path in pyprojects]
    return {project["name"]: project for project in projects}


def _stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's build stages, each a list of (instruction, arguments), with comments
    dropped and continuation lines joined as Docker reads them."""
    logical = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in logical.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction == "FROM":
            stages.append([])
        assert stages, f"{instruction} before the first FROM"
        stages[-1].append((instruction, arguments.strip()))
    return stages


def _arguments(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    return [arguments for name, arguments in stage if name == instruction]


def test_compose_yaml_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_image_is_built_by_the_one_dockerfile_from_the_repository_root() -> None:
    for name, build in _builds().items():
        assert build["context"] == ".", name
        assert ROOT / str(build["dockerfile"]) == DOCKERFILE, name
    leftovers = [*ROOT.glob("services/*/Dockerfile"), *ROOT.glob("libs/*/Dockerfile")]
    assert not leftovers, "a second Dockerfile would drift from the one recipe"


def test_every_deployable_has_a_compose_service_building_its_package() -> None:
    packages = {build["args"]["AKROS_PACKAGE"] for build in _builds().values()}  # type: ignore[index]
    for pyproject in ROOT.glob("services/*/pyproject.toml"):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        assert name in packages, f"{pyproject.parent} has no service in compose.yaml"


@pytest.mark.parametrize("service", sorted(_builds()))
def test_each_compose_service_installs_a_package_and_runs_one_of_its_scripts(
    service: str,
) -> None:
    args = _builds()[service]["args"]
    assert isinstance(args, dict)
    assert set(args) == {"AKROS_PACKAGE", "AKROS_ENTRYPOINT"}
    project = _projects().get(args["AKROS_PACKAGE"])
    assert project is not None, f"{args['AKROS_PACKAGE']} is no workspace package"
    scripts = project.get("scripts", {})
    assert isinstance(scripts, dict)
    assert args["AKROS_ENTRYPOINT"] in scripts, "the entry point is the package's own script"


def test_the_image_installs_only_the_chosen_package_in_a_build_stage() -> None:
    stages = _stages()
    assert len(stages) == 2, "build and runtime stages"
    build, runtime = stages
    assert "AKROS_PACKAGE" in _arguments(build, "ARG"), "an ARG is only seen in its own stage"
    assert 'uv sync --frozen --no-dev --no-editable --package "$AKROS_PACKAGE"' in _arguments(
        build, "RUN"
    )
    copied = _arguments(runtime, "COPY")
    assert copied == ["--from=build /app/.venv /app/.venv"], "the runtime gets the venv alone"


def test_the_image_runs_the_chosen_script_as_pid_1_and_unprivileged() -> None:
    runtime = _stages()[-1]
    assert "AKROS_ENTRYPOINT" in _arguments(runtime, "ARG"), "an ARG is only seen in its stage"
    entrypoint = json.loads(_arguments(runtime, "ENTRYPOINT")[-1])  # exec form: no shell
    assert isinstance(entrypoint, list)
    assert len(entrypoint) == 1
    link = f'ln -s "/app/.venv/bin/$AKROS_ENTRYPOINT" {entrypoint[0]}'
    assert any(link in run for run in _arguments(runtime, "RUN")), "runs the chosen script"
    assert _arguments(runtime, "USER")[-1] == "10001:10001"


def test_redis_keeps_its_streams_durable_with_aof_on_a_volume() -> None:
    redis = _compose()["services"]["redis"]  # type: ignore[index]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_every_long_running_service_has_a_health_check_and_a_restart_policy() -> None:
    for name, service in _compose()["services"].items():  # type: ignore[attr-defined]
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name
