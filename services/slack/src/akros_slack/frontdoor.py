"""What the listeners and the event consumers hand their work to: the shared intake for
commands, Slack's Web API for what people see. Each method is one step of a flow; the Block
Kit comes from ``blocks`` and every decision from a pure function."""

from dataclasses import dataclass
from typing import assert_never

from slack_sdk.web.async_client import AsyncWebClient

from akros_bus import get_logger
from akros_intake import Intake, RefusedError
from akros_intake.cluster_reads import EnvironmentReader
from akros_msgs import (
    Actor,
    CommandFailed,
    CommandResult,
    CreateEnvironment,
    DeleteEnvironment,
    EnvironmentDeleted,
    EnvironmentExpiring,
    EnvironmentExtended,
    EnvironmentReady,
    EnvironmentResized,
    EnvironmentStarting,
    EnvironmentStopped,
    Notification,
    ResizeEnvironment,
    StartEnvironment,
    StopEnvironment,
    UnderusedEnvironment,
)
from akros_msgs.events import DeploymentScaled, VolumeDeleted
from akros_msgs.services import ServiceDeleted, ServiceDeployed
from akros_policy import Catalog
from akros_readmodel import EnvironmentStatus, ReadModel, RequestState
from akros_slack import blocks, forms
from akros_slack.blocks import SlackMessage
from akros_slack.identity import Directory
from akros_slack.store import MessageRef, SlackStore

_log = get_logger("akros.slack")
AcceptedCommand = (
    CreateEnvironment | DeleteEnvironment | StopEnvironment | StartEnvironment | ResizeEnvironment
)
NO_CLUSTER = "The app has no access to the cluster, so it cannot say; ask an admin."
START_TYPE = StartEnvironment.model_fields["type"].default
RESIZE_TYPE = ResizeEnvironment.model_fields["type"].default


