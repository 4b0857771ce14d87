"""Block Kit is built by pure functions: each test compares the structure Slack receives."""

from datetime import UTC, datetime

from akros_msgs import (
    SYSTEM_ACTOR,
    CommandFailed,
    EnvironmentExpiring,
    EnvironmentReady,
    EnvironmentStarting,
    FailureCode,
    Resources,
    UnderusedEnvironment,
)
from akros_policy import Catalog, CatalogImage
from akros_readmodel import EnvironmentStatus, EnvironmentView
from akros_slack import blocks, forms

CATALOG = Catalog(
    images={
        "pytorch": CatalogImage(image="r/pytorch:1", description="PyTorch"),
        "plain": CatalogImage(image="r/plain:1"),
    }
)


def _plain(text: str) -> dict[str, object]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _view(
    name: str, status: EnvironmentStatus, url: str | None = None, reason: str | None = None
) -> EnvironmentView:
    return EnvironmentView(
        owner="alice",
        name=name,
        status=status,
        image="pytorch",
        resources=Resources.of("2", "8Gi"),
        volume_size="20Gi",
        url=url,
        reason=reason,
        request_id=f"r-{name}",
    )


def test_the_create_modal_offers_the_catalog_images_and_the_default_resources() -> None:
    view = blocks.create_modal(CATALOG)
    assert (view["type"], view["callback_id"]) == ("modal", blocks.CREATE_MODAL)
    by_block = {block["block_id"]: block for block in view["blocks"]}
    assert list(by_block) == list(forms.FORM_FIELDS)
    assert by_block["image"]["element"] == {
        "type": "static_select",
        "action_id": "image",
        "options": [
            {"text": _plain("pytorch: PyTorch"), "value": "pytorch"},
            {"text": _plain("plain"), "value": "plain"},
        ],
    }
    assert by_block["cpu"]["element"] == {
        "type": "plain_text_input",
        "action_id": "cpu",
        "initial_value": "2",
    }
    assert by_block["gpus"]["element"]["initial_value"] == "0"
    assert by_block["dedicated_cores"]["optional"] is True


def test_the_shrink_modal_is_prefilled_and_carries_the_fixed_name() -> None:
    form = forms.EnvironmentForm(name="lab", image="plain", cpu="4", memory="32Gi", gpus=1)
    view = blocks.shrink_modal(CATALOG, form)
    assert view["callback_id"] == blocks.SHRINK_MODAL
    assert view["private_metadata"] == '{"name": "lab"}'
    by_block = {block.get("block_id"): block for block in view["blocks"]}
    assert "name" not in by_block
    assert by_block["image"]["element"]["initial_option"] == {
        "text": _plain("plain"),
        "value": "plain",
    }
    assert by_block["cpu"]["element"]["initial_value"] == "4"
    assert by_block["memory"]["element"]["initial_value"] == "32Gi"
    assert by_block["gpus"]["element"]["initial_value"] == "1"


def test_a_modal_for_someone_elses_environment_carries_and_shows_its_owner() -> None:
    form = forms.EnvironmentForm(name="lab", image="plain")
    for view in (blocks.shrink_modal(CATALOG, form, "bob"), blocks.delete_modal("lab", "bob")):
        assert view["private_metadata"] == '{"name": "lab", "owner": "bob"}'
        assert "*bob/lab*" in view["blocks"][0]["text"]["text"]


def test_the_delete_modal_keeps_the_volume_unless_purge_is_ticked() -> None:
    assert blocks.delete_modal("lab") == {
        "type": "modal",
        "callback_id": "akros_delete",
        "title": _plain("Delete environment"),
        "submit": _plain("Delete"),
        "close": _plain("Cancel"),
        "private_metadata": '{"name": "lab"}',
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Delete *lab*? Its work volume is kept unless you tick the box.",
                },
            },
            {
                "type": "input",
                "block_id": "purge_volume",
                "optional": True,
                "label": _plain("Volume"),
                "element": {
                    "type": "checkboxes",
                    "action_id": "purge_volume",
                    "options": [
                        {"text": _plain("Also delete its volume, for good"), "value": "yes"}
                    ],
                },
            },
        ],
    }


