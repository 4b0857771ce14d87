"""The Slack app's authorization matrix: every action it answers, taken by an anonymous Slack
user (not linked to a platform user), a researcher on their own environment and on someone
else's, and an admin on someone else's.

The actions come from the app itself: what ``Listeners.register`` registers with bolt must be
exactly what ``akros_slack.access.POLICY`` classifies, and every subcommand must be classified
too, so a new listener or subcommand fails here until someone decides who may use it and
says below what each kind of user gets.

Each cell calls the listener as bolt would (bolt's own ack, real Redis, the Web API stand-in);
a refused cell must acknowledge, tell the user why (in the acknowledgement, the modal's
errors, a message from the app or their Home tab), make no other Slack call, publish nothing
and leave every Redis key as it was. A few cells run again end to end: the platform with the
Slack app in HTTP mode, requests signed with a real HMAC, forged payloads included.
"""

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis
from slack_bolt.async_app import AsyncApp

from akros_devtools.slack_standin import Call, SlackStandIn, create_form_values
from akros_msgs import (
    CreateEnvironment,
    DeleteEnvironment,
    ExtendEnvironment,
    Message,
    ResizeEnvironment,
    StartEnvironment,
    StopEnvironment,
)
from akros_policy import DEFAULT_CATALOG
from akros_policy.naming import environment_object_name
from akros_readmodel import EnvironmentStatus, underuse_exemption_key
from akros_slack import blocks, forms
from akros_slack.access import COMMAND_ACTIONS, NOT_LINKED, NOT_YOURS, POLICY, SlackAction, Who
from akros_slack.commands import Verb
from akros_slack.frontdoor import NO_CLUSTER, FrontDoor
from akros_slack.listeners import Listeners
from tests.e2e.conftest import SlackRun, running_slack
from tests.gateway.helpers import published_commands
from tests.slack.conftest import Ack, put_environment, respond_to, slash_command

ANONYMOUS, RESEARCHER, OTHER, ADMIN = "USTRANGER", "UALICE", "UBOB", "UADMIN"
NAME = "lab"


@dataclass(frozen=True)
class Cell:
    """One user taking one action, on an environment named ``target`` where the action names
    one (``lab``: their own, as the app's own buttons name it; ``bob/lab``: bob's)."""

    who: str
    slack_user: str
    user: str | None
    """The platform user they are; None for anonymous."""
    target: str

    @property
    def named_owner(self) -> str | None:
        owner, _, _ = self.target.rpartition("/")
        return owner or None

    @property
    def me(self) -> str:
        """The platform user, where an action allowed them acts on their own things."""
        assert self.user is not None
        return self.user

    @property
    def owner(self) -> str:
        """Whose environment an allowed action naming one affects."""
        return self.named_owner or self.me


ANONYMOUS_CELL = Cell("anonymous", ANONYMOUS, None, f"bob/{NAME}")
OWN = Cell("researcher, own", RESEARCHER, "alice", NAME)
SOMEONE_ELSES = Cell("researcher, someone else's", RESEARCHER, "alice", f"bob/{NAME}")
AS_ADMIN = Cell("admin, someone else's", ADMIN, "root", f"bob/{NAME}")
CELLS = (ANONYMOUS_CELL, OWN, SOMEONE_ELSES, AS_ADMIN)
# Everyone has a "lab"; bob has more, so that answering with his for someone else's shows.
ENVIRONMENTS = (("alice", NAME), ("bob", NAME), ("bob", "data"), ("root", NAME))

