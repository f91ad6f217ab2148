"""The rules of video visits (docs/VIDEO.md).

- A visit (``video-channels``) has participants (individuals of the organization), an optional
  planned ``appointment`` (start, duration, join-start) and one room on the configured video
  engine, created by the job ``video.create-room`` under the visit's id (providers are called
  from jobs only, except the local minting of access tokens).
- States: ``scheduled`` → ``open`` (the first participant connected, as the engine reports) →
  ``terminated`` (``terminate``, or the engine ended the room). Every change is an event.
- ``get-credentials`` mints an access token for one participant, within the join window
  (``join-start`` to 60 minutes after the planned end; without an appointment: until the visit
  ends); others are refused (403), outside the window 409 saying when it opens or that it ended.
- ``participant-audio-states``: a provider taking part mutes or unmutes others; the engine
  applies it (job ``video.set-audio``) and reports it back, which sets ``audio-state``.
- ``finalize-encounter`` (v1, v2): the encounter (author, note, service type, times, who took
  part) is stored on the visit and published as ``video-channels.encounter-finalized`` for EHR
  integration, once: a conditional UPDATE makes a second (even concurrent) one a 409.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import ApiError, ErrorItem, conflict, forbidden, invalid_parameter
from courier.core.time import format_timestamp, utcnow
from courier.domains.appointments.repository import appointments_repository
from courier.domains.people.repository import require_individual, require_individuals
from courier.domains.templates.repository import find_template
from courier.domains.video import repository as repo
from courier.domains.video.schemas import (
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
from courier.jobs import enqueue
from courier.jsonapi.actions import EmptyBody
from courier.jsonapi.changes import Change, Changed, change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.repository import Repository
from courier.jsonapi.resource import CrudService
from courier.models.template import Template
from courier.models.user import User
from courier.models.video import (
    AudioState,
    CompositionStatus,
    VideoChannel,
    VideoComposition,
    VideoParticipant,
    VisitState,
)
from courier.providers.common import providers_for, public_base
from courier.providers.storage import storage_for
from courier.providers.video import VIDEO
from courier.providers.video.base import Room, RoomStatus

CHANNELS = "video-channels"
PARTICIPANTS = "video-participants"
COMPOSITIONS = "video-compositions"
CREATE_ROOM_JOB = "video.create-room"
END_ROOM_JOB = "video.end-room"
SET_AUDIO_JOB = "video.set-audio"
REMIND_JOB = "video.remind"
INVITE_JOB = "video.invite"
JOIN_LEAD = timedelta(minutes=10)  # joining opens this long before the start (default)
JOIN_GRACE = timedelta(minutes=60)  # ... and closes this long after the planned end
MAX_TOKEN_TTL = timedelta(hours=4)
MIN_TOKEN_TTL = timedelta(minutes=1)
REMINDER_TEMPLATE = "video-visit-reminder"
PROVIDER_TYPES = {"provider"}


# --- the join window ---------------------------------------------------------------------------


def join_window(visit: VideoChannel) -> tuple[datetime, datetime | None]:
    """When participants may join: from ``join-start`` (default: 10 minutes before the
    start; without an appointment: at once) to 60 minutes after the planned end (None: until
    the visit ends)."""
    start = visit.appointment_start
    if start is None:
        return (visit.join_start or visit.created_at), None
    opens = visit.join_start or start - JOIN_LEAD
    ends = start + timedelta(minutes=visit.appointment_duration or 30) + JOIN_GRACE
    return opens, ends


def join_url(settings: Settings, visit_id: uuid.UUID) -> str:
    """Where a participant's app gets the credentials to join (an individual token's GET)."""
    return f"{public_base(settings)}/v1/video-channels/{visit_id}/get-credentials/"


def _unprocessable(attribute: str, detail: str, code: str) -> ApiError:
    return ApiError(
        422, [ErrorItem(detail, code, pointer=f"/data/attributes/{attribute}")], {}, False
    )


def visit_change(
    visit: VideoChannel,
    verb: str,
    audience: Sequence[uuid.UUID],
    fields: Sequence[str] = (),
    data: dict[str, Any] | None = None,
) -> Change:
    return change(
        CHANNELS,
        visit.id,
        verb,
        fields=fields,
        audience=audience,
        organization_id=visit.organization_id,
        data={"channel-state": visit.state, **(data or {})},
    )


# --- making a visit (the API and the appointments) -----------------------------------------------


async def create_visit(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    participants: Sequence[uuid.UUID],
    actor: str,
    created_by: uuid.UUID | None = None,
    appointment_id: uuid.UUID | None = None,
    start: datetime | None = None,
    duration: int | None = None,
    join_start: datetime | None = None,
    recorded: bool = False,
    appless: bool = False,
    with_email: bool = False,
    type_: str = "direct",
    subject_id: uuid.UUID | None = None,
    messaging_channel_id: uuid.UUID | None = None,
    note: str | None = None,
    max_participants: int | None = None,
) -> tuple[VideoChannel, list[VideoParticipant]]:
    """Add the visit and its participants to ``session`` and enqueue its room (and its
    invitations); the individuals must be the organization's (checked by the caller)."""
    now = utcnow()
    provider = providers_for(settings).get(VIDEO).name
    visit = VideoChannel(
        id=uuid.uuid4(),
        organization_id=organization_id,
        state=VisitState.SCHEDULED.value,
        type=type_,
        subject_id=subject_id,
        messaging_channel_id=messaging_channel_id,
        appointment_id=appointment_id,
        appointment_start=start,
        appointment_duration=duration if start is not None else None,
        join_start=join_start,
        recorded=recorded,
        appless=appless,
        with_email=with_email,
        note=note,
        max_participants=max_participants,
        provider=provider,
        reminders=[],
        created_by=created_by,
        created_by_actor=actor,
        created_at=now,
        last_modified_at=now,
    )
    session.add(visit)
    wanted = list(dict.fromkeys(participants))
    types = await repo.account_types(session, organization_id, wanted)
    await session.flush()
    rows = []
    for position, ident in enumerate(wanted):
        row = VideoParticipant(
            id=uuid.uuid4(),
            organization_id=organization_id,
            video_channel_id=visit.id,
            individual_id=ident,
            position=position,
            account_type=types.get(ident) or "participant",
            status="invited",
            audio_state=AudioState.UNMUTED.value,
            disconnected=False,
            duration=0,
            last_sequence=0,
            last_modified_at=now,
        )
        session.add(row)
        rows.append(row)
    await enqueue(
        session,
        CREATE_ROOM_JOB,
        {"visit_id": visit.id},
        organization_id=organization_id,
        dedupe_key=f"{CREATE_ROOM_JOB}:{visit.id}",
        new_key=True,
    )
    if with_email:
        await enqueue(
            session,
            INVITE_JOB,
            {"visit_id": visit.id},
            organization_id=organization_id,
            dedupe_key=f"{INVITE_JOB}:{visit.id}",
            new_key=True,
        )
    return visit, rows