@dataclass(frozen=True)
class FrontDoor:
    intake: Intake
    read_model: ReadModel
    store: SlackStore
    directory: Directory
    client: AsyncWebClient
    keep_hours: float
    environment_reader: EnvironmentReader | None = None
    """Reads the Events that say why an environment is pending; None without a cluster."""

    @property
    def catalog(self) -> Catalog:
        return self.intake.catalog

    # -- answers ----------------------------------------------------------------------------

    async def environments_message(self, actor: Actor) -> SlackMessage:
        return blocks.environments_message(await self.read_model.environments(actor.user_id))

    async def usage_message(self, actor: Actor) -> SlackMessage:
        holding = await self.read_model.holding(actor.user_id)
        return blocks.usage_message(holding, self.intake.quotas.for_user(actor.user_id))

    async def why_pending(self, slack_user: str, owner: str, name: str, whose: str | None) -> None:
        """Tell ``slack_user`` why an environment is pending, from what the cluster said."""
        view = await self.read_model.environment(owner, name)
        if view is None:
            await self.post(slack_user, blocks.no_such_environment(name, whose))
            return
        if view.status is not EnvironmentStatus.PENDING:
            await self.post(slack_user, blocks.why_pending_message(name, None))
            return
        if self.environment_reader is None:
            await self.post(slack_user, blocks.notice(NO_CLUSTER))
            return
        try:
            history = await self.environment_reader.events(owner, name)
        except RefusedError as refused:
            await self.post(slack_user, blocks.notice(refused.detail))
            return
        await self.post(slack_user, blocks.why_pending_message(name, history.why_pending()))

    async def shrink_form(self, owner: str, name: str) -> forms.EnvironmentForm | None:
        view = await self.read_model.environment(owner, name)
        if view is None:
            return None
        return forms.smaller_form(name, view.image, view.resources)

    # -- commands ---------------------------------------------------------------------------

    async def create(self, slack_user: str, command: CreateEnvironment) -> None:
        detail = f" ({command.resources.describe()})"
        await self._accept(
            slack_user, command, blocks.pending_message("Creating", command.name, detail)
        )

    async def delete(self, slack_user: str, command: DeleteEnvironment) -> None:
        detail = " and its volume" if command.purge_volume else ""
        await self._accept(
            slack_user, command, blocks.pending_message("Deleting", command.name, detail)
        )

    async def stop(self, slack_user: str, command: StopEnvironment) -> None:
        await self._accept(
            slack_user, command, blocks.pending_message("Stopping", command.name, "")
        )

    async def start(self, slack_user: str, command: StartEnvironment) -> None:
        """Reported like a create: the message follows its stages, then says it is ready."""
        await self._accept(
            slack_user, command, blocks.pending_message("Starting", command.name, "")
        )

    async def shrink(self, slack_user: str, form: CreateEnvironment) -> None:
        """Resize the environment to the form's smaller resources: it restarts with them, its
        volume, URL, name and profile kept (PATCH /v1/environments/{name} does the same)."""
        resize = ResizeEnvironment(
            request_id=form.request_id,
            actor=form.actor,
            owner=form.owner,
            name=form.name,
            cpu=form.cpu,
            memory=form.memory,
            gpus=form.gpus,
            dedicated_cores=form.dedicated_cores,
        )
        detail = f" to {resize.resources.describe()}"
        await self._accept(
            slack_user, resize, blocks.pending_message("Shrinking", form.name, detail)
        )

    async def extend(
        self, slack_user: str, actor: Actor, owner: str, name: str, request_id: str
    ) -> None:
        """Move the expiry on by the platform's extension; the message says how it went."""
        ref = await self.post(slack_user, blocks.pending_message("Extending", name, ""))
        await self.store.remember_message(request_id, ref)
        try:
            await self.intake.extend(actor, owner, name, request_id=request_id)
        except RefusedError as refusal:
            await self.update(ref, blocks.refused_message(refusal.detail))

    async def _accept(
        self, slack_user: str, command: AcceptedCommand, pending: SlackMessage
    ) -> None:
        """Post the request's message, then accept the command. The message exists (and is
        remembered) before the command is published, so even an outcome that comes back at
        once finds it; a refusal replaces it."""
        if await self.store.message(command.request_id):
            return  # Slack sent the same submission again: it is being handled already
        ref = await self.post(slack_user, pending)
        await self.store.remember_message(command.request_id, ref)
        try:
            match command:
                case CreateEnvironment():
                    await self.intake.create(command)
                case DeleteEnvironment():
                    await self.intake.delete(command)
                case StopEnvironment():
                    await self.intake.stop(command)
                case StartEnvironment():
                    await self.intake.start(command)
                case ResizeEnvironment():
                    await self.intake.resize(command)
                case _:
                    assert_never(command)
        except RefusedError as refusal:
            await self.update(ref, blocks.refused_message(refusal.detail))
            return
        await self.refresh_home(command.owner)

    async def keep(self, owner: str, name: str, ref: MessageRef) -> bool:
        """Exempt the environment from under-use notifications for a while; False (nothing
        done) when it does not exist."""
        if await self.read_model.environment(owner, name) is None:
            return False
        await self.read_model.exempt_from_underuse(
            owner, name, seconds=round(self.keep_hours * 3600)
        )
        await self.update(ref, blocks.kept_message(name, self.keep_hours))
        return True

    # -- events -----------------------------------------------------------------------------

    async def on_result(self, event: CommandResult) -> None:
        """Replace the request's message with its outcome, then refresh the owner's Home."""
        outcome: SlackMessage
        match event:
            case EnvironmentStarting():
                await self._show_progress(event)
                return
            case EnvironmentReady():
                outcome = blocks.ready_message(event)
            case CommandFailed():
                outcome = blocks.failed_message(event)
            case EnvironmentStopped():
                outcome = blocks.stopped_message(event)
                if event.reason and not await self.store.message(event.request_id):
                    # The platform's stop (expiry, idle): nobody asked, so the owner is told.
                    await self._tell_owner(event.owner, outcome)
            case EnvironmentExtended():
                outcome = blocks.extended_message(event)
            case EnvironmentResized():
                outcome = blocks.resized_message(event)
            case EnvironmentDeleted():
                outcome = blocks.deleted_message(event)
            case VolumeDeleted() | DeploymentScaled() | ServiceDeployed() | ServiceDeleted():
                # Outcomes of requests Slack never makes (volume purges, scaling, in-house
                # services come from the API and the poller): no message here awaits them.
                return
            case _:
                assert_never(event)
        if ref := await self.store.message(event.request_id):
            await self.update(ref, outcome)
        if event.owner is not None:
            await self.refresh_home(event.owner)

    async def _show_progress(self, event: EnvironmentStarting) -> None:
        """The pending message says the stage the start is at (of a create, or of a stopped
        environment's start). Events are handled concurrently, so a stage that arrives after
        the outcome must not replace it: only a request still pending is updated."""
        ref = await self.store.message(event.request_id)
        if ref is None:
            return
        request = await self.read_model.request(event.request_id)
        if request is None or request.state is not RequestState.PENDING:
            return
        action = {START_TYPE: "Starting", RESIZE_TYPE: "Resizing"}.get(
            request.command_type, "Creating"
        )
        await self.update(ref, blocks.progress_message(event, action))

    async def on_notification(self, event: Notification) -> None:
        """DM the owner once per notification (a redelivered one is not sent again)."""
        match event:
            case UnderusedEnvironment():
                message = blocks.underused_message(event)
            case EnvironmentExpiring():
                message = blocks.expiring_message(event)
            case _:
                assert_never(event)
        if not await self.store.claim_notification(str(event.message_id)):
            return
        try:
            await self._tell_owner(event.owner, message)
        except Exception:
            await self.store.release_notification(str(event.message_id))
            raise

    async def _tell_owner(self, owner: str, message: SlackMessage) -> None:
        slack_user = self.directory.slack_user_of(owner)
        if slack_user is None:
            _log.info("no Slack user for this owner; notification not sent", owner=owner)
            return
        await self.post(slack_user, message)

    # -- Slack ------------------------------------------------------------------------------

    async def refresh_home(self, owner: str) -> None:
        if slack_user := self.directory.slack_user_of(owner):
            await self.publish_home(slack_user, owner)

    async def publish_home(self, slack_user: str, owner: str) -> None:
        views = await self.read_model.environments(owner)
        await self.client.views_publish(user_id=slack_user, view=blocks.home_view(views))

    async def post(self, slack_user: str, message: SlackMessage) -> MessageRef:
        """A message in the user's conversation with the app (the channel is their user id)."""
        answer = await self.client.chat_postMessage(
            channel=slack_user, text=message.text, blocks=message.blocks
        )
        return MessageRef(channel=str(answer["channel"]), ts=str(answer["ts"]))

    async def update(self, ref: MessageRef, message: SlackMessage) -> None:
        await self.client.chat_update(
            channel=ref.channel, ts=ref.ts, text=message.text, blocks=message.blocks
        )