Y, N, NA = "allowed", "refused", None
# What each kind of user gets, written here independently of the app's table. NA: the action
# names no environment, so nobody can point it at someone else's; in the admin's column such
# an action acts on the admin's own things.
EXPECTED: dict[SlackAction, tuple[str | None, str | None, str | None, str | None]] = {
    #                              anonymous  own  else's  admin
    SlackAction.HELP: (Y, Y, NA, Y),
    SlackAction.CREATE: (N, Y, NA, Y),
    SlackAction.LIST: (N, Y, NA, Y),
    SlackAction.USAGE: (N, Y, NA, Y),
    SlackAction.DELETE: (N, Y, N, Y),
    SlackAction.STOP: (N, Y, N, Y),
    SlackAction.START: (N, Y, N, Y),
    SlackAction.CREATE_SUBMITTED: (N, Y, NA, Y),
    SlackAction.SHRINK_SUBMITTED: (N, Y, N, Y),
    SlackAction.DELETE_SUBMITTED: (N, Y, N, Y),
    SlackAction.NEW_PRESSED: (N, Y, NA, Y),
    SlackAction.DELETE_PRESSED: (N, Y, N, Y),
    SlackAction.OPEN_PRESSED: (Y, Y, Y, Y),  # only acknowledged: Slack opens the URL itself
    SlackAction.KEEP_PRESSED: (N, Y, N, Y),
    SlackAction.SHRINK_PRESSED: (N, Y, N, Y),
    SlackAction.STOP_PRESSED: (N, Y, N, Y),
    SlackAction.START_PRESSED: (N, Y, N, Y),
    SlackAction.EXTEND_PRESSED: (N, Y, N, Y),
    SlackAction.WHY_PENDING_PRESSED: (N, Y, N, Y),
    SlackAction.HOME_OPENED: (N, Y, NA, Y),
}
# Everyone's environment expires within the hour, for an extension to have an expiry to move
# (within the platform's bound: an extension never reaches more than a day ahead).
EXPIRES_AT = datetime.now(UTC) + timedelta(hours=1)
# The status everyone's environment has before the action: ready, or stopped for a start, or
# pending for asking why.
STARTING_FROM = {SlackAction.START, SlackAction.START_PRESSED}
PENDING_FOR = {SlackAction.WHY_PENDING_PRESSED}


class _Registrations:
    """Stands in for bolt's app in ``Listeners.register``, noting each listener: any other
    kind of registration fails with AttributeError."""

    def __init__(self) -> None:
        self.listeners: set[str] = set()

    def _note(self, kind: str, key: str) -> Callable[[Any], Any]:
        self.listeners.add(f"{kind} {key}")
        return lambda listener: listener

    def command(self, key: str) -> Callable[[Any], Any]:
        return self._note("command", key)

    def view(self, key: str) -> Callable[[Any], Any]:
        return self._note("view", key)

    def action(self, key: str) -> Callable[[Any], Any]:
        return self._note("action", key)

    def event(self, key: str) -> Callable[[Any], Any]:
        return self._note("event", key)


def _registered(door: FrontDoor) -> set[str]:
    registrations = _Registrations()
    Listeners(door, frozenset()).register(cast(AsyncApp, registrations))
    return registrations.listeners


# -- driving the listeners --------------------------------------------------------------------


@dataclass
class Run:
    door: FrontDoor
    standin: SlackStandIn
    redis_url: str
    ack: Ack

    @property
    def listeners(self) -> Listeners:
        return Listeners(self.door, frozenset())

    def commands(self) -> list[Message]:
        return published_commands(self.redis_url)

    async def snapshot(self) -> dict[Any, Any]:
        """Every key and its serialized value: equal snapshots, nothing written."""
        redis_ = self.door.read_model.redis
        return {key: await redis_.dump(key) async for key in redis_.scan_iter()}


def _view(view: dict[str, Any], view_id: str, values: dict[str, Any]) -> dict[str, Any]:
    return {**view, "id": view_id, "state": {"values": values}}


def _body(cell: Cell) -> dict[str, Any]:
    """A button press's body: who, where (their conversation with the app), a trigger id."""
    container = {"type": "message", "channel_id": f"D{cell.slack_user}", "message_ts": "9.0001"}
    return {"user": {"id": cell.slack_user}, "trigger_id": "t-1", "container": container}


async def _submit_create(run: Run, cell: Cell) -> None:
    view = _view(blocks.create_modal(DEFAULT_CATALOG), "VCREATE", create_form_values("fresh"))
    await run.listeners.on_create_submitted(run.ack, _body(cell), view)


async def _submit_shrink(run: Run, cell: Cell) -> None:
    form = forms.EnvironmentForm(name=NAME, image="pytorch")
    modal = blocks.shrink_modal(DEFAULT_CATALOG, form, cell.named_owner)
    values = create_form_values(None, cpu="1", memory="4Gi")
    await run.listeners.on_shrink_submitted(run.ack, _body(cell), _view(modal, "VSHRINK", values))


async def _submit_delete(run: Run, cell: Cell) -> None:
    view = _view(blocks.delete_modal(NAME, cell.named_owner), "VDELETE", {})
    await run.listeners.on_delete_submitted(run.ack, _body(cell), view)


def _press(on: str) -> Callable[[Run, Cell], Awaitable[None]]:
    async def press(run: Run, cell: Cell) -> None:
        listener = getattr(run.listeners, on)
        await listener(run.ack, _body(cell), {"value": cell.target})

    return press


