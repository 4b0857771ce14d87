"""deploy/'s kustomizations rendered by the oldest kubectl the tests drive (its kustomize is
the strictest about the old syntax)."""

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.kubesim.conftest import kubectl_binary

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = ["base", "overlays/rke2", "overlays/external-redis", "overlays/host-paths"]


def kubectl(*args: str, home: Path, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(kubectl_binary()), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def render(kustomization: str, home: Path) -> list[dict[str, Any]]:
    rendered = kubectl("kustomize", str(ROOT / "deploy" / kustomization), home=home)
    return [doc for doc in yaml.safe_load_all(rendered) if doc]
