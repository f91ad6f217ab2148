"""``POST /v1/access-tokens/``: mint an individual access token."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from courier.core.auth import Permission
from courier.core.errors import conflict
from courier.core.handlers import JsonResponse
from courier.domains.access_tokens.schemas import AccessTokenRead, AccessTokenRequest
from courier.domains.access_tokens.service import TYPE_NAME, mint_token
from courier.jsonapi.context import Context, context_dependency
from courier.jsonapi.documents import DocumentModels, resource_object, single_document
from courier.jsonapi.routes import ERROR_RESPONSES

router = APIRouter(tags=["access-tokens"])

_documents = DocumentModels(TYPE_NAME, AccessTokenRead, None, None)


@router.post(
    f"/v1/{TYPE_NAME}/",
    status_code=201,
    response_model=None,
    summary="Mint a short-lived token that acts as one individual (for patient and provider apps)",
    responses={201: {"model": _documents.single}, **ERROR_RESPONSES},
    operation_id=f"create-v1-{TYPE_NAME}",
)
async def create_access_token(
    body: AccessTokenRequest,
    # COMMUNICATE: staff and admin keys, and individual tokens (for themselves); not readonly.
    ctx: Context = Depends(context_dependency(Permission.COMMUNICATE)),
) -> JsonResponse:
    """Mint a bearer token that acts as one individual of the caller's organization.

    A ``staff`` or ``admin`` key may name any individual of its organization; an individual
    token only its own individual (403 otherwise); a ``readonly`` key may not mint (403).
    An individual of another organization, or none: 404. The token is shown only here.
    """
    if body.data.type != TYPE_NAME:
        raise conflict(f"data.type must be {TYPE_NAME}", "type-mismatch", pointer="/data/type")
    minted = await mint_token(ctx, body.data.attributes)
    attributes = AccessTokenRead(
        token=minted.token, individual_id=minted.individual_id, expires_at=minted.expires_at
    ).model_dump(mode="json", by_alias=True)
    return JsonResponse(
        single_document(resource_object(TYPE_NAME, minted.id, attributes)),
        status_code=201,
        # A credential: never to be kept by a cache along the way.
        headers={"Cache-Control": "no-store"},
    )