async def _acting(ctx: Context, given: uuid.UUID | None, name: str) -> uuid.UUID | None:
    """The individual acting: the given one (of the organization, else 404), an individual
    token's own (another one: 403), or None."""
    principal = ctx.principal
    if given is None:
        return principal.individual_id
    if principal.is_individual and given != principal.individual_id:
        raise forbidden(f"{name}: an individual token acts only as its own individual")
    await require_individual(ctx, given, pointer=f"/data/attributes/{name}")
    return given


async def _require_exists(
    ctx: Context, repository: Repository[Any], ident: uuid.UUID, name: str
) -> None:
    if not await repository.existing_ids(ctx, [ident]):
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"{name} names nothing of this organization: {ident}",
                    "not-found",
                    pointer=f"/data/attributes/{name}",
                )
            ],
        )


# --- presenting ---------------------------------------------------------------------------------


def _user(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.id,
        "communication_preferences": dict(user.communication_preferences or {}),
        "email_verified": user.email_verified,
        "phone_verified": user.phone_verified,
        "registration_invite": None,
        "state": user.state,
    }


def composition_state(row: VideoComposition) -> str:
    if row.processing_status == CompositionStatus.FAILED.value:
        return "failed"
    return "available" if row.storage_key else "pending"


class VisitService(CrudService[VideoChannel]):
    async def present(self, ctx: Context, rows: Sequence[VideoChannel]) -> list[dict[str, Any]]:
        if not rows:
            return []
        org = ctx.organization_id
        ids = [row.id for row in rows]
        people = await repo.participants_of(ctx.session, org, ids)
        made = await repo.compositions_of(ctx.session, org, ids)
        individual_ids = [p.individual_id for rows_of in people.values() for p in rows_of]
        individuals = await repo.individuals_by_id(ctx.session, org, individual_ids)
        users = await repo.users_of(ctx.session, org, individual_ids)
        display_name = await repo.organization_display_name(ctx.session, org)
        shown: list[dict[str, Any]] = []
        for row in rows:
            opens, closes = join_window(row)
            summaries = []
            for p in people[row.id]:
                person = individuals.get(p.individual_id)
                summaries.append(
                    {
                        "id": p.id,
                        "individual_id": p.individual_id,
                        "account_type": p.account_type,
                        "audio_state": p.audio_state,
                        "disconnected": p.disconnected,
                        "connected_at": p.connected_at,
                        "encounter_id": row.encounter_id,
                        "first_name": person.first_name if person else None,
                        "last_name": person.last_name if person else None,
                        "photo": person.photo if person else None,
                        "note": p.note,
                        "status": p.status,
                        "user": _user(users.get(p.individual_id)),
                    }
                )
            attrs = {
                "channel_state": row.state,
                "type": row.type,
                "appointment": {
                    "id": row.appointment_id,
                    "start": row.appointment_start,
                    "duration": row.appointment_duration,
                    "join_start": opens if row.appointment_start is not None else row.join_start,
                    "join_end": closes,
                },
                "appless": row.appless,
                "with_email": row.with_email,
                "recorded": row.recorded,
                "note": row.note,
                "max_participants": row.max_participants,
                "duration": row.duration,
                "participants": summaries,
                "compositions": [
                    {
                        "id": c.id,
                        "created_at": c.created_at,
                        "last_modified_at": c.last_modified_at,
                        "duration": c.duration,
                        "size": c.size,
                        "processing_pct": c.processing_pct,
                        "processing_status": c.processing_status,
                        "status": composition_state(c),
                    }
                    for c in made[row.id]
                ],
                "subject_id": row.subject_id,
                "messaging_channel_id": row.messaging_channel_id,
                "scheduler_id": row.created_by,
                "created_by": row.created_by,
                "encounter_id": row.encounter_id,
                "encounter": row.encounter,
                "observation_id": None,
                "join_url": join_url(ctx.settings, row.id),
                "room_name": str(row.id),
                "provider": row.provider,
                "reminders": list(row.reminders or []),
                "organization_id": row.organization_id,
                "organization_display_name": display_name,
                "created_at": row.created_at,
                "opened_at": row.opened_at,
                "terminated_at": row.terminated_at,
                "last_modified_at": row.last_modified_at,
            }
            shown.append(attrs)
        return render_rows(VideoChannelRead, shown)

    # --- create / update -------------------------------------------------------------------

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[VideoChannel]:
        assert isinstance(attrs, VideoChannelCreate)
        await require_individuals(ctx, attrs.participants, "/data/attributes/participants")
        if len(set(attrs.participants)) != len(attrs.participants):
            raise ApiError(
                400,
                [
                    ErrorItem(
                        "participants names an individual more than once",
                        "duplicate-participant",
                        pointer="/data/attributes/participants",
                    )
                ],
                {},
                True,
            )
        if ctx.principal.is_individual and ctx.principal.individual_id not in attrs.participants:
            raise forbidden("an individual token may schedule only visits it takes part in")
        if attrs.max_participants is not None and attrs.max_participants < len(attrs.participants):
            raise _unprocessable(
                "max-participants",
                "max-participants is less than the number of participants",
                "too-many-participants",
            )
        if attrs.subject_id is not None:
            await require_individual(ctx, attrs.subject_id, pointer="/data/attributes/subject-id")
        if attrs.messaging_channel_id is not None:
            await _require_exists(
                ctx, repo.messaging_channels, attrs.messaging_channel_id, "messaging-channel-id"
            )
        created_by = await _acting(ctx, attrs.created_by, "created-by")
        appointment = attrs.appointment
        if appointment is not None:
            if appointment.id is not None:
                await _require_exists(ctx, appointments_repository, appointment.id, "appointment")
            if appointment.join_start is not None and appointment.join_start > appointment.start:
                raise invalid_attribute_pointer(
                    "appointment/join-start", "must not be after appointment.start"
                )
        visit, _rows = await create_visit(
            ctx.session,
            ctx.settings,
            organization_id=ctx.organization_id,
            participants=attrs.participants,
            actor=ctx.principal.actor_id,
            created_by=created_by,
            appointment_id=appointment.id if appointment else None,
            start=appointment.start if appointment else None,
            duration=appointment.duration if appointment else None,
            join_start=appointment.join_start if appointment else None,
            recorded=attrs.recorded,
            appless=attrs.appless,
            with_email=attrs.with_email,
            type_=attrs.type,
            subject_id=attrs.subject_id,
            messaging_channel_id=attrs.messaging_channel_id,
            note=attrs.note,
            max_participants=attrs.max_participants,
        )
        fields = sorted(str(f).replace("_", "-") for f in attrs.model_fields_set)
        return Changed(visit, [visit_change(visit, "created", attrs.participants, fields)])

    async def update(
        self, ctx: Context, obj: VideoChannel, attrs: WriteAttributes
    ) -> Changed[VideoChannel]:
        assert isinstance(attrs, VideoChannelUpdate)
        given = attrs.given()
        nulls = [
            ErrorItem(
                f"{name.replace('_', '-')} must not be null",
                "null-attribute",
                pointer=f"/data/attributes/{name.replace('_', '-')}",
            )
            for name in sorted(given)
            if given[name] is None and name != "note"
        ]
        if nulls:
            raise ApiError(400, nulls, {}, True)
        changed: list[str] = []
        terminated = obj.state == VisitState.TERMINATED.value
        if terminated and ({"appointment_start", "appointment_duration", "recorded"} & set(given)):
            raise conflict("the visit has ended: only its note can change", "visit-terminated")
        if "appointment_start" in given and given["appointment_start"] != obj.appointment_start:
            moved_by = (
                given["appointment_start"] - obj.appointment_start
                if obj.appointment_start is not None
                else None
            )
            obj.appointment_start = given["appointment_start"]
            if obj.join_start is not None and moved_by is not None:
                obj.join_start = obj.join_start + moved_by  # the same lead before the start
            elif obj.join_start is not None and obj.join_start > given["appointment_start"]:
                obj.join_start = None
            if obj.appointment_duration is None:
                obj.appointment_duration = 30
            changed.append("appointment-start")
        if "appointment_duration" in given and given["appointment_duration"] != (
            obj.appointment_duration
        ):
            if obj.appointment_start is None:
                raise _unprocessable(
                    "appointment-duration",
                    "the visit has no appointment start: set appointment-start too",
                    "no-appointment",
                )
            obj.appointment_duration = given["appointment_duration"]
            changed.append("appointment-duration")
        if "note" in given and given["note"] != obj.note:
            obj.note = given["note"]
            changed.append("note")
        if "recorded" in given and given["recorded"] != obj.recorded:
            if obj.state != VisitState.SCHEDULED.value:
                raise conflict("recording is decided before the visit opens", "visit-already-open")
            obj.recorded = given["recorded"]
            changed.append("recorded")
            if obj.room_sid is not None:
                # An engine records a room or not from its creation: the room not yet joined
                # is replaced by one that does (or does not) record.
                await enqueue(
                    ctx.session,
                    CREATE_ROOM_JOB,
                    {"visit_id": obj.id, "replace": obj.room_sid},
                    organization_id=obj.organization_id,
                    dedupe_key=f"{CREATE_ROOM_JOB}:{obj.id}:{uuid.uuid4().hex}",
                    new_key=True,
                )
                obj.room_sid = None
                obj.room_status = None
        if not changed:
            return Changed(obj)
        obj.last_modified_at = utcnow()
        if {"appointment-start", "appointment-duration"} & set(changed) and obj.reminders:
            await schedule_reminders(ctx.session, obj)
        audience = await audience_of(ctx.session, obj)
        return Changed(obj, [visit_change(obj, "updated", audience, changed)])

    # --- actions ---------------------------------------------------------------------------

    async def do_credentials(
        self, ctx: Context, visit: VideoChannel, body: EmptyBody | None
    ) -> Credentials:
        """An access token with which the individual (`individual-id`, required with an API
        key; an individual token: its own) joins the visit's room on the video engine. Only
        for participants (403), within the join window (409 saying when it opens or that the
        visit has ended)."""
        individual_id = ctx.acting_individual_id
        if individual_id is None:
            raise invalid_parameter("individual-id", "is required", "missing-parameter")
        return await issue_credentials(ctx.session, ctx.settings, visit, individual_id)

    async def do_audio_states(
        self, ctx: Context, visit: VideoChannel, body: AudioStatesBody
    ) -> Changed[VideoChannel]:
        """A provider taking part mutes or unmutes other participants; the video engine
        applies it and reports it back (then `audio-state` shows it)."""
        acting = body.individual_id or ctx.principal.individual_id
        if ctx.principal.is_individual and acting != ctx.principal.individual_id:
            raise forbidden("an individual token acts only as its own individual")
        if acting is not None:
            actor_row = await participant_row(ctx.session, visit, acting)
            if actor_row is None or actor_row.account_type not in PROVIDER_TYPES:
                raise forbidden("only a provider taking part in the visit mutes or unmutes others")
        if visit.state != VisitState.OPEN.value:
            raise conflict(f"the visit is {visit.state}, not open", "visit-not-open")
        people = (await repo.participants_of(ctx.session, visit.organization_id, [visit.id]))[
            visit.id
        ]
        by_id = {p.id: p for p in people} | {p.individual_id: p for p in people}
        for index, item in enumerate(body.participants):
            target = by_id.get(item.id)
            if target is None:
                raise ApiError(
                    404,
                    [
                        ErrorItem(
                            f"participants/{index}/id is no participant of this visit",
                            "not-found",
                            pointer=f"/participants/{index}/id",
                        )
                    ],
                )
            if target.disconnected or target.connected_at is None:
                raise conflict(
                    f"participant {target.id} is not connected", "participant-not-connected"
                )
        for item in body.participants:
            target = by_id[item.id]
            await request_audio(ctx.session, visit, target, item.audio_state)
        return Changed(visit)

    async def do_reminder_timer(
        self, ctx: Context, visit: VideoChannel, body: ReminderBody | None
    ) -> Changed[VideoChannel]:
        """Reminders to every participant before the start (`minutes-before`, default 15),
        by their preferences (push, SMS, email) through the user notifications."""
        body = body or ReminderBody()
        if visit.state == VisitState.TERMINATED.value:
            raise conflict("the visit has ended", "visit-terminated")
        if visit.appointment_start is None:
            raise ApiError(
                422,
                [ErrorItem("the visit has no appointment start to remind of", "no-appointment")],
            )
        if visit.appointment_start <= utcnow():
            raise conflict("the visit has already started", "visit-started")
        if body.template_id is not None:
            try:
                template = await find_template(ctx.session, ctx.organization_id, body.template_id)
            except ApiError as exc:
                raise ApiError(
                    404,
                    [
                        ErrorItem(
                            f"template-id names no template of this organization: "
                            f"{body.template_id}",
                            "not-found",
                            pointer="/template-id",
                        )
                    ],
                ) from exc
        else:
            template = await default_reminder_template(ctx.session, ctx.organization_id)
        minutes = sorted(set(body.minutes_before), reverse=True)
        visit.reminders = minutes
        visit.reminder_template_id = template.id
        visit.last_modified_at = utcnow()
        await schedule_reminders(ctx.session, visit)
        audience = await audience_of(ctx.session, visit)
        return Changed(visit, [visit_change(visit, "updated", audience, ["reminders"])])

    async def do_terminate(
        self, ctx: Context, visit: VideoChannel, body: EmptyBody | None
    ) -> Changed[VideoChannel]:
        """End the visit: nobody can join any more; the engine ends the room (a job), and a
        recorded visit gets its composition."""
        if visit.state == VisitState.TERMINATED.value:
            return Changed(visit)  # already ended: nothing more happens
        await terminate(ctx.session, visit)
        audience = await audience_of(ctx.session, visit)
        return Changed(visit, [visit_change(visit, "terminated", audience, ["channel-state"])])

    async def do_finalize(
        self, ctx: Context, visit: VideoChannel, body: FinalizeBody | None
    ) -> Changed[VideoChannel]:
        """Finalize the clinical encounter of the visit (once: again is 409)."""
        body = body or FinalizeBody()
        return await self._finalize(
            ctx,
            visit,
            "v1",
            body.individual_id,
            body.service_type_id,
            body.use_note_from_author_participant,
        )

    async def do_finalize_v2(
        self, ctx: Context, visit: VideoChannel, body: FinalizeV2Body | None
    ) -> Changed[VideoChannel]:
        """Finalize the clinical encounter of the visit, v2 (the author's participant note is
        the encounter's note when there is one, else the visit's). Once: again is 409."""
        body = body or FinalizeV2Body()
        return await self._finalize(
            ctx, visit, "v2", body.individual_id, body.service_type_id, True
        )

    async def _finalize(
        self,
        ctx: Context,
        visit: VideoChannel,
        version: str,
        author: uuid.UUID | None,
        service_type_id: uuid.UUID | None,
        author_note: bool,
    ) -> Changed[VideoChannel]:
        if visit.encounter_id is not None:
            raise conflict("the encounter of this visit is already finalized", "already-finalized")
        if visit.state == VisitState.SCHEDULED.value:
            raise conflict("the visit has not taken place yet", "visit-not-started")
        principal = ctx.principal
        if principal.is_individual and author not in (None, principal.individual_id):
            raise forbidden("an individual token acts only as its own individual")
        author = author or principal.individual_id
        author_row = None
        if author is not None:
            author_row = await participant_row(ctx.session, visit, author)
            if author_row is None:
                raise forbidden("only a participant of the visit finalizes its encounter")
        note = visit.note
        if author_note and author_row is not None and author_row.note:
            note = author_row.note
        people = (await repo.participants_of(ctx.session, visit.organization_id, [visit.id]))[
            visit.id
        ]
        now = utcnow()
        encounter_id = uuid.uuid4()
        encounter = {
            "id": str(encounter_id),
            "version": version,
            "service-type-id": str(service_type_id) if service_type_id else None,
            "author-id": str(author) if author else None,
            "note": note,
            "participants": [str(p.individual_id) for p in people],
            "started-at": format_timestamp(visit.opened_at) if visit.opened_at else None,
            "ended-at": format_timestamp(visit.terminated_at) if visit.terminated_at else None,
            "duration": visit.duration,
            "finalized-at": format_timestamp(now),
        }
        # Exactly once, even when two finalize at the same moment.
        if not await repo.finalize_encounter(ctx.session, visit, encounter_id, encounter, now):
            raise conflict("the encounter of this visit is already finalized", "already-finalized")
        await ctx.session.refresh(visit)
        audience = [p.individual_id for p in people]
        return Changed(
            visit,
            [
                visit_change(
                    visit,
                    "encounter-finalized",
                    audience,
                    ["encounter-id"],
                    # Ids and times only (no note: events carry no clinical text); the EHR
                    # integration reads the encounter from the visit.
                    data={
                        "encounter-id": encounter["id"],
                        "version": version,
                        "service-type-id": encounter["service-type-id"],
                        "author-id": encounter["author-id"],
                        "participants": encounter["participants"],
                        "finalized-at": encounter["finalized-at"],
                    },
                )
            ],
        )


