"""Bookmarks and badge counts, declared for the route factory.

``messaging-bookmarks``: list (``filter[channel-id]``, ``organization-id``, ``individual-id``),
get, create, delete. Readable by every role; created and removed by staff, admin and
individual tokens (their own only). A key that names no individual makes the organization's
bookmark.

``badge-counts``: get and create (create or replace), and the list, a declared collection
read whose ``individual-id`` is required with an API key. Individual tokens read their own;
setting needs a staff or admin key.

``POST /v1/individuals/{id}/recalculate-communication-summary/``: the summary repair, declared
on ``individuals``.
"""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.inbox.repository import BookmarkRepository, badge_counts_repository
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
    do_recalculate_communication_summary,
)
from courier.domains.people.resource import individuals
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody, Listing
from courier.jsonapi.resource import Op, ResourceSpec, add_actions, register
from courier.models.messaging import BadgeCount, MessagingBookmark

bookmarks = register(
    ResourceSpec(
        type_name=BOOKMARKS,
        model=MessagingBookmark,
        read_schema=BookmarkRead,
        create_schema=BookmarkCreate,
        service=BookmarkService(),
        repository=BookmarkRepository(),
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

badge_count_service = BadgeCountService()

badge_counts = register(
    ResourceSpec(
        type_name=BADGE_COUNTS,
        model=BadgeCount,
        read_schema=BadgeCountRead,
        create_schema=BadgeCountSet,
        service=badge_count_service,
        ops=frozenset({Op.GET, Op.CREATE}),
        permissions={Op.CREATE: Permission.COMMUNICATE},
        repository=badge_counts_repository,
        summaries={
            Op.GET: "Get one badge count",
            Op.CREATE: "Set a badge count of an individual (creates or replaces its type)",
        },
        singular="badge count",
        tag="inbox",
        actions=[
            ActionSpec(
                "",
                badge_count_service.do_list,
                summary="Badge counts of an individual (individual-id required with an API key)",
                method="GET",
                on="collection",
                permission=Permission.READ,
                individuals=True,
                listing=Listing(
                    BADGE_COUNTS,
                    BadgeCountRead,
                    order=lambda: [BadgeCount.type, BadgeCount.id],
                    filters=[q.organization(BadgeCount.organization_id)],
                    present=badge_count_service.present,
                ),
                operation_id=f"list-v1-{BADGE_COUNTS}",
            )
        ],
    )
)

add_actions(
    individuals,
    ActionSpec(
        "recalculate-communication-summary",
        do_recalculate_communication_summary,
        summary="Recompute an individual's communication summary",
        body=EmptyBody,
        permission=Permission.COMMUNICATE,
        operation_id="recalculate-v1-individuals-communication-summary",
        description="Repair the counters behind the individual's unread counts (staff and "
        "admin keys).\n\nEvery channel the individual subscribes to gets its ``last_seq``, last "
        "message id and time and its count of providers' messages recomputed from its "
        "messages, any read horizon past its channel's last message is clamped to it, and "
        "every horizon's count of providers' messages and every channel's count of "
        "subscribers recounted. Returns the individual; "
        "``meta`` says how many rows were repaired.",
    ),
)
