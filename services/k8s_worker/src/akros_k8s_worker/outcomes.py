"""Refusing a command, and recording its outcome on the request the gateway accepted it as."""

from collections.abc import Awaitable, Callable

from akros_kube import ForbiddenError, InvalidError
from akros_msgs import FailureCode
from akros_readmodel import ReadModel, RequestState, utc_now


async def settle_request(
    read_model: ReadModel,
    request_id: str,
    state: RequestState,
    *,
    code: FailureCode | None = None,
    reason: str | None = None,
) -> None:
    view = await read_model.request(request_id)
    if view is None:
        return  # not a request the gateway recorded (e.g. published by another tool)
    await read_model.put_request(
        view.model_copy(
            update={"state": state, "code": code, "reason": reason, "updated_at": utc_now()}
        )
    )


class CommandRefusedError(Exception):
    """A command that cannot be applied, for a reason the person who asked must hear."""

    def __init__(self, code: FailureCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def apply_or_refuse(
    apply: Awaitable[None], refuse: Callable[[FailureCode, str], Awaitable[None]]
) -> None:
    """Run ``apply``; a refusal, ours or the cluster's (invalid, forbidden), goes to ``refuse``
    with its code and reason. Transient errors propagate, so the bus redelivers the command."""
    try:
        await apply
    except CommandRefusedError as refusal:
        await refuse(refusal.code, refusal.reason)
    except (InvalidError, ForbiddenError) as error:
        code = FailureCode.FORBIDDEN if isinstance(error, ForbiddenError) else FailureCode.INVALID
        await refuse(code, f"The cluster refused it: {error.message}")