async def _press_new(run: Run, cell: Cell) -> None:
    await run.listeners.on_open_create(run.ack, _body(cell))


async def _press_open(run: Run, cell: Cell) -> None:
    await run.listeners.on_open_url(run.ack)


async def _open_home(run: Run, cell: Cell) -> None:
    await run.listeners.on_home_opened({"user": cell.slack_user, "tab": "home"})


def _typed(text: str) -> Callable[[Run, Cell], Awaitable[None]]:
    async def typed(run: Run, cell: Cell) -> None:
        command = slash_command(cell.slack_user, text.format(target=cell.target))
        await run.listeners.on_akros(run.ack, command, respond_to(run.standin))

    return typed


DRIVE: dict[SlackAction, Callable[[Run, Cell], Awaitable[None]]] = {
    SlackAction.HELP: _typed("help"),
    SlackAction.CREATE: _typed("create"),
    SlackAction.LIST: _typed("list"),
    SlackAction.USAGE: _typed("usage"),
    SlackAction.DELETE: _typed("delete {target}"),
    SlackAction.STOP: _typed("stop {target}"),
    SlackAction.START: _typed("start {target}"),
    SlackAction.CREATE_SUBMITTED: _submit_create,
    SlackAction.SHRINK_SUBMITTED: _submit_shrink,
    SlackAction.DELETE_SUBMITTED: _submit_delete,
    SlackAction.NEW_PRESSED: _press_new,
    SlackAction.DELETE_PRESSED: _press("on_delete_pressed"),
    SlackAction.OPEN_PRESSED: _press_open,
    SlackAction.KEEP_PRESSED: _press("on_keep_pressed"),
    SlackAction.SHRINK_PRESSED: _press("on_shrink_pressed"),
    SlackAction.STOP_PRESSED: _press("on_stop_pressed"),
    SlackAction.START_PRESSED: _press("on_start_pressed"),
    SlackAction.EXTEND_PRESSED: _press("on_extend_pressed"),
    SlackAction.WHY_PENDING_PRESSED: _press("on_why_pending_pressed"),
    SlackAction.HOME_OPENED: _open_home,
}

# -- what an allowed action does ----------------------------------------------------------


async def _answered_with_help(run: Run, cell: Cell) -> None:
    assert json.loads(run.ack.body)["text"] == blocks.HELP
    assert run.standin.methods() == []


async def _opened(run: Run, view: dict[str, Any]) -> None:
    assert run.standin.methods() == ["views.open"]
    assert run.standin.last("views.open").args["view"] == view


async def _opened_create_form(run: Run, cell: Cell) -> None:
    await _opened(run, blocks.create_modal(DEFAULT_CATALOG))


async def _opened_delete_confirmation(run: Run, cell: Cell) -> None:
    whose = None if cell.owner == cell.user else cell.owner
    await _opened(run, blocks.delete_modal(NAME, whose))


async def _opened_shrink_form(run: Run, cell: Cell) -> None:
    assert run.standin.methods() == ["views.open"]
    view = run.standin.last("views.open").args["view"]
    assert view["callback_id"] == blocks.SHRINK_MODAL
    metadata = {"name": NAME} if cell.owner == cell.user else {"name": NAME, "owner": cell.owner}
    assert json.loads(view["private_metadata"]) == metadata


async def _listed_own(run: Run, cell: Cell) -> None:
    answer = run.standin.last("response_url").args
    own = blocks.environments_message(await run.door.read_model.environments(cell.me))
    assert (answer["blocks"], answer["response_type"]) == (own.blocks, "ephemeral")


async def _usage_answered(run: Run, cell: Cell) -> None:
    holding = await run.door.read_model.holding(cell.me)
    own = blocks.usage_message(holding, run.door.intake.quotas.for_user(cell.me))
    assert run.standin.last("response_url").args["text"] == own.text


def _queued(run: Run) -> Message:
    (command,) = run.commands()
    return command


async def _create_queued(run: Run, cell: Cell) -> None:
    command = _queued(run)
    assert isinstance(command, CreateEnvironment)
    assert (command.owner, command.name, command.actor.user_id) == (cell.me, "fresh", cell.me)


OwnersCommand = (
    type[DeleteEnvironment]
    | type[StopEnvironment]
    | type[StartEnvironment]
    | type[ResizeEnvironment]
)


