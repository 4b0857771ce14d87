"""Who may take which Slack action: one table and one decision, pure, no I/O.

Every listener the app registers answers one or more of the actions below. A Slack user who
is not linked to a platform user (anonymous) gets the help and is told to ask an admin, never
an effect. A linked user acts on their own environments; where an action names someone else's
environment (``/akros delete bob/lab``, ``/akros stop bob/lab``, a button or form carrying
another owner), the rule is ``akros_policy.may_act_on``, the one the gateway and the intake
apply: admins on anyone's, researchers on their own only."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Final

from akros_msgs import Actor
from akros_policy import may_act_on
from akros_slack import blocks
from akros_slack.commands import Verb

NOT_LINKED = (
    "Your Slack account is not linked to an Akros user yet; ask an admin to add your Slack "
    "id ({slack_user}) to the app's user mapping."
)
NOT_YOURS = (
    "You may not act on {owner}'s environments: researchers act on their own only; ask "
    "{owner} or an admin."
)


class SlackAction(StrEnum):
    HELP = "/akros help (and any text that is not a subcommand)"
    CREATE = "/akros create"
    LIST = "/akros list"
    USAGE = "/akros usage"
    DELETE = "/akros delete [owner/]name"
    STOP = "/akros stop [owner/]name"
    START = "/akros start [owner/]name"
    CREATE_SUBMITTED = "create form submitted"
    SHRINK_SUBMITTED = "shrink form submitted"
    DELETE_SUBMITTED = "delete confirmation submitted"
    NEW_PRESSED = "New environment pressed (Home)"
    DELETE_PRESSED = "Delete pressed (Home, under-use DM)"
    OPEN_PRESSED = "Open pressed (Home, ready message)"
    KEEP_PRESSED = "Keep pressed (under-use DM)"
    SHRINK_PRESSED = "Shrink pressed (under-use DM)"
    STOP_PRESSED = "Stop pressed (Home, ready message)"
    START_PRESSED = "Start pressed (Home, stopped message)"
    EXTEND_PRESSED = "Extend pressed (expiry DM)"
    WHY_PENDING_PRESSED = "Why is it pending? pressed (Home)"
    HOME_OPENED = "Home tab opened"


class Who(Enum):
    ANYONE = "anyone, linked or not"
    """Only actions that change nothing: the help, an acknowledgement."""
    LINKED = "a linked user, on environments whose owner they may act on"
    """Their own; someone else's only where ``may_act_on`` allows (admins)."""


@dataclass(frozen=True)
class Rule:
    listener: str
    """The bolt listener that answers the action: ``<kind> <id>``, as registered."""
    who: Who


def _command(name: str) -> str:
    return f"command {name}"


def _view(callback_id: str) -> str:
    return f"view {callback_id}"


def _action(action_id: str) -> str:
    return f"action {action_id}"


SLASH = _command("/akros")
POLICY: Final[Mapping[SlackAction, Rule]] = {
    SlackAction.HELP: Rule(SLASH, Who.ANYONE),
    SlackAction.CREATE: Rule(SLASH, Who.LINKED),
    SlackAction.LIST: Rule(SLASH, Who.LINKED),
    SlackAction.USAGE: Rule(SLASH, Who.LINKED),
    SlackAction.DELETE: Rule(SLASH, Who.LINKED),
    SlackAction.STOP: Rule(SLASH, Who.LINKED),
    SlackAction.START: Rule(SLASH, Who.LINKED),
    SlackAction.CREATE_SUBMITTED: Rule(_view(blocks.CREATE_MODAL), Who.LINKED),
    SlackAction.SHRINK_SUBMITTED: Rule(_view(blocks.SHRINK_MODAL), Who.LINKED),
    SlackAction.DELETE_SUBMITTED: Rule(_view(blocks.DELETE_MODAL), Who.LINKED),
    SlackAction.NEW_PRESSED: Rule(_action(blocks.OPEN_CREATE), Who.LINKED),
    SlackAction.DELETE_PRESSED: Rule(_action(blocks.DELETE_BUTTON), Who.LINKED),
    SlackAction.OPEN_PRESSED: Rule(_action(blocks.OPEN_URL), Who.ANYONE),
    SlackAction.KEEP_PRESSED: Rule(_action(blocks.KEEP_BUTTON), Who.LINKED),
    SlackAction.SHRINK_PRESSED: Rule(_action(blocks.SHRINK_BUTTON), Who.LINKED),
    SlackAction.STOP_PRESSED: Rule(_action(blocks.STOP_BUTTON), Who.LINKED),
    SlackAction.START_PRESSED: Rule(_action(blocks.START_BUTTON), Who.LINKED),
    SlackAction.EXTEND_PRESSED: Rule(_action(blocks.EXTEND_BUTTON), Who.LINKED),
    SlackAction.WHY_PENDING_PRESSED: Rule(_action(blocks.WHY_PENDING_BUTTON), Who.LINKED),
    SlackAction.HOME_OPENED: Rule("event app_home_opened", Who.LINKED),
}
COMMAND_ACTIONS: Final[Mapping[Verb, SlackAction]] = {
    Verb.HELP: SlackAction.HELP,
    Verb.CREATE: SlackAction.CREATE,
    Verb.LIST: SlackAction.LIST,
    Verb.USAGE: SlackAction.USAGE,
    Verb.DELETE: SlackAction.DELETE,
    Verb.STOP: SlackAction.STOP,
    Verb.START: SlackAction.START,
}


def refusal(
    action: SlackAction, slack_user: str, actor: Actor | None, owner: str | None = None
) -> str | None:
    """Why ``slack_user`` may not take ``action``, in words for them; None when they may.

    ``actor`` is who they are on the platform (None: not linked); ``owner`` whose environment
    the action names (None: their own, or none at all).
    """
    if POLICY[action].who is Who.ANYONE:
        return None
    if actor is None:
        return NOT_LINKED.format(slack_user=slack_user)
    if owner is not None and not may_act_on(actor, owner):
        return NOT_YOURS.format(owner=owner)
    return None
