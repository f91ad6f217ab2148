"""The latest API token of each Alexa user, for the reminder calls of the jobs.

Every skill request carries ``context.System.apiAccessToken`` (with ``apiEndpoint``, the API
host of the user's region). Amazon creates a reminder only with that token, and the worker,
not the request, calls the Reminders API; so the token of a linked user's request (or of the
``Messaging.MessageReceived`` request Courier asked Alexa for) is kept, sealed with the
installation's key, until shortly before it expires (Amazon: 60 minutes). An expired or
refused one is gone for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.sealed import seal, unseal
from courier.core.time import utcnow
from courier.domains.alexa import repository
from courier.models.alexa import AlexaUserToken
from courier.providers.alexa.base import USER_TOKEN_LIFETIME_SECONDS, UserApiAccess

MAX_TOKEN_CHARS = 8192  # Amazon's tokens are JWTs of about 1 KB; anything larger is not one
MAX_ENDPOINT_CHARS = 255


def access_of(envelope: Mapping[str, Any]) -> UserApiAccess | None:
    """The user's API access a verified request envelope carries, if any."""
    context = envelope.get("context")
    system = context.get("System") if isinstance(context, Mapping) else None
    if not isinstance(system, Mapping):
        return None
    token, endpoint = system.get("apiAccessToken"), system.get("apiEndpoint")
    if not isinstance(token, str) or not isinstance(endpoint, str):
        return None
    # The endpoint is kept as Alexa named it; the adapter calls it only when it is one of
    # Amazon's hosts or the configured one.
    if (
        not token
        or len(token) > MAX_TOKEN_CHARS
        or not endpoint.startswith(("https://", "http://"))
    ):
        return None
    if len(endpoint) > MAX_ENDPOINT_CHARS:
        return None
    return UserApiAccess(token=token, endpoint=endpoint.rstrip("/"))


async def remember_access(
    session: AsyncSession, settings: Settings, alexa_user_id: str, access: UserApiAccess
) -> None:
    """Keep ``access`` as the user's latest token (replacing an older one). Tokens of every
    user that expired meanwhile are removed on the way (an indexed delete)."""
    now = utcnow()
    await repository.delete_expired_user_tokens(session, now)
    values = {
        "token_sealed": seal(settings, access.token),
        "api_endpoint": access.endpoint,
        "expires_at": now + timedelta(seconds=USER_TOKEN_LIFETIME_SECONDS),
        "received_at": now,
    }
    held = await session.get(
        AlexaUserToken, alexa_user_id, with_for_update=True, populate_existing=True
    )
    if held is None:
        try:
            # Two requests of one user may race to store the first token; the loser replaces.
            async with session.begin_nested():
                session.add(AlexaUserToken(alexa_user_id=alexa_user_id, **values))
            return
        except IntegrityError:
            held = await session.get(
                AlexaUserToken, alexa_user_id, with_for_update=True, populate_existing=True
            )
            if held is None:
                raise
    for name, value in values.items():
        setattr(held, name, value)


async def user_access(
    session: AsyncSession, settings: Settings, alexa_user_id: str
) -> UserApiAccess | None:
    """The user's latest token if it is still good, else None (an expired one is dropped)."""
    held = await session.get(AlexaUserToken, alexa_user_id)
    if held is None:
        return None
    if held.expires_at <= utcnow():
        await session.delete(held)
        return None
    try:
        token = unseal(settings, held.token_sealed)
    except ValueError:  # sealed under an earlier token secret: useless
        await session.delete(held)
        return None
    return UserApiAccess(token=token, endpoint=held.api_endpoint)


async def forget_access(
    session: AsyncSession, settings: Settings, alexa_user_id: str, access: UserApiAccess
) -> None:
    """Drop ``access`` (Amazon refused it), unless a newer token replaced it meanwhile."""
    held = await session.get(AlexaUserToken, alexa_user_id, with_for_update=True)
    if held is None:
        return
    try:
        same = unseal(settings, held.token_sealed) == access.token
    except ValueError:
        same = True
    if same:
        await session.delete(held)


async def forget_user(session: AsyncSession, alexa_user_id: str) -> None:
    """Drop whatever token the user's requests left (the skill was disabled)."""
    await repository.delete_user_tokens(session, alexa_user_id)
