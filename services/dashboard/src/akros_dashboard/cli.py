"""``akros-dashboard``: serve the Streamlit app on the configured address."""

import os
import sys
from pathlib import Path

from akros_dashboard.settings import DashboardSettings

APP = Path(__file__).with_name("app.py")


def streamlit_command(settings: DashboardSettings) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", settings.host,
        "--server.port", str(settings.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        # No "Deploy" (to Streamlit's cloud) in the toolbar: it would sit beside ours.
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


def main() -> None:
    settings = DashboardSettings()  # fail fast on bad settings, before Streamlit starts
    command = streamlit_command(settings)
    os.execv(command[0], command)  # noqa: S606 -- replaces this process with Streamlit's own


if __name__ == "__main__":
    main()
