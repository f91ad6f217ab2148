"""Credentials: the master key, API keys (Bearer or Basic) and individual access tokens.

A request's credentials become a :class:`Principal`; every route then asks the principal for a
:class:`Permission`. Roles (CONVENTIONS.md): ``admin`` may do everything in its organization,
``staff`` communicates and reads people, ``readonly`` reads. An individual token acts as one
person and is admitted only where a resource declares how to narrow rows to that person.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import forbidden, unauthorized
from courier.core.key_cache import BOOKKEEPING_OPTION, KeyCache, KeyRow
from courier.core.tenancy import unscoped
from courier.core.time import utcnow
from courier.models.api_key import ApiKey


class Role(enum.StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    READONLY = "readonly"


class Permission(enum.StrEnum):
    READ = "read"  # read the organization's resources
    COMMUNICATE = "communicate"  # messaging, texts, calls, video, notifications
    MANAGE = "manage"  # people, configuration, keys, operations
    MASTER = "master"  # create organizations (the master key only)


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({Permission.READ, Permission.COMMUNICATE, Permission.MANAGE}),
    Role.STAFF: frozenset({Permission.READ, Permission.COMMUNICATE}),
    Role.READONLY: frozenset({Permission.READ}),
}


class PrincipalKind(enum.StrEnum):
    MASTER = "master"
    API_KEY = "api-key"
    INDIVIDUAL = "individual-token"
    # A care-team member's personal console login (courier.console): a role like a key's,
    # and the person it is (``individual_id``), whom the audit log names.
    CONSOLE_USER = "console-user"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    organization_id: uuid.UUID | None
    role: Role | None = None
    key_id: uuid.UUID | None = None
    individual_id: uuid.UUID | None = None
    token_id: str | None = None
    console_user_id: uuid.UUID | None = None

    @property
    def actor_id(self) -> str:
        if self.kind is PrincipalKind.MASTER:
            return "master"
        if self.kind is PrincipalKind.API_KEY:
            return str(self.key_id)
        return str(self.individual_id)

    @property
    def rate_key(self) -> str:
        """Whose request budget this request spends."""
        if self.kind is PrincipalKind.INDIVIDUAL:
            return f"individual:{self.individual_id}"
        if self.kind is PrincipalKind.CONSOLE_USER:
            return f"console-user:{self.console_user_id}"
        return f"{self.kind}:{self.key_id or 'master'}"

    @property
    def is_individual(self) -> bool:
        return self.kind is PrincipalKind.INDIVIDUAL

    def can(self, permission: Permission) -> bool:
        if self.kind is PrincipalKind.MASTER:
            return True
        if self.kind is PrincipalKind.INDIVIDUAL:
            return permission in {Permission.READ, Permission.COMMUNICATE}
        assert self.role is not None
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        """403 unless the credential holds ``permission``; the error names what would have
        worked (the roles that hold it, or the master key)."""
        if self.can(permission):
            return
        if permission is Permission.MASTER:
            raise forbidden(
                "this operation needs the master key (COURIER_MASTER_KEY); "
                f"this credential is {self._described()}"
            )
        roles = [role.value for role in Role if permission in ROLE_PERMISSIONS[role]]
        raise forbidden(
            f"this operation needs the {permission.value} permission: an API key with role "
            f"{' or '.join(roles)}; this credential is {self._described()}"
        )

    def _described(self) -> str:
        if self.kind is PrincipalKind.INDIVIDUAL:
            return "an individual access token (it may read and communicate as its individual)"
        if self.kind is PrincipalKind.API_KEY:
            return f"an API key with role {self.role.value if self.role else 'none'}"
        if self.kind is PrincipalKind.CONSOLE_USER:
            return f"a console login with role {self.role.value if self.role else 'none'}"
        return "the master key"

    def require_organization(self) -> uuid.UUID:
        """The organization the request acts in; the master key has none of its own."""
        if self.organization_id is None:
            raise forbidden("the master key manages organizations and keys only; use an API key")
        return self.organization_id


# --- API key secrets -------------------------------------------------------------------------

KEY_PREFIX = "ck_"


def new_key_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a fast hash is as safe as a slow one and keeps auth cheap.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# --- Individual access tokens ----------------------------------------------------------------

TOKEN_ALGORITHM = "HS256"
TOKEN_AUDIENCE = "courier:individual"


def token_secret(settings: Settings) -> str:
    """The configured signing secret, or one generated once and kept in the data directory."""
    if settings.token_secret:
        return settings.token_secret
    path = Path(settings.data_dir) / "token-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = secrets.token_urlsafe(48)
        try:
            with path.open("x", encoding="utf-8") as handle:  # first writer wins
                handle.write(candidate)
            path.chmod(0o600)
        except FileExistsError:
            pass
    return path.read_text(encoding="utf-8").strip()


def mint_individual_token(
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    issued_by: uuid.UUID | None,
    ttl: timedelta,
    token_id: str | None = None,
) -> tuple[str, datetime, str]:
    now = utcnow()
    expires = now + ttl
    token_id = token_id or secrets.token_hex(8)
    claims = {
        "sub": str(individual_id),
        "org": str(organization_id),
        "iss": str(issued_by) if issued_by else "master",
        "aud": TOKEN_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": token_id,
    }
    import jwt  # and the cryptography it loads (~9 MB): on the first token minted or read

    return jwt.encode(claims, token_secret(settings), algorithm=TOKEN_ALGORITHM), expires, token_id


def _verify_individual_token(settings: Settings, token: str) -> dict[str, str]:
    import jwt  # see mint_individual_token

    try:
        claims: dict[str, str] = jwt.decode(
            token,
            token_secret(settings),
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            options={"require": ["exp", "sub", "org", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise unauthorized("the access token has expired") from exc
    except jwt.PyJWTError as exc:
        raise unauthorized("the access token is invalid") from exc
    return claims


# --- Authentication --------------------------------------------------------------------------

LAST_USED_RESOLUTION = timedelta(minutes=1)


async def authenticate(
    session: AsyncSession,
    settings: Settings,
    authorization: str | None,
    cache: KeyCache | None = None,
) -> Principal:
    """Turn an ``Authorization`` header into a principal, or raise 401. ``cache``: the
    application's recently authenticated keys (:mod:`courier.core.key_cache`)."""
    if not authorization:
        raise unauthorized("credentials are required: Authorization: Bearer <key>")
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if not credential:
        raise unauthorized("malformed Authorization header")
    scheme = scheme.lower()
    if scheme == "bearer":
        if settings.master_key and hmac.compare_digest(
            credential.encode(), settings.master_key.encode()
        ):
            return Principal(PrincipalKind.MASTER, None)
        if credential.count(".") == 2:
            claims = _verify_individual_token(settings, credential)
            key = None
            if claims["iss"] != "master":
                key = await _load_key(session, claims["iss"], cache)
                if key is None:
                    raise unauthorized("the key that issued this token was revoked")
            try:
                return Principal(
                    PrincipalKind.INDIVIDUAL,
                    uuid.UUID(claims["org"]),
                    individual_id=uuid.UUID(claims["sub"]),
                    key_id=key.id if key else None,
                    token_id=str(claims.get("jti", "")),
                )
            except ValueError as exc:
                raise unauthorized("the access token is invalid") from exc
        secret_hash = hash_secret(credential)
        row = cache.by_hash(secret_hash) if cache is not None else None
        if row is None:
            generation = cache.generation if cache is not None else 0
            row = await _read_key(session, ApiKey.secret_hash == secret_hash)
            if row is not None and cache is not None:
                cache.put(row, generation)
        return await _key_principal(session, row, cache)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise unauthorized("malformed Basic credentials") from exc
        key_id, sep, secret = decoded.partition(":")
        if not sep:
            raise unauthorized("malformed Basic credentials")
        row = await _load_key(session, key_id, cache)
        if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
            raise unauthorized("unknown API key or wrong secret")
        return await _key_principal(session, row, cache)
    raise unauthorized("unsupported authorization scheme; use Bearer or Basic")


