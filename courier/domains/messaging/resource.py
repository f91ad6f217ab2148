"""Secure messaging: ``messaging-channels`` and ``messaging-messages``.

The route factory serves list/get/create of channels and list/get/create/patch of messages,
and every declared action, the channel PATCH among them (its ``attributes`` is a list of
JSON-Patch operations, not an attributes object, so it is an action with its own body).
"""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.messaging import channels as channel_rules
from courier.domains.messaging import messages as message_rules
from courier.domains.messaging import reactions
from courier.domains.messaging.channels import channels, participant_filter
from courier.domains.messaging.messages import (
    accept_only,
    acknowledged_filter,
    messages,
    text_filter,
)
from courier.domains.messaging.repository import channel_scope, message_scope
from courier.domains.messaging.schemas import (
    CHANNEL_TYPE,
    MESSAGE_TYPE,
    AckBody,
    ChannelCreate,
    ChannelPatchRequest,
    ChannelRead,
    MessageCreate,
    MessageRead,
    MessageUpdate,
    PreferencesBody,
    ProfileDocument,
    ReactionBody,
    ReceiptsRead,
    SmsBody,
    SubscribersBody,
)
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.messaging import (
    CHANNEL_ACTIVITY,
    MESSAGE_ORDER,
    MessagingChannel,
    MessagingMessage,
)

BOOLEAN = {"type": "boolean"}
UUID = {"type": "string", "format": "uuid"}

messaging_channels = register(
    ResourceSpec(
        type_name=CHANNEL_TYPE,
        model=MessagingChannel,
        read_schema=ChannelRead,
        create_schema=ChannelCreate,
        service=channels,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.boolean("filter[archived]", MessagingChannel.archived, "Archived channels or not"),
            q.time_window("last-modified-time", MessagingChannel.last_modified_at),
            q.boolean("filter[floating]", MessagingChannel.floating, "Floating channels or not"),
            q.uuid_eq(
                "filter[individual-group-id]",
                MessagingChannel.individual_group_id,
                "Channels of this individual group",
            ),
            q.Filter(
                "participant-id",
                q.parse_uuid,
                participant_filter,
                "Channels this individual (e.g. a patient) subscribes to",
                schema=UUID,
            ),
            q.Filter(
                "use-group-name",
                q.parse_bool,
                accept_only,
                "Name a group's channel after its group (default true)",
                schema={**BOOLEAN, "default": True},
            ),
        ],
        sorts={
            "last-activity": CHANNEL_ACTIVITY,
            "created-at": MessagingChannel.created_at,
            "last-modified-time": MessagingChannel.last_modified_at,
        },
        default_sort=[("last-activity", True)],
        page=q.PageBounds(default=50, maximum=50),
        individual_scope=channel_scope,
        permissions={Op.CREATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "List channels, newest activity first; with individual-id (or an "
            "individual token) only the caller's channels, with their unread counts",
            Op.GET: "Get one channel (individual-id: the caller's point of view)",
            Op.CREATE: "Create a channel (staff or admin key): subscribers are the group's "
            "members plus individual-ids",
        },
        singular="messaging channel",
        tag="messaging",
        # Staff and admin keys manage channels (COMMUNICATE, no individual tokens); anyone who
        # communicates sets their own preferences; readers see profiles.
        actions=[
            ActionSpec(
                "",
                channel_rules.do_patch,
                summary="Modify a channel: attributes is a list of JSON-Patch operations",
                body=ChannelPatchRequest,
                method="PATCH",
                permission=Permission.COMMUNICATE,
                operation_id=f"update-v1-{CHANNEL_TYPE}",
            ),
            ActionSpec(
                "archive",
                channel_rules.do_archive,
                summary="Archive a channel (nothing more can be posted in it)",
                body=EmptyBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "unarchive",
                channel_rules.do_unarchive,
                summary="Unarchive a channel",
                body=EmptyBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "subscribe",
                channel_rules.do_subscribe,
                summary="Add subscribers (individual-ids)",
                body=SubscribersBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "unsubscribe",
                channel_rules.do_unsubscribe,
                summary="Remove subscribers (individual-ids)",
                body=SubscribersBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "set-preferences",
                channel_rules.do_set_preferences,
                summary="Modify an individual's channel preferences (notify: all, mentions, "
                "none; pinned)",
                body=PreferencesBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            ),
            ActionSpec(
                "set-sms",
                channel_rules.do_set_sms,
                summary="Enable/disable the SMS path of a channel, with an initial message",
                body=SmsBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "get-profile",
                channel_rules.do_get_profile,
                summary="Profile (photo) of an individual as seen in this channel",
                method="GET",
                permission=Permission.READ,
                individuals=True,
                response=ProfileDocument,
                parameters=[
                    q.Filter(
                        "profile-individual-id",
                        q.parse_uuid,
                        accept_only,
                        "Whose profile",
                        schema=UUID,
                        required=True,
                    )
                ],
            ),
        ],
    )
)