async def issue_credentials(
    session: AsyncSession, settings: Settings, visit: VideoChannel, individual_id: uuid.UUID
) -> Credentials:
    """An access token to the visit's room for a participant (403 otherwise), within the join
    window (409 otherwise), once the room exists (409 otherwise)."""
    taking_part = await participant_row(session, visit, individual_id)
    if taking_part is None:
        raise forbidden("only the visit's participants get its credentials")
    now = utcnow()
    opens, closes = join_window(visit)
    if visit.state == VisitState.TERMINATED.value:
        raise conflict("the visit has ended", "visit-terminated")
    if now < opens:
        raise conflict(f"the visit opens for joining at {format_timestamp(opens)}", "join-not-open")
    if closes is not None and now > closes:
        raise conflict(f"joining the visit closed at {format_timestamp(closes)}", "join-closed")
    if visit.room_sid is None:
        detail = (
            f"the visit's room could not be created: {visit.room_error}"
            if visit.room_error
            else "the visit's room is being prepared: retry in a few seconds"
        )
        raise conflict(detail, "room-not-ready")
    adapter = providers_for(settings).get(VIDEO)
    ttl = MAX_TOKEN_TTL if closes is None else min(MAX_TOKEN_TTL, closes - now)
    room = Room(
        vendor_id=visit.room_sid,
        unique_name=str(visit.id),
        status=RoomStatus(visit.room_status or RoomStatus.CREATED.value),
        max_participants=visit.max_participants,
        record=visit.recorded,
    )
    grant = await adapter.grant(room, str(individual_id), ttl=max(MIN_TOKEN_TTL, ttl))
    return Credentials(
        access_token=grant.token,
        name=grant.unique_name,
        identity=grant.identity,
        provider=adapter.name,
        expires_at=grant.expires_at,
        extra=dict(grant.extra),
    )


