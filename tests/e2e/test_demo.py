"""`make demo` tells the whole story against a running platform and exits 0."""

import subprocess
import sys
from pathlib import Path

import pytest

from akros_devtools.platform import Platform, PlatformOptions


@pytest.mark.cluster
@pytest.mark.kubesim_only(
    reason="the story is told on kubesim's default cluster: its lines name those 16 GPUs"
)
def test_the_demo_runs_end_to_end_against_a_running_platform(tmp_path: Path) -> None:
    platform = Platform(
        PlatformOptions(
            state=tmp_path / ".akros",
            pod_start_seconds=0.2,
            # The poller's scale-up window shortened so the story takes seconds, not minutes.
            environment={
                "AKROS_SCALE_UP_WINDOW_S": "1",
                "AKROS_USAGE_INTERVAL_S": "1",
                "AKROS_UNDERUSE_MINIMUM_AGE_S": "1",
                "AKROS_UNDERUSE_GRACE_S": "3",
            },
        )
    )
    try:
        platform.start()
        platform.write_endpoints()
        story = subprocess.run(
            [sys.executable, "-m", "akros_devtools.demo"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        platform.stop()
    assert story.returncode == 0, story.stdout + story.stderr
    assert "auto-inference runs 16 replicas, one GPU each" in story.stdout
    assert "Auto-inference made room: 12 replicas (was 16)" in story.stdout
    assert "nudged: CPU at 1% of its request" in story.stdout
    assert "kept volumes: ['story']" in story.stdout
    assert "auto-inference runs 16 replicas again" in story.stdout
