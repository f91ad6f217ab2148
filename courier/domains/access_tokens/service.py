"""Minting individual access tokens: short-lived credentials that act as one individual.

Apps on patients' and providers' phones use these, never API keys. A ``staff`` or ``admin`` key
mints them; an individual token may mint a fresh one for its own individual only (so an app
can renew before expiry). The new token keeps the issuing key of the caller, so revoking that
key ends every token minted under it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from courier.core.auth import mint_individual_token
from courier.core.errors import forbidden, invalid_attribute
from courier.domains.access_tokens.schemas import AccessTokenCreate
from courier.domains.people.repository import require_individual
from courier.jsonapi.changes import change, record_changes
from courier.jsonapi.context import Context

TYPE_NAME = "access-tokens"


@dataclass(frozen=True)
class MintedToken:
    id: uuid.UUID
    token: str
    individual_id: uuid.UUID
    expires_at: datetime


async def mint_token(ctx: Context, attrs: AccessTokenCreate) -> MintedToken:
    """Check the request, mint the token and write the audit row (the token never is stored).

    Errors: an individual token naming another individual: 403; an individual outside the
    caller's organization: 404 naming ``individual-id``; a lifetime outside 1..the server's
    ``token_ttl_seconds``: 400.
    """
    principal = ctx.principal
    if principal.is_individual and attrs.individual_id != principal.individual_id:
        raise forbidden("an individual access token may mint tokens only for its own individual")
    maximum = ctx.settings.token_ttl_seconds
    ttl = maximum if attrs.ttl_seconds is None else attrs.ttl_seconds
    if not 1 <= ttl <= maximum:
        raise invalid_attribute("ttl-seconds", f"must be between 1 and {maximum}")
    await require_individual(ctx, attrs.individual_id, pointer="/data/attributes/individual-id")
    token_id = uuid.uuid4()
    token, expires_at, _ = mint_individual_token(
        ctx.settings,
        organization_id=ctx.organization_id,
        individual_id=attrs.individual_id,
        issued_by=principal.key_id,
        ttl=timedelta(seconds=ttl),
        token_id=str(token_id),
    )
    # Audited, not published: a token is a credential, not an event any stream shows.
    record_changes(
        ctx,
        [change(TYPE_NAME, token_id, "created", fields=attrs.model_fields_set, published=False)],
    )
    return MintedToken(token_id, token, attrs.individual_id, expires_at)
