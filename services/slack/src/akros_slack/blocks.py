"""Every Block Kit structure the app sends: pure functions from platform data to Slack JSON,
tested by comparing structures."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from akros_msgs import (
    CommandFailed,
    EnvironmentDeleted,
    EnvironmentExpiring,
    EnvironmentExtended,
    EnvironmentReady,
    EnvironmentResized,
    EnvironmentStarting,
    EnvironmentStopped,
    UnderusedEnvironment,
)
from akros_policy import Catalog, Holding, Quota
from akros_readmodel import EnvironmentStatus, EnvironmentView
from akros_slack import forms

Block = dict[str, Any]
View = dict[str, Any]

# callback ids of the modals and action ids of the buttons; listeners are registered by these.
CREATE_MODAL = "akros_create"
SHRINK_MODAL = "akros_shrink"
DELETE_MODAL = "akros_delete"
PURGE = "purge_volume"
OPEN_CREATE = "akros_open_create"
DELETE_BUTTON = "akros_delete_environment"
OPEN_URL = "akros_open_url"
KEEP_BUTTON = "akros_keep"
SHRINK_BUTTON = "akros_shrink_environment"
STOP_BUTTON = "akros_stop_environment"
START_BUTTON = "akros_start_environment"
EXTEND_BUTTON = "akros_extend_environment"
WHY_PENDING_BUTTON = "akros_why_pending"

HELP = (
    "*/akros* manages your research environments:\n"
    "• `/akros create`: a form for a new environment (image, GPUs, CPU, memory, volume)\n"
    "• `/akros list`: your environments and their URLs\n"
    "• `/akros delete <name>`: delete one (its volume is kept unless you tick purge); "
    "admins: `/akros delete <user>/<name>`\n"
    "• `/akros stop <name>`: stop one; it keeps its volume, URL and name and holds no CPU, "
    "memory or GPUs until `/akros start <name>` starts it again (admins: `<user>/<name>`)\n"
    "• `/akros usage`: what you hold against your quota\n"
    "• `/akros help`: this text"
)
_STATUS_EMOJI = {
    EnvironmentStatus.PENDING: ":hourglass_flowing_sand:",
    EnvironmentStatus.READY: ":large_green_circle:",
    EnvironmentStatus.FAILED: ":red_circle:",
    EnvironmentStatus.DELETING: ":wastebasket:",
    EnvironmentStatus.STOPPING: ":double_vertical_bar:",
    EnvironmentStatus.STOPPED: ":double_vertical_bar:",
}


@dataclass(frozen=True)
class SlackMessage:
    """A message's fallback ``text`` (notifications, screen readers) and its ``blocks``."""

    text: str
    blocks: list[Block]


def _text(markdown: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": markdown}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _section(markdown: str) -> Block:
    return {"type": "section", "text": _text(markdown)}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": _plain(text), "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def _url_button(url: str, name: str) -> Block:
    # Slack still sends an action for a URL button; OPEN_URL's listener only acknowledges it.
    return {
        "type": "button",
        "text": _plain("Open"),
        "action_id": OPEN_URL,
        "value": name,
        "url": url,
    }


def _modal(callback_id: str, title: str, submit: str, blocks: list[Block], meta: str) -> View:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Cancel"),
        "private_metadata": meta,
        "blocks": blocks,
    }


def _text_input(block_id: str, label: str, initial: str | None, hint: str) -> Block:
    element: Block = {"type": "plain_text_input", "action_id": block_id}
    if initial is not None:
        element["initial_value"] = initial
    return {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
        "hint": _plain(hint),
    }


def _image_option(key: str, description: str) -> Block:
    label = f"{key}: {description}" if description else key
    return {"text": _plain(label[:75]), "value": key}


