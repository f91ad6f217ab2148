"""Console sessions: an API key or a personal login (user name and password, see
:mod:`courier.domains.console_users`) signs in once; the browser then holds a random cookie
only.

- The cookie (``courier_console``) is 256 random bits; the table keeps its SHA-256. It is
  ``HttpOnly``, ``SameSite=Strict``, ``Secure`` unless the console is reached on loopback, and
  a new one is issued at every sign-in (the session the browser had before is revoked).
- Every session has its own CSRF token, required on every state-changing request (the
  ``X-CSRF-Token`` header that htmx sends, or a ``csrf-token`` form field): missing or wrong,
  403.
- A session ends when it is signed out (revoked server-side), 12 hours after sign-in, after
  its organization's ``console-idle-timeout-seconds`` preference (else
  ``COURIER_CONSOLE_IDLE_TIMEOUT_SECONDS``) without activity, or as soon as its API key is
  revoked or expires, or its personal login is revoked (checked on every request).
- Just before the page locks for inactivity it hands the session its path and unsent reply
  (:func:`lock_with_draft`: the draft sealed, the session revoked); signing in again on that
  browser as the same key or login carries both to the new session (:func:`carry_over`), and
  the page, when opened, gets its draft back once (:func:`take_draft`).
- A personal login's session acts as its person: the principal is a ``console-user`` whose
  ``individual_id`` is the linked provider individual (audit rows name them), with the
  login's current role; "Mine" and the author of replies are that person.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from courier.config import Settings
from courier.core.auth import Principal, PrincipalKind, Role, hash_secret
from courier.core.passwords import decoy, verify_password
from courier.core.sealed import seal, unseal
from courier.core.tenancy import unscoped
from courier.core.time import utcnow
from courier.domains.console_users.repository import by_username
from courier.domains.org_preferences.service import PREFERENCES
from courier.models.api_key import ApiKey
from courier.models.console_session import ConsoleSession
from courier.models.console_user import ConsoleUser
from courier.models.org_preference import OrgPreference

COOKIE = "courier_console"
PRE_COOKIE = "courier_console_signin"  # double-submit token of the sign-in form
RESUME_COOKIE = "courier_console_resume"  # the locked session's token (never its draft)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf-token"
ABSOLUTE_LIFETIME = timedelta(hours=12)
# Activity is written at most this often (one write per page burst, not per fragment).
TOUCH_RESOLUTION = timedelta(seconds=15)
FORGET_AFTER = timedelta(days=1)
IDLE_PREFERENCE = "console-idle-timeout-seconds"
DRAFT_MAX = 10_000  # characters of an unsent reply kept over a lock
# A console page the sign-in may send the browser back to: a path under /console/ (an optional
# plain query), never another origin, nor the sign-in itself.
LOCKABLE_PATH = re.compile(
    r"/console/(?!sign-in|lock|static/)[A-Za-z0-9._~/-]*(\?[A-Za-z0-9._~=&%+-]*)?"
)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Signed:
    """A live session and what it may do."""

    row: ConsoleSession
    principal: Principal
    user: ConsoleUser | None = None  # a personal login (else an API key signed in)
    idle_seconds: int = 600  # the organization's inactivity limit

    @property
    def csrf_token(self) -> str:
        return self.row.csrf_token


def is_loopback(request: Request) -> bool:
    host = (request.url.hostname or "").strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console/",
        httponly=True,
        secure=not is_loopback(request),
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, name: str = COOKIE) -> None:
    response.delete_cookie(
        name, path="/console/", httponly=True, secure=not is_loopback(request), samesite="strict"
    )


async def key_by_secret(session: AsyncSession, secret: str) -> ApiKey | None:
    """The usable API key with this secret (Bearer form), else None."""
    stmt = select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret.strip()))
    key = (await session.execute(unscoped(stmt, "console sign-in"))).scalar_one_or_none()
    return key if key is not None and usable(key, utcnow()) else None


def usable(key: ApiKey, now: datetime) -> bool:
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


async def user_by_password(
    session: AsyncSession, username: str, password: str
) -> ConsoleUser | None:
    """The unrevoked personal login with this user name and password, else None. An unknown
    name costs the same scrypt as a wrong password."""
    user = await by_username(session, username) if username.strip() else None
    stored = user.password_hash if user is not None else decoy()
    matches = await asyncio.to_thread(verify_password, password, stored)
    if user is None or not matches or user.revoked_at is not None:
        return None
    user.last_sign_in_at = utcnow()
    return user


async def open_session(
    session: AsyncSession, signer: ApiKey | ConsoleUser, previous_token: str | None
) -> tuple[str, ConsoleSession]:
    """A new session for an API key or a personal login; the browser's previous one (if any)
    is revoked. A personal login acts as its person from the start."""
    now = utcnow()
    # Sessions past their 12 hours are kept a day (for support questions), then deleted.
    await session.execute(
        delete(ConsoleSession).where(ConsoleSession.expires_at < now - FORGET_AFTER)
    )
    if previous_token:
        await session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == _digest(previous_token))
            .where(ConsoleSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    token = secrets.token_urlsafe(32)
    personal = isinstance(signer, ConsoleUser)
    row = ConsoleSession(
        organization_id=signer.organization_id,
        key_id=None if personal else signer.id,
        console_user_id=signer.id if personal else None,
        acting_individual_id=signer.individual_id if isinstance(signer, ConsoleUser) else None,
        token_hash=_digest(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE_LIFETIME,
    )
    session.add(row)
    await session.flush()
    return token, row


async def find_session(
    session: AsyncSession, settings: Settings, token: str | None, *, touch: bool
) -> Signed | None:
    """The live session of this cookie, or None (unknown, revoked, expired, idle, or its key
    no longer usable). ``touch``: this request is the person's activity."""
    if not token:
        return None
    four = cast("Select[Any]", select(ConsoleSession, ApiKey, ConsoleUser, OrgPreference.value))
    stmt = (
        four.outerjoin(ApiKey, ApiKey.id == ConsoleSession.key_id)
        .outerjoin(ConsoleUser, ConsoleUser.id == ConsoleSession.console_user_id)
        .outerjoin(
            OrgPreference,
            # The preference of the session's own organization (the statement finds a session by
            # its token across organizations, see unscoped below).
            (OrgPreference.organization_id == ConsoleSession.organization_id)  # tenancy-ok: its org
            & (OrgPreference.name == IDLE_PREFERENCE),
        )
        .where(ConsoleSession.token_hash == _digest(token))
    )
    found = (await session.execute(unscoped(stmt, "console session"))).first()
    if found is None:
        return None
    row, key, user, stored_idle = found
    now = utcnow()
    idle_seconds = idle_limit(settings, stored_idle)
    idle = timedelta(seconds=idle_seconds)
    if key is not None:
        signer_ok = usable(key, now) and key.organization_id == row.organization_id
    else:
        signer_ok = (
            user is not None
            and user.revoked_at is None
            and user.organization_id == row.organization_id
        )
    if (
        row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + idle <= now
        or not signer_ok
    ):
        if row.revoked_at is None:
            row.revoked_at = now
        return None
    if touch and now - row.last_seen_at >= TOUCH_RESOLUTION:
        row.last_seen_at = now
    if user is not None:
        principal = Principal(
            PrincipalKind.CONSOLE_USER,
            user.organization_id,
            role=Role(user.role),
            individual_id=user.individual_id,
            console_user_id=user.id,
        )
        return Signed(row, principal, user, idle_seconds)
    assert key is not None
    principal = Principal(
        PrincipalKind.API_KEY, key.organization_id, role=Role(key.role), key_id=key.id
    )
    return Signed(row, principal, None, idle_seconds)


