"""Actions on text accounts and numbers: ``claim-number`` and ``reset-logs``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from courier.core.auth import Permission
from courier.core.handlers import JsonResponse
from courier.domains.text_accounts import service
from courier.domains.text_accounts.resource import text_account_numbers, text_accounts
from courier.domains.text_accounts.schemas import ClaimNumberBody
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels
from courier.jsonapi.routes import ERROR_RESPONSES, path_uuid, render_one

router = APIRouter(tags=["sms"])
manage = Depends(context_dependency(Permission.MANAGE, individual_allowed=False))
_numbers = DocumentModels("text-account-numbers", text_account_numbers.read_schema, None, None)


class EmptyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.post(
    "/v1/text-accounts/{id}/claim-number/",
    status_code=201,
    response_model=None,
    summary="Claim (provision) a number for the account",
    responses={201: {"model": _numbers.single}, **ERROR_RESPONSES},
    operation_id="claim-number-v1-text-accounts",
)
async def claim_number(id: str, body: ClaimNumberBody, ctx: Context = manage) -> JsonResponse:
    """A number already in the provider account (``phone-number``, default the account's
    ``phone-number``; needs ``allow-custom-number``) becomes one of the account's numbers,
    ``pending`` until the provider confirms it."""
    account = await text_accounts.service.load(ctx, path_uuid(id, "text account"))
    num = await service.claim_number(ctx, account, body)
    await ctx.session.flush()
    text_account_numbers.service.audit(ctx, "created", num, ["notes", "phone-number"])
    return JsonResponse(await render_one(ctx, text_account_numbers, num), status_code=201)


@router.post(
    "/v1/text-account-numbers/{id}/reset-logs/",
    status_code=201,
    response_model=None,
    summary="Clear a number's receive logs",
    responses={201: {"model": _numbers.single}, **ERROR_RESPONSES},
    operation_id="reset-logs-v1-text-account-numbers",
)
async def reset_logs(id: str, body: EmptyBody | None = None, ctx: Context = manage) -> JsonResponse:
    """Deletes the number's activity log and received texts."""
    num = await text_account_numbers.service.load(ctx, path_uuid(id, "text number"))
    await service.reset_logs(ctx, num)
    text_account_numbers.service.audit(ctx, "logs-reset", num)
    return JsonResponse(await render_one(ctx, text_account_numbers, num), status_code=201)