def invalid_attribute_pointer(path: str, detail: str) -> ApiError:
    return ApiError(
        400,
        [ErrorItem(f"{path} {detail}", "invalid-attribute", pointer=f"/data/attributes/{path}")],
        {},
        True,
    )


async def participant_row(
    session: AsyncSession, visit: VideoChannel, individual_id: uuid.UUID
) -> VideoParticipant | None:
    return await repo.find_participant(session, visit.organization_id, visit.id, individual_id)


async def audience_of(session: AsyncSession, visit: VideoChannel) -> list[uuid.UUID]:
    people = (await repo.participants_of(session, visit.organization_id, [visit.id]))[visit.id]
    return [p.individual_id for p in people]


async def request_audio(
    session: AsyncSession, visit: VideoChannel, target: VideoParticipant, state: str
) -> None:
    """Ask the engine (in a job) to mute or unmute ``target``."""
    await enqueue(
        session,
        SET_AUDIO_JOB,
        {
            "visit_id": visit.id,
            "individual_id": target.individual_id,
            "muted": state == AudioState.MUTED.value,
        },
        organization_id=visit.organization_id,
    )


async def terminate(session: AsyncSession, visit: VideoChannel) -> None:
    """Mark the visit ended and have the engine end its room (a job)."""
    now = utcnow()
    visit.state = VisitState.TERMINATED.value
    visit.terminated_at = now
    visit.last_modified_at = now
    if visit.opened_at is not None:
        visit.duration = int((now - visit.opened_at).total_seconds())
    await enqueue(
        session,
        END_ROOM_JOB,
        {"visit_id": visit.id},
        organization_id=visit.organization_id,
        dedupe_key=f"{END_ROOM_JOB}:{visit.id}",
    )