def idle_limit(settings: Settings, stored: object) -> int:
    """The inactivity limit of an organization's sessions: its ``console-idle-timeout-seconds``
    preference when set (and valid), else the installation's setting."""
    if PREFERENCES[IDLE_PREFERENCE].accepts(stored):
        assert isinstance(stored, int)
        return stored
    return settings.console_idle_timeout_seconds


def lockable_path(path: str) -> bool:
    return len(path) <= 500 and "//" not in path and LOCKABLE_PATH.fullmatch(path) is not None


def lock_with_draft(signed: Signed, settings: Settings, path: str, draft: str) -> None:
    """The page locks: keep where it was and its unsent reply (sealed), and end the session."""
    signed.row.locked_path = path
    signed.row.draft_sealed = seal(settings, draft) if draft.strip() else None
    revoke(signed.row)


def forget_draft(row: ConsoleSession) -> None:
    row.locked_path = None
    row.draft_sealed = None


async def carry_over(
    session: AsyncSession,
    locked_token: str | None,
    signer: ApiKey | ConsoleUser,
    new: ConsoleSession,
) -> str | None:
    """A sign-in on the browser whose page locked: when the same key or login signs in again
    within the locked session's 12 hours, its page and draft move to the new session; the path
    to open is returned. Whoever signs in, the locked session keeps neither."""
    if not locked_token:
        return None
    stmt = select(ConsoleSession).where(ConsoleSession.token_hash == _digest(locked_token))
    old = (await session.execute(unscoped(stmt, "console session"))).scalar_one_or_none()
    if old is None or old.locked_path is None:
        return None
    same = (
        old.console_user_id == signer.id
        if isinstance(signer, ConsoleUser)
        else old.key_id == signer.id
    )
    path: str = old.locked_path
    draft = old.draft_sealed
    forget_draft(old)
    if not same or old.expires_at <= utcnow() or old.id == new.id:
        return None
    new.locked_path, new.draft_sealed = path, draft
    return path


def take_draft(signed: Signed, settings: Settings, path: str) -> str:
    """The draft kept for the page at ``path`` (once: it is forgotten as it is handed out)."""
    row = signed.row
    if row.locked_path is None or row.locked_path.split("?", 1)[0] != path:
        return ""
    sealed = row.draft_sealed
    forget_draft(row)
    try:
        return unseal(settings, sealed) if sealed else ""
    except ValueError:
        return ""  # sealed under a token secret that has changed since


def csrf_ok(signed: Signed, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(signed.csrf_token.encode(), (given or "").encode())


def revoke(row: ConsoleSession) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()


def sign_out(row: ConsoleSession) -> None:
    """Signed out: the session ends and keeps no draft."""
    forget_draft(row)
    revoke(row)


def new_pre_token() -> str:
    return secrets.token_urlsafe(24)


def session_id(signed: Signed) -> uuid.UUID:
    return signed.row.id
