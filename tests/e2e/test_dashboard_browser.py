"""A real browser (Debian's headless Chromium, driven by Playwright) signs in to the dashboard
of a running platform and deploys a service through the JSON editor."""

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.sync_api import expect, sync_playwright

from akros_devtools.platform import DASHBOARD, SERVICES, Platform
from tests.e2e.conftest import start_platform

CHROMIUM = Path(os.environ.get("AKROS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SPEC = {
    "name": "browser-made",
    "image": "registry.local/browser-made:1",
    "ports": [{"port": 80, "target_port": 8080}],
    "resources": {"cpu": "100m", "memory": "128Mi"},
    "autoscaling": {"max_replicas": 2, "cpu_utilisation": 80},
}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = start_platform(tmp_path_factory.mktemp("browser"), services=(*SERVICES, DASHBOARD))
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.slow
def test_an_admin_deploys_a_service_from_the_editor_in_a_real_browser(
    platform: Platform, tmp_path: Path
) -> None:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        # headless=False: the flags above carry --headless themselves, as Chromium takes it.
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=False,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1600},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(platform.dashboard_url)
            page.get_by_label("Gateway token").fill(platform.admin_token())
            page.get_by_role("button", name="Sign in").click()
            page.get_by_test_id("stSidebar").get_by_text("Services", exact=True).click()

            editor = page.get_by_label("Spec (JSON)")
            editor.fill(json.dumps(SPEC, indent=2))
            editor.press("Control+Enter")  # Streamlit takes a text area's value on submit
            expect(page.get_by_text("The spec matches the schema.")).to_be_visible()
            expect(page.get_by_text("'browser-made' is a new service.")).to_be_visible()
            page.get_by_role("button", name="Deploy").click()

            expect(page.get_by_text("Applied: deploy_service browser-made")).to_be_visible()
            # The page then lists the service and the editor matches what is deployed.
            expect(page.get_by_text("No change against the deployed spec")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard-services-deployed.png"), full_page=True)
        finally:
            context.close()
    token = platform.admin_token()
    answer = _get(f"{platform.gateway_url}/v1/services/browser-made", token)
    assert answer["status"] == "deployed"
    assert answer["autoscaler"]["max_replicas"] == 2


def _get(url: str, token: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx2.get(
        url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    return document