async def default_reminder_template(session: AsyncSession, organization_id: uuid.UUID) -> Template:
    """The organization's ``video-visit-reminder`` template, made on first use (an admin may
    reword it through the templates API)."""
    try:
        return await find_template(session, organization_id, REMINDER_TEMPLATE)
    except ApiError:
        pass  # none yet: made now
    now = utcnow()
    text = "Your video visit starts at {{ visit_start.strftime('%H:%M') }}."
    template = Template(
        id=uuid.uuid4(),
        organization_id=organization_id,
        name=REMINDER_TEMPLATE,
        category="video",
        channels={
            "apn": {"title": "Video visit", "body": text},
            "fcm": {"title": "Video visit", "body": text},
            "web": {"title": "Video visit", "body": text},
            "sms": {"body": text + " Join in the app."},
            "email": {
                "subject": "Your video visit",
                "text": text + "\n\nJoin from the app: {{ join_url }}",
            },
        },
        required_data={"visit_start": "date", "join_url": "string"},
        locales={},
        sensitive=False,
        neutral_text="You have a new notification. Open the app to read it.",
        deep_link=None,
        created_at=now,
        created_by=None,
        last_modified_at=now,
        last_modified_by=None,
    )
    session.add(template)
    await session.flush()
    return template


async def schedule_reminders(session: AsyncSession, visit: VideoChannel) -> int:
    """Queue one reminder job per participant and reminder (at its time; one already due is
    sent now). A job made for an earlier start finds itself stale and does nothing."""
    if visit.appointment_start is None or not visit.reminders:
        return 0
    now = utcnow()
    start = visit.appointment_start
    people = await audience_of(session, visit)
    asked = 0
    for minutes in visit.reminders:
        due = max(now, start - timedelta(minutes=int(minutes)))
        if due >= start:
            continue
        for individual_id in people:
            stamp = format_timestamp(start)
            await enqueue(
                session,
                REMIND_JOB,
                {
                    "visit_id": visit.id,
                    "individual_id": individual_id,
                    "start": stamp,
                    "minutes": int(minutes),
                },
                organization_id=visit.organization_id,
                run_at=due,
                dedupe_key=f"{REMIND_JOB}:{visit.id}:{stamp}:{individual_id}:{minutes}",
            )
            asked += 1
    return asked