_KEY_COLUMNS = (
    ApiKey.id,
    ApiKey.organization_id,
    ApiKey.role,
    ApiKey.secret_hash,
    ApiKey.revoked_at,
    ApiKey.expires_at,
    ApiKey.last_used_at,
)


async def _read_key(session: AsyncSession, where: ColumnElement[bool]) -> KeyRow | None:
    stmt = cast("Select[Any]", select(*_KEY_COLUMNS).where(where))
    found = (await session.execute(unscoped(stmt, "authentication"))).first()
    return KeyRow(*found) if found is not None else None


async def _load_key(session: AsyncSession, key_id: str, cache: KeyCache | None) -> KeyRow | None:
    """The usable key ``key_id`` (not revoked, not expired), else None."""
    try:
        ident = uuid.UUID(key_id)
    except ValueError:
        return None
    row = cache.by_id(ident) if cache is not None else None
    if row is None:
        generation = cache.generation if cache is not None else 0
        row = await _read_key(session, ApiKey.id == ident)
        if row is not None and cache is not None:
            cache.put(row, generation)
    if row is None or not _usable(row):
        return None
    return row


def _usable(key: KeyRow) -> bool:
    now = utcnow()
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


async def _key_principal(
    session: AsyncSession, key: KeyRow | None, cache: KeyCache | None
) -> Principal:
    if key is None:
        raise unauthorized("unknown API key")
    if key.revoked_at is not None:
        raise unauthorized("this API key has been revoked")
    now = utcnow()
    if key.expires_at is not None and key.expires_at <= now:
        raise unauthorized("this API key has expired")
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # Kept to the minute: one write a minute per key, not one per request.
        stmt = update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now)
        await session.execute(
            unscoped(stmt, "authentication").execution_options(
                **{BOOKKEEPING_OPTION: True}, synchronize_session=False
            )
        )
        if cache is not None:
            cache.put(replace(key, last_used_at=now), cache.generation)
    return Principal(PrincipalKind.API_KEY, key.organization_id, role=Role(key.role), key_id=key.id)
