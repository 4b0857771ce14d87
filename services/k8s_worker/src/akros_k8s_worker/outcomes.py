"""Refusing a command: what a refusal is, and what can be read of one that is unreadable."""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import ValidationError

from akros_kube import ForbiddenError, InvalidError
from akros_msgs import Actor, FailureCode, Message

_MAX_COMMAND_TYPE = 100


@dataclass(frozen=True)
class UnreadableCommand:
    """What can still be read of a dead-lettered command that does not validate (a type this
    worker does not know, say, from a newer gateway): enough to answer its request."""

    request_id: str
    actor: Actor
    command_type: str
    name: str | None


def unreadable_command(body: bytes) -> UnreadableCommand | None:
    """The request a command body names, if its envelope is valid; else None (nobody to
    answer: the dead letter is the only record)."""
    try:
        document = json.loads(body)
        envelope = Message.model_validate(
            {"request_id": document["request_id"], "actor": document["actor"]}
        )
    except (ValueError, TypeError, KeyError, ValidationError):
        return None
    spec = document.get("spec")
    name = spec.get("name") if isinstance(spec, dict) else document.get("name")
    return UnreadableCommand(
        request_id=envelope.request_id,
        actor=envelope.actor,
        command_type=str(document.get("type", "unknown"))[:_MAX_COMMAND_TYPE],
        name=name if isinstance(name, str) else None,
    )


class CommandRefusedError(Exception):
    """A command that cannot be applied, for a reason the person who asked must hear."""

    def __init__(self, code: FailureCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def refusal_of(error: BaseException) -> CommandRefusedError | None:
    """The refusal an error stands for: ours, or the cluster's (invalid, forbidden); None for
    an error that may pass (the API or Redis away), which is retried."""
    if isinstance(error, CommandRefusedError):
        return error
    if isinstance(error, (InvalidError, ForbiddenError)):
        code = FailureCode.FORBIDDEN if isinstance(error, ForbiddenError) else FailureCode.INVALID
        return CommandRefusedError(code, f"The cluster refused it: {error.message}")
    return None


async def apply_or_refuse(
    apply: Awaitable[None], refuse: Callable[[FailureCode, str], Awaitable[None]]
) -> None:
    """Run ``apply``; a refusal (``refusal_of``) goes to ``refuse`` with its code and reason.
    Transient errors propagate, so the bus redelivers the command."""
    try:
        await apply
    except Exception as error:
        if (refusal := refusal_of(error)) is None:
            raise
        await refuse(refusal.code, refusal.reason)