# --- participants and compositions ---------------------------------------------------------------


class ParticipantService(CrudService[VideoParticipant]):
    async def present(self, ctx: Context, rows: Sequence[VideoParticipant]) -> list[dict[str, Any]]:
        if not rows:
            return []
        org = ctx.organization_id
        users = await repo.users_of(ctx.session, org, [r.individual_id for r in rows])
        visit_ids = list({r.video_channel_id for r in rows})
        encounters = await repo.encounters_of(ctx.session, org, visit_ids)
        return render_rows(
            VideoParticipantRead,
            [
                {
                    "video_channel_id": row.video_channel_id,
                    "individual_id": row.individual_id,
                    "account_type": row.account_type,
                    "status": row.status,
                    "audio_state": row.audio_state,
                    "disconnected": row.disconnected,
                    "connected_at": row.connected_at,
                    "disconnected_at": row.disconnected_at,
                    "duration": row.duration,
                    "note": row.note,
                    "encounter_id": encounters.get(row.video_channel_id),
                    "twilio_channel_id": row.vendor_id,
                    "user": _user(users.get(row.individual_id)),
                    "organization_id": row.organization_id,
                    "last_modified_at": row.last_modified_at,
                    "last_modified_by": row.last_modified_by,
                }
                for row in rows
            ],
        )

    async def update(
        self, ctx: Context, obj: VideoParticipant, attrs: WriteAttributes
    ) -> Changed[VideoParticipant]:
        assert isinstance(attrs, VideoParticipantUpdate)
        given = attrs.given()
        for name in ("audio_state", "disconnected"):
            if name in given and given[name] is None:
                raise ApiError(
                    400,
                    [
                        ErrorItem(
                            f"{name.replace('_', '-')} must not be null",
                            "null-attribute",
                            pointer=f"/data/attributes/{name.replace('_', '-')}",
                        )
                    ],
                    {},
                    True,
                )
        visit = await repo.load_visit(ctx.session, ctx.organization_id, obj.video_channel_id)
        assert visit is not None
        acting_id = ctx.principal.individual_id
        if (
            ctx.principal.is_individual
            and "audio_state" in given
            and acting_id is not None
            and acting_id != obj.individual_id
        ):
            acting = await participant_row(ctx.session, visit, acting_id)
            if acting is None or acting.account_type not in PROVIDER_TYPES:
                raise forbidden("only a provider taking part mutes or unmutes others")
        own = ctx.principal.individual_id == obj.individual_id
        if ctx.principal.is_individual and {"note", "disconnected"} & set(given) and not own:
            raise forbidden("an individual token changes only its own participation")
        changed: list[str] = []
        if "audio_state" in given and given["audio_state"] != obj.audio_state:
            if visit.state != VisitState.OPEN.value or obj.disconnected or not obj.connected_at:
                raise conflict(
                    "the participant is not connected to an open visit",
                    "participant-not-connected",
                )
            await request_audio(ctx.session, visit, obj, given["audio_state"])
        if "disconnected" in given and given["disconnected"] != obj.disconnected:
            obj.disconnected = given["disconnected"]
            if obj.disconnected:
                obj.status = "disconnected"
                obj.disconnected_at = utcnow()
            changed.append("disconnected")
        if "note" in given and given["note"] != obj.note:
            obj.note = given["note"]
            changed.append("note")
        if not changed:
            return Changed(obj)
        obj.last_modified_at = utcnow()
        obj.last_modified_by = ctx.principal.actor_id
        audience = await audience_of(ctx.session, visit)
        return Changed(
            obj,
            [
                change(
                    PARTICIPANTS,
                    obj.id,
                    "updated",
                    fields=changed,
                    audience=audience,
                    organization_id=obj.organization_id,
                    data={"video-channel-id": str(obj.video_channel_id)},
                )
            ],
        )