def environment_form_blocks(
    catalog: Catalog, form: forms.EnvironmentForm, *, with_name: bool
) -> list[Block]:
    options = [_image_option(key, image.description) for key, image in catalog.images.items()]
    image_select: Block = {"type": "static_select", "action_id": forms.IMAGE, "options": options}
    if form.image in catalog.images:
        image_select["initial_option"] = next(o for o in options if o["value"] == form.image)
    dedicated: Block = {
        "type": "checkboxes",
        "action_id": forms.DEDICATED,
        "options": [{"text": _plain("Pin whole cores (CPU must be whole)"), "value": "yes"}],
    }
    if form.dedicated_cores:
        dedicated["initial_options"] = dedicated["options"]
    blocks: list[Block] = []
    if with_name:
        blocks.append(_text_input(forms.NAME, "Name", form.name, "Lower-case letters, digits, '-'"))
    blocks += [
        {
            "type": "input",
            "block_id": forms.IMAGE,
            "label": _plain("Image"),
            "element": image_select,
        },
        {
            "type": "input",
            "block_id": forms.GPUS,
            "label": _plain("GPUs"),
            "element": {
                "type": "number_input",
                "action_id": forms.GPUS,
                "is_decimal_allowed": False,
                "min_value": "0",
                "initial_value": str(form.gpus),
            },
        },
        _text_input(forms.CPU, "CPU", form.cpu, "Cores, e.g. 4 or 500m"),
        _text_input(forms.MEMORY, "Memory", form.memory, "e.g. 16Gi"),
        {
            "type": "input",
            "block_id": forms.DEDICATED,
            "label": _plain("Dedicated cores"),
            "optional": True,
            "element": dedicated,
        },
        _text_input(forms.VOLUME, "Volume size", form.volume_size, "Keeps your work, e.g. 50Gi"),
    ]
    return blocks


def create_modal(catalog: Catalog, form: forms.EnvironmentForm | None = None) -> View:
    blocks = environment_form_blocks(catalog, form or forms.EnvironmentForm(), with_name=True)
    return _modal(CREATE_MODAL, "New environment", "Create", blocks, "")


def _target(name: str, owner: str | None) -> str:
    """A modal's private metadata: the environment it acts on, with its owner when that is
    not the person who opened it."""
    return json.dumps({"name": name, "owner": owner} if owner else {"name": name})


def shrink_modal(catalog: Catalog, form: forms.EnvironmentForm, owner: str | None = None) -> View:
    """The form prefilled with smaller resources; the name is fixed (it keeps its volume).
    ``owner`` when an admin shrinks someone else's environment."""
    name = form.name or ""
    whose = f"{owner}/" if owner else ""
    intro = _section(
        f"*{whose}{name}* will be recreated with these resources. Its volume is kept, so the "
        "work stays; what runs in it now stops."
    )
    blocks = [intro, *environment_form_blocks(catalog, form, with_name=False)]
    return _modal(SHRINK_MODAL, "Shrink environment", "Shrink", blocks, _target(name, owner))


def delete_modal(name: str, owner: str | None = None) -> View:
    """The confirmation; ``owner`` when an admin deletes someone else's environment."""
    whose = f"{owner}/" if owner else ""
    purge = {
        "type": "input",
        "block_id": PURGE,
        "optional": True,
        "label": _plain("Volume"),
        "element": {
            "type": "checkboxes",
            "action_id": PURGE,
            "options": [{"text": _plain("Also delete its volume, for good"), "value": "yes"}],
        },
    }
    blocks = [
        _section(f"Delete *{whose}{name}*? Its work volume is kept unless you tick the box."),
        purge,
    ]
    return _modal(DELETE_MODAL, "Delete environment", "Delete", blocks, _target(name, owner))


def help_message() -> SlackMessage:
    return SlackMessage(HELP, [_section(HELP)])


def notice(text: str) -> SlackMessage:
    """A one-line answer: a refusal, a confirmation."""
    return SlackMessage(text, [_section(text)])


def no_such_environment(name: str, owner: str | None = None) -> SlackMessage:
    """``owner`` when the name was someone else's."""
    whose = f"{owner} has" if owner else "You have"
    return notice(f"{whose} no environment named '{name}'.")


