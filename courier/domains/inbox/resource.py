"""Bookmarks and badge counts, declared for the route factory.

``messaging-bookmarks``: list (``filter[channel-id]``, ``organization-id``, ``individual-id``),
get, create, delete. Readable by every role; created and removed by staff, admin and
individual tokens (their own only).

``badge-counts``: get and create (create or replace) here; the list, whose ``individual-id``
is required with an API key, is written by hand in ``endpoints.py``. Individual tokens read
their own; setting needs a staff or admin key.
"""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.inbox.schemas import (
    BADGE_COUNTS,
    BOOKMARKS,
    BadgeCountRead,
    BadgeCountSet,
    BookmarkCreate,
    BookmarkRead,
)
from courier.domains.inbox.service import (
    BadgeCountService,
    BookmarkService,
    badge_count_scope,
    bookmark_scope,
)
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.messaging import BadgeCount, MessagingBookmark

bookmarks = register(
    ResourceSpec(
        type_name=BOOKMARKS,
        model=MessagingBookmark,
        read_schema=BookmarkRead,
        create_schema=BookmarkCreate,
        service=BookmarkService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.DELETE}),
        filters=[
            q.uuid_eq(
                "filter[channel-id]",
                MessagingBookmark.channel_id,
                "Bookmarks of messages in this channel",
            ),
        ],
        sorts={"created-at": MessagingBookmark.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE, Op.DELETE: Permission.COMMUNICATE},
        individual_scope=bookmark_scope,
        summaries={
            Op.LIST: "List bookmarks (filter[channel-id]; individual-id: one individual's)",
            Op.GET: "Get one bookmark",
            Op.CREATE: "Bookmark a message in a channel (allow-multi-message)",
            Op.DELETE: "Remove a bookmark",
        },
        singular="bookmark",
        tag="inbox",
    )
)

badge_counts = register(
    ResourceSpec(
        type_name=BADGE_COUNTS,
        model=BadgeCount,
        read_schema=BadgeCountRead,
        create_schema=BadgeCountSet,
        service=BadgeCountService(),
        ops=frozenset({Op.GET, Op.CREATE}),
        permissions={Op.CREATE: Permission.COMMUNICATE},
        individual_scope=badge_count_scope,
        summaries={
            Op.GET: "Get one badge count",
            Op.CREATE: "Set a badge count of an individual (creates or replaces its type)",
        },
        singular="badge count",
        tag="inbox",
    )
)
