"""Every service that loads the catalog or the quotas reads the same two variables, declared
once in akros_policy, so the gateway, the Slack app, the worker and the monitor cannot drift
apart in what configures them."""

from pathlib import Path

import pytest

from akros_gateway.settings import GatewaySettings
from akros_k8s_worker.settings import WorkerSettings
from akros_monitor.settings import MonitorSettings
from akros_slack.settings import SlackSettings

QuotaCheckingSettings = GatewaySettings | WorkerSettings | SlackSettings


@pytest.fixture(autouse=True)
def _what_each_service_needs_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKROS_STORAGE_CLASS", "local-path")
    monkeypatch.setenv("AKROS_SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("AKROS_SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.delenv("AKROS_CATALOG_FILE", raising=False)
    monkeypatch.delenv("AKROS_QUOTA_FILE", raising=False)


@pytest.mark.parametrize("settings_class", [GatewaySettings, WorkerSettings, SlackSettings])
def test_the_services_that_check_quotas_read_both_files(
    settings_class: type[QuotaCheckingSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKROS_CATALOG_FILE", "/etc/akros/catalog.yaml")
    monkeypatch.setenv("AKROS_QUOTA_FILE", "/etc/akros/quotas.yaml")
    settings = settings_class()
    assert settings.catalog_file == Path("/etc/akros/catalog.yaml")
    assert settings.quota_file == Path("/etc/akros/quotas.yaml")


@pytest.mark.parametrize("settings_class", [GatewaySettings, WorkerSettings, SlackSettings])
def test_unset_files_mean_the_built_in_catalog_and_quotas(
    settings_class: type[QuotaCheckingSettings],
) -> None:
    settings = settings_class()
    assert (settings.catalog_file, settings.quota_file) == (None, None)


def test_the_monitor_reads_the_same_catalog_and_no_quotas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert MonitorSettings().catalog_file is None
    monkeypatch.setenv("AKROS_CATALOG_FILE", "/etc/akros/catalog.yaml")
    assert MonitorSettings().catalog_file == Path("/etc/akros/catalog.yaml")
    assert "quota_file" not in MonitorSettings.model_fields, "it never checks a quota"
