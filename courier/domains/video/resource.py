"""``video-channels`` (visits) with their actions, ``video-participants`` and
``video-compositions`` (docs/VIDEO.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.core.auth import Permission
from courier.domains.video import inbound as _inbound  # noqa: F401  (registers the handlers)
from courier.domains.video import repository as repo
from courier.domains.video.schemas import (
    CHANNEL_TYPE,
    COMPOSITION_TYPE,
    PARTICIPANT_TYPE,
    AudioStatesBody,
    Credentials,
    FinalizeBody,
    FinalizeV2Body,
    ReminderBody,
    VideoChannelCreate,
    VideoChannelRead,
    VideoChannelUpdate,
    VideoCompositionRead,
    VideoParticipantRead,
    VideoParticipantUpdate,
)
from courier.domains.video.service import (
    VisitService,
    compositions_service,
    participants_service,
    visits_service,
)
from courier.jsonapi import query as q
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.video import VideoChannel, VideoComposition, VideoParticipant, VisitState

STATES = [s.value for s in VisitState]


def _takes_part(stmt: Select[Any], value: Any, _ctx: Context) -> Select[Any]:
    return stmt.where(repo.takes_part(value))


def _participants_take_part(stmt: Select[Any], value: Any, _ctx: Context) -> Select[Any]:
    return stmt.where(repo.takes_part(value, VideoParticipant.video_channel_id))


video_channels = register(
    ResourceSpec(
        type_name=CHANNEL_TYPE,
        model=VideoChannel,
        read_schema=VideoChannelRead,
        create_schema=VideoChannelCreate,
        update_schema=VideoChannelUpdate,
        service=visits_service,
        repository=repo.visits,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.Filter(
                "individual-id",
                q.parse_uuid,
                _takes_part,
                "The individual whose visits to list (a participant)",
                required=True,
                schema={"type": "string", "format": "uuid"},
            ),
            q.one_of(
                "filter[states]",
                VideoChannel.state,
                STATES,
                "Visits in these states: open, scheduled, terminated (comma-separated or repeated)",
            ),
        ],
        sorts={
            "created-at": VideoChannel.created_at,
            "appointment-start": VideoChannel.appointment_start,
        },
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE, Op.UPDATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "Video visits of an individual (individual-id required; filter[states])",
            Op.GET: "Get one video visit",
            Op.CREATE: "Create a video visit (participants, appointment, recorded, appless, "
            "with-email); its room is created by a job",
            Op.UPDATE: "Modify a video visit (appointment-start, appointment-duration, note, "
            "recorded)",
        },
        singular="video channel",
        tag="video",
        actions=[
            ActionSpec(
                "get-credentials",
                visits_service.do_credentials,
                summary="Access token to join the visit (individual-id required with an API "
                "key): participants only, within the join window",
                method="GET",
                permission=Permission.COMMUNICATE,
                individuals=True,
                response=Credentials,
            ),
            ActionSpec(
                "participant-audio-states",
                visits_service.do_audio_states,
                summary="Mute or unmute participants (a provider taking part); the engine "
                "applies it",
                body=AudioStatesBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            ),
            ActionSpec(
                "reminder-timer",
                visits_service.do_reminder_timer,
                summary="Remind the participants before the start (push, SMS, email by their "
                "preferences)",
                body=ReminderBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "terminate",
                visits_service.do_terminate,
                summary="End the visit (the engine ends the room; a recorded visit is composed)",
                body=EmptyBody,
                permission=Permission.COMMUNICATE,
            ),
            ActionSpec(
                "finalize-encounter",
                visits_service.do_finalize,
                summary="Finalize the clinical encounter of the visit (once; again: 409)",
                body=FinalizeBody,
                permission=Permission.COMMUNICATE,
                individuals=True,
            ),
        ],
    )
)


class _V2Service(VisitService):
    """The v2 resource only serves ``finalize-encounter``; it loads and renders visits as v1."""


async def _load_visit(ctx: Context, ident: Any, *, for_update: bool = False) -> VideoChannel:
    return await visits_service.load(ctx, ident, for_update=for_update)


register(
    ResourceSpec(
        type_name=CHANNEL_TYPE,
        model=VideoChannel,
        read_schema=VideoChannelRead,
        service=_V2Service(),
        repository=repo.visits,
        ops=frozenset(),
        version="v2",
        singular="video channel",
        tag="video",
        actions=[
            ActionSpec(
                "finalize-encounter",
                visits_service.do_finalize_v2,
                summary="Finalize the clinical encounter of the visit, v2 (service-type-id); "
                "once: again is 409",
                body=FinalizeV2Body,
                permission=Permission.COMMUNICATE,
                individuals=True,
                loader=_load_visit,
                response=video_channels,
            )
        ],
    )
)


video_participants = register(
    ResourceSpec(
        type_name=PARTICIPANT_TYPE,
        model=VideoParticipant,
        read_schema=VideoParticipantRead,
        update_schema=VideoParticipantUpdate,
        service=participants_service,
        repository=repo.participants,
        ops=frozenset({Op.LIST, Op.GET, Op.UPDATE}),
        filters=[
            q.uuid_eq(
                "video-channel-id",
                VideoParticipant.video_channel_id,
                "The visit whose participants to list",
                required=True,
            ),
            q.Filter(
                "individual-id",
                q.parse_uuid,
                _participants_take_part,
                "The individual on whose behalf (a participant of the visit)",
                required=True,
                schema={"type": "string", "format": "uuid"},
            ),
        ],
        sorts={"position": VideoParticipant.position},
        default_sort=[("position", False)],
        permissions={Op.UPDATE: Permission.COMMUNICATE},
        individual_ops=frozenset({Op.UPDATE}),
        summaries={
            Op.LIST: "Participants of a visit (video-channel-id and individual-id required)",
            Op.GET: "Get one participant",
            Op.UPDATE: "Modify a participant (audio-state through the engine, disconnected, note)",
        },
        singular="video participant",
        tag="video",
    )
)

video_compositions = register(
    ResourceSpec(
        type_name=COMPOSITION_TYPE,
        model=VideoComposition,
        read_schema=VideoCompositionRead,
        service=compositions_service,
        repository=repo.compositions,
        ops=frozenset({Op.LIST, Op.GET}),
        filters=[
            q.uuid_eq(
                "video-channel-id",
                VideoComposition.video_channel_id,
                "The visit whose compositions to list",
                required=True,
            )
        ],
        sorts={"created-at": VideoComposition.created_at},
        default_sort=[("created-at", False)],
        summaries={
            Op.LIST: "Recordings composed from a visit (video-channel-id required)",
            Op.GET: "Get one composition with its processing status and media link",
        },
        singular="video composition",
        tag="video",
    )
)