def _queued_for_owner(
    kind: OwnersCommand, status: EnvironmentStatus
) -> Callable[[Run, Cell], Awaitable[None]]:
    """The effect of a command on the owner's environment: one ``kind`` queued, by the user,
    and the environment's view ``status`` at once."""

    async def queued(run: Run, cell: Cell) -> None:
        command = _queued(run)
        assert isinstance(command, kind)
        assert (command.owner, command.name, command.actor.user_id) == (
            cell.owner,
            NAME,
            cell.user,
        )
        view = await run.door.read_model.environment(cell.owner, NAME)
        assert view is not None
        assert view.status is status

    return queued


_delete_queued = _queued_for_owner(DeleteEnvironment, EnvironmentStatus.DELETING)
_stop_queued = _queued_for_owner(StopEnvironment, EnvironmentStatus.STOPPING)
_start_queued = _queued_for_owner(StartEnvironment, EnvironmentStatus.PENDING)
_resize_queued = _queued_for_owner(ResizeEnvironment, EnvironmentStatus.PENDING)


async def _shrink_started(run: Run, cell: Cell) -> None:
    await _resize_queued(run, cell)
    resize = _queued(run)
    assert isinstance(resize, ResizeEnvironment)
    assert resize.resources.cpu_millis == 1000


async def _asked_the_cluster(run: Run, cell: Cell) -> None:
    # The door of this tier has no cluster: that the app says so shows the request got past
    # every check to the cluster read, for the named owner's pending environment.
    (told,) = run.standin.made()
    assert told.method == "chat.postMessage"
    assert (told.args["channel"], told.args["text"]) == (cell.slack_user, NO_CLUSTER)
    assert run.commands() == []


async def _extend_queued(run: Run, cell: Cell) -> None:
    extend = _queued(run)
    assert isinstance(extend, ExtendEnvironment)
    assert (extend.owner, extend.name, extend.actor.user_id) == (cell.owner, NAME, cell.user)
    assert extend.expires_at > EXPIRES_AT


async def _kept(run: Run, cell: Cell) -> None:
    assert await run.door.read_model.underuse_exempt(cell.owner, NAME)
    assert run.standin.last("chat.update").args["text"].startswith(f":ok_hand: Keeping *{NAME}*")


async def _home_published(run: Run, cell: Cell) -> None:
    published = run.standin.last("views.publish").args
    own = await run.door.read_model.environments(cell.me)
    assert published == {"user_id": cell.slack_user, "view": blocks.home_view(own)}


async def _only_acknowledged(run: Run, cell: Cell) -> None:
    assert (run.ack.body, run.standin.methods(), run.commands()) == ("", [], [])


EFFECT: dict[SlackAction, Callable[[Run, Cell], Awaitable[None]]] = {
    SlackAction.HELP: _answered_with_help,
    SlackAction.CREATE: _opened_create_form,
    SlackAction.LIST: _listed_own,
    SlackAction.USAGE: _usage_answered,
    SlackAction.DELETE: _opened_delete_confirmation,
    SlackAction.STOP: _stop_queued,
    SlackAction.START: _start_queued,
    SlackAction.CREATE_SUBMITTED: _create_queued,
    SlackAction.SHRINK_SUBMITTED: _shrink_started,
    SlackAction.DELETE_SUBMITTED: _delete_queued,
    SlackAction.NEW_PRESSED: _opened_create_form,
    SlackAction.DELETE_PRESSED: _opened_delete_confirmation,
    SlackAction.OPEN_PRESSED: _only_acknowledged,
    SlackAction.KEEP_PRESSED: _kept,
    SlackAction.SHRINK_PRESSED: _opened_shrink_form,
    SlackAction.STOP_PRESSED: _stop_queued,
    SlackAction.START_PRESSED: _start_queued,
    SlackAction.EXTEND_PRESSED: _extend_queued,
    SlackAction.WHY_PENDING_PRESSED: _asked_the_cluster,
    SlackAction.HOME_OPENED: _home_published,
}

# -- how a refusal reaches the user ---------------------------------------------------------


def _refusal_shown(run: Run, action: SlackAction, cell: Cell, reason: str) -> None:
    """The reason, where the user sees it, and no other Slack call."""
    listener = POLICY[action].listener
    if listener.startswith("command "):
        assert run.standin.methods() == []
        assert run.ack.body == reason
    elif listener.startswith("view "):
        assert run.standin.methods() == []
        (shown,) = json.loads(run.ack.body)["errors"].values()
        assert shown == reason
    elif listener.startswith("action "):
        assert run.ack.body == ""  # acknowledged at once, the answer follows
        (told,) = run.standin.made()
        assert told.method == "chat.postMessage"
        assert (told.args["channel"], told.args["text"]) == (cell.slack_user, reason)
    else:
        assert run.standin.methods() == ["views.publish"]
        assert run.standin.last("views.publish").args["view"] == blocks.home_notice(reason)


