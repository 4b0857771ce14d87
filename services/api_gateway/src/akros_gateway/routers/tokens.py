"""/v1/tokens: admins issue, list and revoke bearer tokens (as `akros-gateway token` does)."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from akros_gateway.context import AdminDep, GatewayDep
from akros_gateway.errors import responses
from akros_gateway.schemas import IssuedTokenOut, Revoked, TokenBody, TokenInfo, TokenList
from akros_intake import ForbiddenError, InvalidError, NotFoundError

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=IssuedTokenOut,
    responses=responses(ForbiddenError, InvalidError),
)
async def issue_token(body: TokenBody, _: AdminDep, gateway: GatewayDep) -> IssuedTokenOut:
    issued = await gateway.tokens.issue(body.user, body.role)
    return IssuedTokenOut(token=issued.token, **issued.record.model_dump())


@router.get("", response_model=TokenList, responses=responses(ForbiddenError))
async def list_tokens(_: AdminDep, gateway: GatewayDep) -> TokenList:
    records = (await gateway.tokens.records()).values()
    return TokenList(tokens=[TokenInfo(**record.model_dump()) for record in records])


@router.delete(
    "/{prefix}",
    response_model=Revoked,
    responses=responses(ForbiddenError, NotFoundError, InvalidError),
)
async def revoke_token(
    prefix: Annotated[str, Path(description="The token's first characters, as listed")],
    _: AdminDep,
    gateway: GatewayDep,
) -> Revoked:
    revoked = await gateway.tokens.revoke(prefix=prefix)
    if not revoked:
        raise NotFoundError(f"No token has the prefix '{prefix}'.")
    return Revoked(revoked=revoked)
