"""Recording a command's outcome on the request the gateway accepted it as."""

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
