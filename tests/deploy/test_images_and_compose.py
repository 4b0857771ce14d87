"""The container images and compose.yaml, checked where no Docker engine runs."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


def _compose() -> dict[str, object]:
    document: dict[str, object] = yaml.safe_load(COMPOSE.read_text())
    return document


def _built_services() -> dict[str, Path]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return {
        name: ROOT / service["build"]["dockerfile"]
        for name, service in services.items()
        if "build" in service
    }


def test_compose_yaml_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_deployable_has_an_image_in_compose() -> None:
    dockerfiles = set(_built_services().values())
    for pyproject in ROOT.glob("services/*/pyproject.toml"):
        assert pyproject.parent / "Dockerfile" in dockerfiles, f"{pyproject.parent} not in compose"


@pytest.mark.parametrize("service", sorted(_built_services()))
def test_each_image_installs_only_its_package_and_runs_unprivileged(service: str) -> None:
    dockerfile = _built_services()[service]
    text = dockerfile.read_text()
    project = tomllib.loads((dockerfile.parent / "pyproject.toml").read_text())["project"]
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) == 2, "build and runtime stages"
    assert f"--no-dev --no-editable --package {project['name']}\n" in text
    assert re.search(r"^USER 10001:10001$", text, flags=re.MULTILINE)
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"', text, flags=re.MULTILINE)
    assert entrypoint is not None
    assert entrypoint.group(1) in project["scripts"], "the entry point is the package's script"


def test_redis_keeps_its_streams_durable_with_aof_on_a_volume() -> None:
    redis = _compose()["services"]["redis"]  # type: ignore[index]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_every_long_running_service_has_a_health_check_and_a_restart_policy() -> None:
    for name, service in _compose()["services"].items():  # type: ignore[attr-defined]
        assert "healthcheck" in service, name
        assert service.get("restart") == "unless-stopped", name
