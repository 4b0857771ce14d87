"""Bolt listeners: each acknowledges first (Slack's 3-second rule), then hands the work to the
front door. Registered here, apart from the logic, as in bolt-python's starter."""

import json
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from akros_msgs import CreateEnvironment, DeleteEnvironment
from akros_slack import blocks, forms
from akros_slack.commands import Verb, parse_command
from akros_slack.frontdoor import FrontDoor
from akros_slack.identity import channel_allowed
from akros_slack.store import MessageRef

Body = dict[str, Any]

NOT_LINKED = (
    "Your Slack account is not linked to an Akros user yet; ask an admin to add your Slack "
    "id ({slack_user}) to the app's user mapping."
)
CHANNEL_REFUSED = "/akros is not available in this channel; use it in {channels}."


def _request_id(view: Body, step: str = "") -> str:
    """Derived from the modal's id, so a submission delivered twice (a Socket Mode reconnect,
    a retry) is recognised as the same request instead of creating a second environment."""
    return f"slack:{view['id']}{step}"


def _ticked(view: Body, block_id: str) -> bool:
    state = view["state"]["values"].get(block_id, {}).get(block_id) or {}
    return bool(state.get("selected_options"))


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
        app.event("app_home_opened")(self.on_home_opened)

    async def on_akros(self, ack: AsyncAck, command: Body, respond: AsyncRespond) -> None:
        slack_user = command["user_id"]
        actor = self.door.directory.actor(slack_user)
        if actor is None:
            await ack(text=NOT_LINKED.format(slack_user=slack_user))
            return
        if not channel_allowed(self.allowed_channels, command.get("channel_id", "")):
            channels = ", ".join(f"<#{c}>" for c in sorted(self.allowed_channels))
            await ack(text=CHANNEL_REFUSED.format(channels=channels))
            return
        parsed = parse_command(command.get("text", ""))
        if parsed.problem:
            await ack(text=parsed.problem)
            return
        if parsed.verb is Verb.HELP:
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
                view=blocks.delete_modal(parsed.name, parsed.owner),
            )
        elif parsed.verb is Verb.LIST:
            answer = await self.door.environments_message(actor)
            await respond(text=answer.text, blocks=answer.blocks, response_type="ephemeral")
        elif parsed.verb is Verb.USAGE:
            answer = await self.door.usage_message(actor)
            await respond(text=answer.text, blocks=answer.blocks, response_type="ephemeral")

    async def _acked_form(
        self, ack: AsyncAck, body: Body, view: Body, fields: dict[str, Any], step: str = ""
    ) -> CreateEnvironment | None:
        """Acknowledge a submitted environment form: with the errors under their fields (the
        modal stays open), or empty (it closes) and the command to hand on."""
        actor = self.door.directory.actor(body["user"]["id"])
        if actor is None:
            await ack()
            return None
        command = forms.command_from_form(
            fields, actor=actor, owner=actor.user_id, request_id=_request_id(view, step)
        )
        if isinstance(command, dict):
            await ack(response_action="errors", errors=command)
            return None
        await ack()
        return command

    async def on_create_submitted(self, ack: AsyncAck, body: Body, view: Body) -> None:
        fields = forms.read_values(view["state"]["values"])
        if command := await self._acked_form(ack, body, view, fields):
            await self.door.create(body["user"]["id"], command)

    async def on_shrink_submitted(self, ack: AsyncAck, body: Body, view: Body) -> None:
        metadata = json.loads(view["private_metadata"])
        fields = {**forms.read_values(view["state"]["values"]), forms.NAME: metadata["name"]}
        if command := await self._acked_form(ack, body, view, fields, step=":shrink"):
            await self.door.shrink(body["user"]["id"], command)

    async def on_delete_submitted(self, ack: AsyncAck, body: Body, view: Body) -> None:
        await ack()
        actor = self.door.directory.actor(body["user"]["id"])
        if actor is None:
            return
        metadata = json.loads(view["private_metadata"])
        command = DeleteEnvironment(
            request_id=_request_id(view),
            actor=actor,
            owner=metadata.get("owner") or actor.user_id,
            name=metadata["name"],
            purge_volume=_ticked(view, blocks.PURGE),
        )
        await self.door.delete(body["user"]["id"], command)

    async def on_open_create(self, ack: AsyncAck, body: Body) -> None:
        await ack()
        await self.door.client.views_open(
            trigger_id=body["trigger_id"], view=blocks.create_modal(self.door.catalog)
        )

    async def on_delete_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        await self.door.client.views_open(
            trigger_id=body["trigger_id"], view=blocks.delete_modal(action["value"])
        )

    async def on_open_url(self, ack: AsyncAck) -> None:
        await ack()  # Slack opens the URL itself; it only needs to hear the click was received

    async def on_keep_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        actor = self.door.directory.actor(body["user"]["id"])
        if actor is None:
            return
        ref = MessageRef(
            channel=body["container"]["channel_id"], ts=body["container"]["message_ts"]
        )
        await self.door.keep(actor, action["value"], ref)

    async def on_shrink_pressed(self, ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        actor = self.door.directory.actor(body["user"]["id"])
        if actor is None:
            return
        form = await self.door.shrink_form(actor, action["value"])
        if form is None:
            await self.door.post(
                body["user"]["id"],
                blocks.notice(f"You have no environment named '{action['value']}'."),
            )
            return
        await self.door.client.views_open(
            trigger_id=body["trigger_id"], view=blocks.shrink_modal(self.door.catalog, form)
        )

    async def on_home_opened(self, event: Body) -> None:
        actor = self.door.directory.actor(event["user"])
        if actor is not None and event.get("tab", "home") == "home":
            await self.door.publish_home(event["user"], actor.user_id)