def test_a_ready_environment_replaces_the_pending_message_with_its_url_and_a_stop_button() -> None:
    event = EnvironmentReady(
        request_id="r1",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="lab",
        url="https://lab-alice.research.akros.local",
        node="gpu-1",
        resources=Resources.of("2", "8Gi"),
    )
    text = (
        ":white_check_mark: *lab* is ready (2 CPU, 8Gi memory): "
        "<https://lab-alice.research.akros.local|https://lab-alice.research.akros.local>"
    )
    assert blocks.ready_message(event) == blocks.SlackMessage(
        text,
        [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": text},
                "accessory": {
                    "type": "button",
                    "text": _plain("Open"),
                    "action_id": "akros_open_url",
                    "value": "lab",
                    "url": "https://lab-alice.research.akros.local",
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": _plain("Stop"),
                        "action_id": "akros_stop_environment",
                        # the owner too: an admin's message may be about someone else's
                        "value": "alice/lab",
                    }
                ],
            },
        ],
    )


def test_a_start_on_its_way_says_its_stage_and_what_it_waits_for() -> None:
    event = EnvironmentStarting(
        request_id="r1",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="lab",
        stage="pulling image",
        progress="pulling registry.local/cuda:12",
    )
    text = (
        ":hourglass_flowing_sand: Creating *lab*: pulling image (pulling registry.local/cuda:12)…"
    )
    assert blocks.progress_message(event) == blocks.SlackMessage(
        text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    )
    assert blocks.progress_message(event, "Starting").text == (
        ":hourglass_flowing_sand: Starting *lab*: pulling image (pulling registry.local/cuda:12)…"
    )


def test_a_failure_says_the_reason() -> None:
    event = CommandFailed(
        request_id="r1",
        actor=SYSTEM_ACTOR,
        command_type="create_environment",
        code=FailureCode.UNSCHEDULABLE,
        reason="No node has 9 GPUs.",
        owner="alice",
        name="lab",
    )
    assert blocks.failed_message(event).text == ":x: *lab* failed: No node has 9 GPUs."


def test_home_lists_each_environment_with_the_buttons_its_status_allows() -> None:
    home = blocks.home_view(
        [
            _view("lab", EnvironmentStatus.READY, url="https://lab"),
            _view("idle", EnvironmentStatus.STOPPED, url="https://idle"),
            _view("halting", EnvironmentStatus.STOPPING, url="https://halting"),
            _view("gone", EnvironmentStatus.DELETING),
        ]
    )
    assert home["type"] == "home"
    actions = [b for b in home["blocks"] if b["type"] == "actions"]
    assert [[e["action_id"] for e in a["elements"]] for a in actions] == [
        ["akros_open_create"],
        ["akros_open_url", "akros_stop_environment", "akros_delete_environment"],
        ["akros_start_environment", "akros_delete_environment"],
        ["akros_delete_environment"],
    ]
    assert actions[1]["elements"][0]["url"] == "https://lab"
    assert [a["elements"][-2]["value"] for a in actions[1:3]] == ["lab", "idle"]
    sections = [b["text"]["text"] for b in home["blocks"] if b["type"] == "section"]
    assert sections == [
        ":large_green_circle: *lab* · ready · 2 CPU, 8Gi memory · pytorch\n<https://lab|https://lab>",
        ":double_vertical_bar: *idle* · stopped · 2 CPU, 8Gi memory · pytorch",
        ":double_vertical_bar: *halting* · stopping · 2 CPU, 8Gi memory · pytorch",
        ":wastebasket: *gone* · deleting · 2 CPU, 8Gi memory · pytorch",
    ]