def _describe(view: EnvironmentView) -> str:
    extras = ", dedicated cores" if view.dedicated_cores else ""
    line = (
        f"{_STATUS_EMOJI[view.status]} *{view.name}* · {view.status.value} · "
        f"{view.resources.describe()}{extras} · {view.image}"
    )
    if view.url and view.status is EnvironmentStatus.READY:
        line += f"\n<{view.url}|{view.url}>"
    if view.reason and view.status in {EnvironmentStatus.FAILED, EnvironmentStatus.STOPPED}:
        line += f"\n{view.reason}"
    return line


def environments_message(views: Sequence[EnvironmentView]) -> SlackMessage:
    if not views:
        return notice("You have no environments. `/akros create` makes one.")
    lines = [_describe(view) for view in views]
    return SlackMessage(f"You have {len(views)} environment(s).", [_section(x) for x in lines])


def usage_message(holding: Holding, quota: Quota) -> SlackMessage:
    text = (
        f"You hold {holding.environments} of {quota.environments} environments and "
        f"{holding.resources.describe()} of {quota.resources.describe()}."
    )
    return notice(text)


def pending_message(action: str, name: str, detail: str) -> SlackMessage:
    """The message a request starts with; its outcome replaces it in place."""
    text = f":hourglass_flowing_sand: {action} *{name}*{detail}…"
    return SlackMessage(text, [_section(text)])


def progress_message(event: EnvironmentStarting, action: str = "Creating") -> SlackMessage:
    """A create's (or a start's: ``action`` "Starting") message while its environment starts:
    the stage, and what it waits for."""
    waiting = f" ({event.progress})" if event.progress else ""
    text = f":hourglass_flowing_sand: {action} *{event.name}*: {event.stage}{waiting}…"
    return SlackMessage(text, [_section(text)])


def refused_message(reason: str) -> SlackMessage:
    """A request the platform would not accept; nothing was queued."""
    return notice(f":no_entry: {reason}")


def ready_message(event: EnvironmentReady) -> SlackMessage:
    text = (
        f":white_check_mark: *{event.name}* is ready ({event.resources.describe()}): "
        f"<{event.url}|{event.url}>"
    )
    section = _section(text) | {"accessory": _url_button(event.url, event.name)}
    # The value names the owner: the message may be an admin's, about someone else's.
    stop = _button("Stop", STOP_BUTTON, f"{event.owner}/{event.name}")
    return SlackMessage(text, [section, {"type": "actions", "elements": [stop]}])


def failed_message(event: CommandFailed) -> SlackMessage:
    return notice(f":x: *{event.name or 'Your request'}* failed: {event.reason}")


def deleted_message(event: EnvironmentDeleted) -> SlackMessage:
    volume = "its volume is kept" if event.volume_kept else "its volume is gone too"
    return notice(f":wastebasket: *{event.name}* is deleted; {volume}.")


def stopped_message(event: EnvironmentStopped) -> SlackMessage:
    why = f" {event.reason}" if event.reason else ""
    text = (
        f":double_vertical_bar: *{event.name}* is stopped; its volume, URL and name are kept "
        f"and it holds no resources.{why}"
    )
    # The value names the owner: the message may be an admin's, about someone else's.
    start = _button("Start", START_BUTTON, f"{event.owner}/{event.name}", "primary")
    return SlackMessage(text, [_section(text), {"type": "actions", "elements": [start]}])


def expiring_message(event: EnvironmentExpiring) -> SlackMessage:
    hours = event.extend_by_s / 3600
    stops_at = event.stops_at or event.expires_at
    # Told late (an expiry set inside the warning's time, or the worker was down through
    # it), the owner still gets the whole warning time.
    when = (
        "when it expires"
        if stops_at <= event.expires_at
        else f"after the full notice (it expires at {event.expires_at:%Y-%m-%d %H:%M} UTC)"
    )
    text = (
        f":alarm_clock: Your environment *{event.name}* will be stopped at "
        f"{stops_at:%Y-%m-%d %H:%M} UTC, {when}; its volume is kept and "
        f"nothing is deleted. Extend it by {hours:g} h, or stop it now?"
    )
    buttons = [
        _button(f"Extend {hours:g} h", EXTEND_BUTTON, event.name, "primary"),
        _button("Stop now", STOP_BUTTON, event.name),
    ]
    return SlackMessage(
        text, [_section(text), {"type": "actions", "block_id": "expiring", "elements": buttons}]
    )