class CompositionService(CrudService[VideoComposition]):
    async def present(self, ctx: Context, rows: Sequence[VideoComposition]) -> list[dict[str, Any]]:
        storage = storage_for(ctx.settings, base_url=str(ctx.request.base_url))
        ttl = timedelta(seconds=ctx.settings.attachment_link_ttl_seconds)
        shown: list[dict[str, Any]] = []
        for row in rows:
            url = None
            if row.storage_key and row.processing_status == CompositionStatus.COMPLETED.value:
                url = await storage.presign_download(
                    row.storage_key,
                    expires_in=ttl,
                    content_type=row.content_type,
                    filename=f"visit-{row.video_channel_id}.mp4",
                )
            shown.append(
                {
                    "video_channel_id": row.video_channel_id,
                    "processing_status": row.processing_status,
                    "processing_pct": row.processing_pct,
                    "status": composition_state(row),
                    "size": row.size,
                    "duration": row.duration,
                    "content_type": row.content_type,
                    "media_url": url,
                    "error": row.error,
                    "organization_id": row.organization_id,
                    "created_at": row.created_at,
                    "last_modified_at": row.last_modified_at,
                }
            )
        return render_rows(VideoCompositionRead, shown)


visits_service = VisitService()
participants_service = ParticipantService()
compositions_service = CompositionService()
