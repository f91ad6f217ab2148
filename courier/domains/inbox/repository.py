"""What the caller may see of bookmarks and badge counts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select

from courier.core.auth import Principal
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.messaging import BadgeCount, MessagingBookmark


def bookmark_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees and manages only its own bookmarks."""
    return stmt.where(MessagingBookmark.individual_id == principal.individual_id)


def owned_by(owner: uuid.UUID | None) -> ColumnElement[bool]:
    """Bookmarks of the individual ``owner``, or (None) the organization's own: those an API
    key made for nobody."""
    if owner is None:
        return MessagingBookmark.individual_id.is_(None)
    return MessagingBookmark.individual_id == owner


def badge_count_scope(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token reads only its own badge counts."""
    return stmt.where(BadgeCount.individual_id == principal.individual_id)


class BookmarkRepository(Repository[MessagingBookmark]):
    def __init__(self) -> None:
        super().__init__(MessagingBookmark, what="bookmark", individual_scope=bookmark_scope)

    def readable(self, ctx: Context) -> Select[Any]:
        """The organization's bookmarks; an ``individual-id`` narrows them to that person's."""
        stmt = super().readable(ctx)
        if ctx.acting_individual_id is not None:
            stmt = stmt.where(MessagingBookmark.individual_id == ctx.acting_individual_id)
        return stmt


badge_counts_repository = Repository(
    BadgeCount, what="badge count", individual_scope=badge_count_scope
)
