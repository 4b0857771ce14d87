"""Bolt listeners: each acknowledges first (Slack's 3-second rule), then hands the work to the
front door. Registered here, apart from the logic, as in bolt-python's starter. Whether the
Slack user may take the action at all is ``access.refusal``'s decision, asked before anything
else is done; a refusal is answered and changes nothing."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from akros_msgs import (
    Actor,
    CreateEnvironment,
    DeleteEnvironment,
    StartEnvironment,
    StopEnvironment,
)
from akros_slack import blocks, forms
from akros_slack.access import COMMAND_ACTIONS, NOT_LINKED, SlackAction, refusal
from akros_slack.commands import Target, Verb, parse_command, parse_target, target_of
from akros_slack.frontdoor import FrontDoor
from akros_slack.identity import channel_allowed
from akros_slack.store import MessageRef

Body = dict[str, Any]
Refuse = Callable[[str], Awaitable[Any]]
Permitted = tuple[Actor, str, str]
"""Who acts, on whose environment, named what."""

CHANNEL_REFUSED = "/akros is not available in this channel; use it in {channels}."
# Where a modal shows why its submission is refused: its first input.
REFUSAL_FIELD = {
    blocks.CREATE_MODAL: forms.NAME,
    blocks.SHRINK_MODAL: forms.IMAGE,
    blocks.DELETE_MODAL: blocks.PURGE,
}


def _request_id(view: Body, step: str = "") -> str:
    """Derived from the modal's id, so a submission delivered twice (a Socket Mode reconnect,
    a retry) is recognised as the same request instead of creating a second environment."""
    return f"slack:{view['id']}{step}"


def _interaction_id(payload: Body) -> str:
    """A slash command's or a button press's request id, from its ``trigger_id`` (one per
    interaction), so the same interaction delivered twice is one request."""
    return f"slack:{payload['trigger_id']}"


def _ticked(view: Body, block_id: str) -> bool:
    state = view["state"]["values"].get(block_id, {}).get(block_id) or {}
    return bool(state.get("selected_options"))


def _modal_target(view: Body) -> Target | str:
    """The environment a delete or shrink modal was opened for (its metadata, as
    ``blocks`` wrote it; anything else names no environment)."""
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        metadata = {}
    owner = metadata.get("owner")
    return target_of(str(metadata.get("name", "")), str(owner) if owner else None)


def _whose(owner: str | None, actor: Actor) -> str | None:
    """The owner to name to the user: None for their own environment."""
    return None if owner == actor.user_id else owner


@dataclass(frozen=True)
class Listeners:
    door: FrontDoor
    allowed_channels: frozenset[str]

    def register(self, app: AsyncApp) -> None:
        app.command("/akros")(self.on_akros)
        app.view(blocks.CREATE_MODAL)(self.on_create_submitted)
        app.view(blocks.SHRINK_MODAL)(self.on_shrink_submitted)
        app.view(blocks.DELETE_MODAL)(self.on_delete_submitted)
        app.action(blocks.OPEN_CREATE)(self.on_open_create)
        app.action(blocks.DELETE_BUTTON)(self.on_delete_pressed)
        app.action(blocks.OPEN_URL)(self.on_open_url)
        app.action(blocks.KEEP_BUTTON)(self.on_keep_pressed)
        app.action(blocks.SHRINK_BUTTON)(self.on_shrink_pressed)
        app.action(blocks.STOP_BUTTON)(self.on_stop_pressed)
        app.action(blocks.START_BUTTON)(self.on_start_pressed)
        app.action(blocks.EXTEND_BUTTON)(self.on_extend_pressed)
        app.action(blocks.WHY_PENDING_BUTTON)(self.on_why_pending_pressed)
        app.event("app_home_opened")(self.on_home_opened)

    async def _permitted(
        self, action: SlackAction, slack_user: str, refuse: Refuse, owner: str | None = None
    ) -> Actor | None:
        """Who ``slack_user`` acts as, when ``action`` is theirs to take; else None, once
        ``refuse`` has told them why."""
        actor = self.door.directory.actor(slack_user)
        reason = refusal(action, slack_user, actor, owner)
        if reason is None and actor is not None:
            return actor
        # Without an actor only actions open to anyone pass, and none of those comes here.
        await refuse(reason or NOT_LINKED.format(slack_user=slack_user))
        return None

    def _tell(self, slack_user: str) -> Refuse:
        """A refusal as a message in the user's conversation with the app, where a button
        press has nowhere else to be answered."""
        return lambda reason: self.door.post(slack_user, blocks.notice(reason))

    async def _permitted_on(
        self, action: SlackAction, slack_user: str, target: Target | str, refuse: Refuse
    ) -> Permitted | None:
        """The actor and the environment (its owner filled in) an action names, when the user
        may act on it; else None, once ``refuse`` has told them why (or why the names are no
        environment's)."""
        owner = target.owner if isinstance(target, Target) else None
        actor = await self._permitted(action, slack_user, refuse, owner)
        if actor is None:
            return None
        if isinstance(target, str):
            await refuse(target)
            return None
        return actor, target.owner or actor.user_id, target.name

    async def _modal_permitted(
        self, action: SlackAction, ack: AsyncAck, body: Body, view: Body
    ) -> Permitted | None:
        """For a delete or shrink modal: the refusal is shown in the modal."""
        refuse = self._form_error(ack, view)
        return await self._permitted_on(action, body["user"]["id"], _modal_target(view), refuse)

    async def _press_permitted(
        self, action: SlackAction, body: Body, value: str
    ) -> Permitted | None:
        """For a button carrying ``[owner/]name``: the refusal is told in a message."""
        slack_user = body["user"]["id"]
        return await self._permitted_on(
            action, slack_user, parse_target(value), self._tell(slack_user)
        )

    @staticmethod
    def _form_error(ack: AsyncAck, view: Body) -> Refuse:
        """A refusal under the modal's first field; the modal stays open."""
        field = REFUSAL_FIELD[view["callback_id"]]
        return lambda reason: ack(response_action="errors", errors={field: reason})

    async def on_akros(self, ack: AsyncAck, command: Body, respond: AsyncRespond) -> None:
        slack_user = command["user_id"]
        parsed = parse_command(command.get("text", ""))
        actor = self.door.directory.actor(slack_user)
        if reason := refusal(COMMAND_ACTIONS[parsed.verb], slack_user, actor, parsed.owner):
            await ack(text=reason)
            return
        if not channel_allowed(self.allowed_channels, command.get("channel_id", "")):
            channels = ", ".join(f"<#{c}>" for c in sorted(self.allowed_channels))
            await ack(text=CHANNEL_REFUSED.format(channels=channels))
            return
        if parsed.problem:
            await ack(text=parsed.problem)
            return
        if parsed.verb is Verb.HELP or actor is None:  # all an unlinked user gets through to
            help_message = blocks.help_message()
            await ack(text=help_message.text, blocks=help_message.blocks)
            return
        await ack()
        if parsed.verb is Verb.CREATE:
            await self.door.client.views_open(
                trigger_id=command["trigger_id"], view=blocks.create_modal(self.door.catalog)
            )
        elif parsed.verb is Verb.DELETE and parsed.name:
            await self.door.client.views_open(
                trigger_id=command["trigger_id"],
                view=blocks.delete_modal(parsed.name, _whose(parsed.owner, actor)),
            )
        elif parsed.verb in {Verb.STOP, Verb.START} and parsed.name:
            owner = parsed.owner or actor.user_id
            await self._stop_or_start(
                parsed.verb, slack_user, actor, owner, parsed.name, _interaction_id(command)
            )
        elif parsed.verb is Verb.LIST:
            answer = await self.door.environments_message(actor)
            await respond(text=answer.text, blocks=answer.blocks, response_type="ephemeral")
        elif parsed.verb is Verb.USAGE:
            answer = await self.door.usage_message(actor)
            await respond(text=answer.text, blocks=answer.blocks, response_type="ephemeral")

    async def _stop_or_start(
        self, verb: Verb, slack_user: str, actor: Actor, owner: str, name: str, request_id: str
    ) -> None:
        """Accept the stop or start at once (nothing to confirm: either can be undone by the
        other); the request's message says how it went."""
        if verb is Verb.STOP:
            stop = StopEnvironment(request_id=request_id, actor=actor, owner=owner, name=name)
            await self.door.stop(slack_user, stop)
        else:
            start = StartEnvironment(request_id=request_id, actor=actor, owner=owner, name=name)
            await self.door.start(slack_user, start)

    async def _acked_form(
        self,
        ack: AsyncAck,
        view: Body,
        fields: dict[str, Any],
        actor: Actor,
        owner: str,
        step: str = "",
    ) -> CreateEnvironment | None:
        """Acknowledge a submitted environment form: with the errors under their fields (the
        modal stays open), or empty (it closes) and the command to hand on."""
        command = forms.command_from_form(
            fields, actor=actor, owner=owner, request_id=_request_id(view, step)
        )
        if isinstance(command, dict):
            await ack(response_action="errors", errors=command)
            return None
        await ack()
        return command

    async def on_create_submitted(self, ack: AsyncAck, body: Body, view: Body) -> None:
        slack_user = body["user"]["id"]
        refuse = self._form_error(ack, view)
        actor = await self._permitted(SlackAction.CREATE_SUBMITTED, slack_user, refuse)
        if actor is None:
            return
        fields = forms.read_values(view["state"]["values"])
        if command := await self._acked_form(ack, view, fields, actor, actor.user_id):
            await self.door.create(slack_user, command)

    async def on_shrink_submitted(self, ack: AsyncAck, body: Body, view: Body) -> None:
        permitted = await self._modal_permitted(SlackAction.SHRINK_SUBMITTED, ack, body, view)
        if permitted is None:
            return
        actor, owner, name = permitted
        fields = {**forms.read_values(view["state"]["values"]), forms.NAME: name}
        if command := await self._acked_form(ack, view, fields, actor, owner, step=":shrink"):
            await self.door.shrink(body["user"]["id"], command)

    async def on_delete_submitted(self, ack: AsyncAck, body: Body, view: Body) -> None:
        permitted = await self._modal_permitted(SlackAction.DELETE_SUBMITTED, ack, body, view)
        if permitted is None:
            return
        await ack()
        actor, owner, name = permitted
        command = DeleteEnvironment(
            request_id=_request_id(view),
            actor=actor,
            owner=owner,
            name=name,
            purge_volume=_ticked(view, blocks.PURGE),
        )
        await self.door.delete(body["user"]["id"], command)

    async def on_open_create(self, ack: AsyncAck, body: Body) -> None:
        await ack()
        slack_user = body["user"]["id"]
        if await self._permitted(SlackAction.NEW_PRESSED, slack_user, self._tell(slack_user)):
            await self.door.client.views_open(
                trigger_id=body["trigger_id"], view=blocks.create_modal(self.door.catalog)
            )

    async def on_delete_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        permitted = await self._press_permitted(SlackAction.DELETE_PRESSED, body, action["value"])
        if permitted is None:
            return
        actor, owner, name = permitted
        await self.door.client.views_open(
            trigger_id=body["trigger_id"], view=blocks.delete_modal(name, _whose(owner, actor))
        )

    async def on_open_url(self, ack: AsyncAck) -> None:
        await ack()  # Slack opens the URL itself; it only needs to hear the click was received

    async def on_keep_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        permitted = await self._press_permitted(SlackAction.KEEP_PRESSED, body, action["value"])
        if permitted is None:
            return
        actor, owner, name = permitted
        ref = MessageRef(
            channel=body["container"]["channel_id"], ts=body["container"]["message_ts"]
        )
        if not await self.door.keep(owner, name, ref):
            missing = blocks.no_such_environment(name, _whose(owner, actor))
            await self.door.post(body["user"]["id"], missing)

    async def on_shrink_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        permitted = await self._press_permitted(SlackAction.SHRINK_PRESSED, body, action["value"])
        if permitted is None:
            return
        actor, owner, name = permitted
        whose = _whose(owner, actor)
        form = await self.door.shrink_form(owner, name)
        if form is None:
            await self.door.post(body["user"]["id"], blocks.no_such_environment(name, whose))
            return
        await self.door.client.views_open(
            trigger_id=body["trigger_id"], view=blocks.shrink_modal(self.door.catalog, form, whose)
        )

    async def on_stop_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await self._stop_or_start_pressed(SlackAction.STOP_PRESSED, Verb.STOP, ack, body, action)

    async def on_start_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await self._stop_or_start_pressed(SlackAction.START_PRESSED, Verb.START, ack, body, action)

    async def _stop_or_start_pressed(
        self, pressed: SlackAction, verb: Verb, ack: AsyncAck, body: Body, action: Body
    ) -> None:
        await ack()
        permitted = await self._press_permitted(pressed, body, action["value"])
        if permitted is None:
            return
        actor, owner, name = permitted
        slack_user = body["user"]["id"]
        await self._stop_or_start(verb, slack_user, actor, owner, name, _interaction_id(body))

    async def on_extend_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        permitted = await self._press_permitted(SlackAction.EXTEND_PRESSED, body, action["value"])
        if permitted is None:
            return
        actor, owner, name = permitted
        await self.door.extend(body["user"]["id"], actor, owner, name, _interaction_id(body))

    async def on_why_pending_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        permitted = await self._press_permitted(
            SlackAction.WHY_PENDING_PRESSED, body, action["value"]
        )
        if permitted is None:
            return
        actor, owner, name = permitted
        await self.door.why_pending(body["user"]["id"], owner, name, _whose(owner, actor))

    async def on_home_opened(self, event: Body) -> None:
        if event.get("tab", "home") != "home":
            return
        slack_user = event["user"]

        async def refuse(reason: str) -> None:
            await self.door.client.views_publish(
                user_id=slack_user, view=blocks.home_notice(reason)
            )

        if actor := await self._permitted(SlackAction.HOME_OPENED, slack_user, refuse):
            await self.door.publish_home(slack_user, actor.user_id)
