"""Choosing a text by the reader's language: ``message-js`` (``{"en_US": ..., "es_US": ...}``).

Used by bulk messages and auto-responders. A reader's locale is their individual's, else the
locale of their login (the user whose primary individual they are), else of the user who
manages them (a parent for a child). Matching, for a locale ``es-MX``:

1. the same language and region (``es_MX``, ``es-MX``, any case);
2. the bare language (``es``);
3. the same language in any region (``es_US``), the first in sorted order;
4. none: the caller's fallback (the plain ``message``).

Blank entries never match.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from courier.domains.messaging import repository as repo
from courier.domains.messaging.repository import CHUNK

_SEPARATOR = re.compile(r"[-_]")


def split_locale(tag: str) -> tuple[str, str | None]:
    """``("es", "MX")`` for ``es-MX``, ``es_mx`` or ``es-419``; ``("es", None)`` for ``es``."""
    parts = _SEPARATOR.split(tag.strip())
    language = parts[0].lower()
    region = next(
        (p.upper() for p in parts[1:] if len(p) == 2 or (len(p) == 3 and p.isdigit())), None
    )
    return language, region


def choose_text_key(texts: Mapping[str, str], locale: str | None) -> str | None:
    """The key of ``texts`` for a reader of ``locale``, or None when none fits."""
    if not locale or not locale.strip():
        return None
    language, region = split_locale(locale)
    candidates = [(key, split_locale(key)) for key in sorted(texts) if texts[key].strip()]
    for key, (lang, reg) in candidates:
        if lang == language and reg == region and region is not None:
            return key
    for key, (lang, reg) in candidates:
        if lang == language and reg is None:
            return key
    for key, (lang, _reg) in candidates:
        if lang == language:
            return key
    return None


async def reader_locales(
    session: AsyncSession, organization_id: uuid.UUID, individual_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str | None]:
    """Each individual's locale: their own, else their login's, else their manager's."""
    wanted = list(dict.fromkeys(individual_ids))
    found: dict[uuid.UUID, str | None] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = await repo.locales_and_owners(session, organization_id, chunk)
        own: dict[uuid.UUID, str] = {}
        for individual_id, login_locale in await repo.login_locales_newest_first(
            session, organization_id, chunk
        ):
            own[individual_id] = login_locale  # the last written is the oldest login
        managers = [owner for _i, locale, owner in rows if not locale and owner is not None]
        managed: dict[uuid.UUID, str] = {}
        if managers:
            for user_id, manager in await repo.user_locales(session, organization_id, managers):
                if manager:
                    managed[user_id] = manager
        for ident, locale, owner in rows:
            found[ident] = locale or own.get(ident) or (managed.get(owner) if owner else None)
    return found