def test_a_stopped_environment_says_why_when_it_was_not_its_owners_request() -> None:
    reason = "It did not get past scheduling within 300s: no node has 1 free GPU."
    [section] = blocks.environments_message(
        [_view("lab", EnvironmentStatus.STOPPED, reason=reason)]
    ).blocks
    assert section["text"]["text"] == (
        f":double_vertical_bar: *lab* · stopped · 2 CPU, 8Gi memory · pytorch\n{reason}"
    )
    [plain] = blocks.environments_message([_view("lab", EnvironmentStatus.STOPPED)]).blocks
    assert plain["text"]["text"].endswith("· pytorch")


def test_a_pending_environment_on_home_offers_why_it_is_pending() -> None:
    home = blocks.home_view([_view("queued", EnvironmentStatus.PENDING)])
    [_, pending] = [b for b in home["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in pending["elements"]] == [
        ("akros_why_pending", "queued"),
        ("akros_delete_environment", "queued"),
    ]
    assert pending["elements"][0]["text"]["text"] == "Why is it pending?"


def test_why_it_is_pending_is_told_in_one_sentence() -> None:
    said = blocks.why_pending_message("lab", "waiting for a GPU: no node has one free")
    assert (
        said.text
        == ":hourglass_flowing_sand: *lab* is pending: waiting for a GPU: no node has one free."
    )
    assert (
        blocks.why_pending_message("lab", None).text
        == ":white_check_mark: *lab* is no longer pending."
    )


def test_an_empty_home_invites_to_create_one() -> None:
    home = blocks.home_view([])
    assert home["blocks"][-1]["text"]["text"].startswith("None yet.")


def test_the_underuse_dm_offers_keep_shrink_and_delete_for_that_environment() -> None:
    event = UnderusedEnvironment(
        request_id="n1",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="lab",
        since=datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
        requested=Resources.of("8", "64Gi", 1),
        cpu_used_fraction=0.03,
        gpu_utilisation=0.0,
        threshold=0.1,
    )
    message = blocks.underused_message(event)
    assert message.text.startswith(
        ":wave: Your environment *lab* reserves 8 CPU, 64Gi memory, 1 GPU but has used about "
        "3% of its CPU and 0% of its GPUs since 2026-11-28 09:30 UTC."
    )
    assert message.blocks[1] == {
        "type": "actions",
        "block_id": "underused",
        "elements": [
            {"type": "button", "text": _plain("Keep"), "action_id": "akros_keep", "value": "lab"},
            {
                "type": "button",
                "text": _plain("Shrink"),
                "action_id": "akros_shrink_environment",
                "value": "lab",
                "style": "primary",
            },
            {
                "type": "button",
                "text": _plain("Delete"),
                "action_id": "akros_delete_environment",
                "value": "lab",
                "style": "danger",
            },
        ],
    }


def _expiring(stops_at: datetime | None) -> EnvironmentExpiring:
    return EnvironmentExpiring(
        request_id="expiring:1",
        actor=SYSTEM_ACTOR,
        owner="alice",
        name="lab",
        expires_at=datetime(2026, 12, 8, 12, 0, tzinfo=UTC),
        stops_at=stops_at,
        extend_by_s=7200,
    )


def test_an_expiry_warning_on_time_names_the_expiry_as_the_stop() -> None:
    on_time = blocks.expiring_message(_expiring(datetime(2026, 12, 8, 12, 0, tzinfo=UTC)))
    assert on_time.text == (
        ":alarm_clock: Your environment *lab* will be stopped at 2026-12-08 12:00 UTC, when it "
        "expires; its volume is kept and nothing is deleted. Extend it by 2 h, or stop it now?"
    )
    assert blocks.expiring_message(_expiring(None)).text == on_time.text, "older workers"


def test_a_late_expiry_warning_names_the_later_stop_and_when_it_expired() -> None:
    late = blocks.expiring_message(_expiring(datetime(2026, 12, 8, 13, 30, tzinfo=UTC)))
    assert late.text == (
        ":alarm_clock: Your environment *lab* will be stopped at 2026-12-08 13:30 UTC, after "
        "the full notice (it expires at 2026-12-08 12:00 UTC); its volume is kept and nothing "
        "is deleted. Extend it by 2 h, or stop it now?"
    )