def _reason(cell: Cell) -> str:
    if cell.user is None:
        reason = NOT_LINKED.format(slack_user=cell.slack_user)
        assert "ask an admin" in reason
    else:
        reason = NOT_YOURS.format(owner=cell.named_owner)
        assert "bob's environments" in reason
    return reason


# -- the matrix -------------------------------------------------------------------------------


def test_every_action_the_app_registers_is_classified(door: FrontDoor) -> None:
    assert _registered(door) == {rule.listener for rule in POLICY.values()}
    assert set(COMMAND_ACTIONS) == set(Verb)
    assert set(COMMAND_ACTIONS.values()) == {
        action for action, rule in POLICY.items() if rule.listener == "command /akros"
    }
    assert set(EXPECTED) == set(POLICY) == set(DRIVE) == set(EFFECT) == set(SlackAction)


def test_the_app_opens_to_anonymous_users_exactly_what_the_matrix_expects() -> None:
    open_to_anyone = {action for action, rule in POLICY.items() if rule.who is Who.ANYONE}
    assert open_to_anyone == {action for action, row in EXPECTED.items() if row[0] == Y}


MATRIX = [
    pytest.param(action, cell, outcome, id=f"{action.name}-{cell.who}")
    for action, row in EXPECTED.items()
    for cell, outcome in zip(CELLS, row, strict=True)
    if outcome is not NA
]


@pytest.mark.parametrize(("action", "cell", "outcome"), MATRIX)
async def test_slack_authorization_matrix(
    door: FrontDoor,
    standin: SlackStandIn,
    redis_url: str,
    action: SlackAction,
    cell: Cell,
    outcome: str,
) -> None:
    status = EnvironmentStatus.STOPPED if action in STARTING_FROM else EnvironmentStatus.READY
    if action in PENDING_FOR:
        status = EnvironmentStatus.PENDING
    for owner, name in ENVIRONMENTS:
        await put_environment(door, owner, name, status, expires_at=EXPIRES_AT)
    run = Run(door, standin, redis_url, Ack(standin))
    before = await run.snapshot()

    await DRIVE[action](run, cell)

    if action is not SlackAction.HOME_OPENED:  # an event: bolt acknowledges it itself
        assert run.ack.slack_calls_before == [], "acknowledged after calling Slack"
    if outcome == Y:
        await EFFECT[action](run, cell)
    else:
        _refusal_shown(run, action, cell, _reason(cell))
        assert run.commands() == []
        assert await run.snapshot() == before


# -- end to end: HTTP mode, signed requests ---------------------------------------------------


def _has(method: str) -> Callable[[list[Call]], bool]:
    return lambda calls: any(c.method == method for c in calls)


def _published(slack: SlackRun) -> list[Message]:
    return published_commands(slack.platform.redis.url)


def _exempt(slack: SlackRun, owner: str) -> bool:
    connection = redis.Redis.from_url(slack.platform.redis.url)
    try:
        return bool(connection.exists(underuse_exemption_key(owner, NAME)))
    finally:
        connection.close()


@pytest.fixture(scope="module")
def slack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackRun]:
    users = {RESEARCHER: "alice", OTHER: "bob", ADMIN: "root"}
    runs = running_slack(tmp_path_factory.mktemp("slack-authz"), users, frozenset({ADMIN}))
    try:
        run = next(runs)
        outcome = [c for c in run.create_environment(OTHER, NAME) if c.method == "chat.update"]
        assert outcome[-1].args["text"].startswith(f":white_check_mark: *{NAME}* is ready")
        yield run
    finally:
        runs.close()  # stops the platform


@pytest.fixture
def signed(slack: SlackRun) -> SlackRun:
    """The platform with bob's environment, after every Slack call before the test."""
    slack.slack.settle()
    slack.slack.clear()
    return slack


CONTAINER = {"type": "message", "channel_id": "DAPP", "message_ts": "9.000100"}