messaging_messages = register(
    ResourceSpec(
        type_name=MESSAGE_TYPE,
        model=MessagingMessage,
        read_schema=MessageRead,
        create_schema=MessageCreate,
        update_schema=MessageUpdate,
        service=messages,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.uuid_eq(
                "channel-id", MessagingMessage.channel_id, "The channel's messages", required=True
            ),
            q.Filter(
                "acknowledged",
                q.parse_bool,
                acknowledged_filter,
                "Messages the caller (individual-id) has read (true) or not (false)",
                schema=BOOLEAN,
            ),
            q.time_window("posted-time", MessagingMessage.posted_time),
            q.time_window("last-modified-time", MessagingMessage.last_modified_at),
            q.Filter(
                "filter[text]",
                q.parse_text(255),
                text_filter,
                "Messages whose text contains this (any case; removed messages never match)",
                schema={"type": "string", "maxLength": 255},
            ),
            q.uuid_eq("user-id", MessagingMessage.user_id, "Messages posted by this user"),
            q.Filter(
                "include-read-receipts",
                q.parse_bool,
                accept_only,
                "Show who has read each message (read-receipts)",
                schema={**BOOLEAN, "default": False},
            ),
            q.Filter(
                "include-phrases",
                q.parse_bool,
                accept_only,
                "Show each message's key phrases",
                schema={**BOOLEAN, "default": False},
            ),
            q.Filter(
                "thumbnail",
                q.parse_bool,
                accept_only,
                "Thumbnails of attachments",
                schema={**BOOLEAN, "default": False},
            ),
        ],
        sorts={"seq": MESSAGE_ORDER},  # drafts (no seq yet) sort as the newest
        default_sort=[("seq", True)],
        individual_scope=message_scope,
        permissions={Op.CREATE: Permission.COMMUNICATE, Op.UPDATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "Messages of a channel (channel-id), newest first",
            Op.GET: "Get one message",
            Op.CREATE: "Post a message, or save a draft (draft: true)",
            Op.UPDATE: "Edit a message's text, post a draft (draft: false), or remove it",
        },
        singular="messaging message",
        tag="messaging",
        # The acting individual (individual-id, or the token's own) must subscribe to the
        # message's channel (a key names them in the body).
        actions=[
            ActionSpec(
                "ack",
                message_rules.do_ack,
                summary="Acknowledge a message and all before it (allow-past to move back)",
                body=AckBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            ),
            ActionSpec(
                "add-reaction",
                reactions.do_add_reaction,
                summary="Add a reaction (dislike, like, lol, love, sad, wow)",
                body=ReactionBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            ),
            ActionSpec(
                "delete-reaction",
                reactions.do_delete_reaction,
                summary="Remove a reaction",
                body=ReactionBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            ),
            ActionSpec(
                "get-receipts",
                message_rules.do_get_receipts,
                summary="Read and unread receipts of a message",
                method="GET",
                permission=Permission.READ,
                individuals=True,
                response=ReceiptsRead,
            ),
        ],
    )
)