def extended_message(event: EnvironmentExtended) -> SlackMessage:
    return notice(
        f":calendar: *{event.name}* now expires at {event.expires_at:%Y-%m-%d %H:%M} UTC."
    )


def resized_message(event: EnvironmentResized) -> SlackMessage:
    return notice(
        f":straight_ruler: *{event.name}* will have {event.resources.describe()} when it "
        "starts again."
    )


def home_view(views: Sequence[EnvironmentView]) -> View:
    blocks: list[Block] = [
        {"type": "header", "text": _plain("Your environments")},
        {
            "type": "actions",
            "elements": [_button("New environment", OPEN_CREATE, "create", "primary")],
        },
        {"type": "divider"},
    ]
    if not views:
        blocks.append(_section("None yet. Press *New environment* or type `/akros create`."))
    for view in views:
        blocks.append(_section(_describe(view)))
        buttons: list[Block] = []
        if view.url and view.status is EnvironmentStatus.READY:
            buttons.append(_url_button(view.url, view.name))
        if view.status is EnvironmentStatus.READY:
            buttons.append(_button("Stop", STOP_BUTTON, view.name))
        if view.status is EnvironmentStatus.STOPPED:
            buttons.append(_button("Start", START_BUTTON, view.name, "primary"))
        if view.status is EnvironmentStatus.PENDING:
            buttons.append(_button("Why is it pending?", WHY_PENDING_BUTTON, view.name))
        if view.status is not EnvironmentStatus.DELETING:
            buttons.append(_button("Delete", DELETE_BUTTON, view.name, "danger"))
        if buttons:
            blocks.append({"type": "actions", "block_id": f"env:{view.name}", "elements": buttons})
    return {"type": "home", "blocks": blocks}


def why_pending_message(name: str, why: str | None) -> SlackMessage:
    """The answer to "Why is it pending?": what the cluster last said that explains the wait."""
    if why is None:
        return notice(f":white_check_mark: *{name}* is no longer pending.")
    return notice(f":hourglass_flowing_sand: *{name}* is pending: {why}.")


def home_notice(text: str) -> View:
    """The Home tab of someone it cannot show environments to, saying why."""
    return {"type": "home", "blocks": [_section(text)]}


def underused_message(event: UnderusedEnvironment) -> SlackMessage:
    used = f"{event.cpu_used_fraction:.0%} of its CPU"
    if event.gpu_utilisation is not None:
        used += f" and {event.gpu_utilisation:.0%} of its GPUs"
    text = (
        f":wave: Your environment *{event.name}* reserves {event.requested.describe()} but has "
        f"used about {used} since {event.since:%Y-%m-%d %H:%M} UTC. Others could use what it "
        "does not. Keep it, shrink it, or delete it?"
    )
    buttons = [
        _button("Keep", KEEP_BUTTON, event.name),
        _button("Shrink", SHRINK_BUTTON, event.name, "primary"),
        _button("Delete", DELETE_BUTTON, event.name, "danger"),
    ]
    return SlackMessage(
        text, [_section(text), {"type": "actions", "block_id": "underused", "elements": buttons}]
    )


def kept_message(name: str, hours: float) -> SlackMessage:
    return notice(f":ok_hand: Keeping *{name}*: no reminders about it for {hours:g} hours.")


def form_errors_response(errors: dict[str, str]) -> dict[str, Any]:
    """The ack that keeps a modal open and shows each message under its field."""
    return {"response_action": "errors", "errors": errors}