def test_signed_anonymous_requests_get_help_or_the_not_linked_answer_and_change_nothing(
    signed: SlackRun,
) -> None:
    published = _published(signed)
    for text in ("help", "frobnicate"):
        answer = signed.command(ANONYMOUS, text)
        assert (answer.status_code, answer.json()["text"]) == (200, blocks.HELP)
    not_linked = NOT_LINKED.format(slack_user=ANONYMOUS)
    for text in ("create", "list", f"delete bob/{NAME}"):
        answer = signed.command(ANONYMOUS, text)
        assert (answer.status_code, answer.text) == (200, not_linked)
    forged = blocks.delete_modal(NAME, "bob")
    answer = signed.submit(ANONYMOUS, forged, "VFORGED0", {})
    assert answer.json() == {"response_action": "errors", "errors": {blocks.PURGE: not_linked}}

    answer = signed.press(ANONYMOUS, blocks.KEEP_BUTTON, f"bob/{NAME}", CONTAINER)
    assert (answer.status_code, answer.text) == (200, "")
    signed.slack.wait_for(_has("chat.postMessage"))
    signed.slack.settle()
    assert [(c.method, c.args["channel"], c.args["text"]) for c in signed.slack.made()] == [
        ("chat.postMessage", ANONYMOUS, not_linked)
    ]
    assert _published(signed) == published
    assert not _exempt(signed, "bob")


def test_signed_and_forged_requests_for_someone_elses_environment_are_refused(
    signed: SlackRun,
) -> None:
    published = _published(signed)
    not_yours = NOT_YOURS.format(owner="bob")
    answer = signed.command(RESEARCHER, f"delete bob/{NAME}")
    assert (answer.status_code, answer.text) == (200, not_yours)
    # What Slack itself never sends: a modal and buttons naming bob's environment.
    answer = signed.submit(RESEARCHER, blocks.delete_modal(NAME, "bob"), "VFORGED1", {})
    assert answer.json() == {"response_action": "errors", "errors": {blocks.PURGE: not_yours}}
    form = forms.EnvironmentForm(name=NAME, image="pytorch")
    shrink = blocks.shrink_modal(DEFAULT_CATALOG, form, "bob")
    answer = signed.submit(RESEARCHER, shrink, "VFORGED2", create_form_values(None, cpu="1"))
    assert answer.json() == {"response_action": "errors", "errors": {forms.IMAGE: not_yours}}
    buttons = (
        blocks.KEEP_BUTTON,
        blocks.SHRINK_BUTTON,
        blocks.DELETE_BUTTON,
        blocks.STOP_BUTTON,
        blocks.START_BUTTON,
    )
    for button in buttons:
        answer = signed.press(RESEARCHER, button, f"bob/{NAME}", CONTAINER)
        assert (answer.status_code, answer.text) == (200, "")
    answer = signed.command(RESEARCHER, f"stop bob/{NAME}")
    assert (answer.status_code, answer.text) == (200, not_yours)

    signed.slack.wait_for(
        lambda calls: sum(c.method == "chat.postMessage" for c in calls) >= len(buttons)
    )
    signed.slack.settle()
    assert [(c.method, c.args["channel"], c.args["text"]) for c in signed.slack.made()] == [
        ("chat.postMessage", RESEARCHER, not_yours)
    ] * len(buttons)
    assert _published(signed) == published
    assert not _exempt(signed, "bob")
    assert environment_object_name("bob", NAME) in signed.deployment_names()


def test_a_signed_admin_deletes_someone_elses_environment(signed: SlackRun) -> None:
    published = len(_published(signed))
    answer = signed.command(ADMIN, f"delete bob/{NAME}")
    assert (answer.status_code, answer.text) == (200, "")
    opened = signed.slack.wait_for(_has("views.open"))[0]
    assert opened.args["view"] == blocks.delete_modal(NAME, "bob")

    answer = signed.submit(ADMIN, opened.args["view"], "VADMINDELETE", {})
    assert (answer.status_code, answer.text) == (200, "")
    calls = signed.slack.wait_for(_has("chat.update"))
    posted, deleted = [c for c in calls if c.method in {"chat.postMessage", "chat.update"}]
    assert (posted.args["channel"], posted.args["text"]) == (
        ADMIN,
        f":hourglass_flowing_sand: Deleting *{NAME}*…",
    )
    assert deleted.args["text"] == f":wastebasket: *{NAME}* is deleted; its volume is kept."
    commands = _published(signed)
    assert len(commands) == published + 1
    assert isinstance(commands[-1], DeleteEnvironment)
    assert (commands[-1].owner, commands[-1].actor.user_id) == ("bob", "root")
    assert environment_object_name("bob", NAME) not in signed.deployment_names()
