"""Video jobs: every call to the video engine happens here (docs/VIDEO.md).

- ``video.create-room``: the visit's room, named after the visit, with Courier's status
  callback (``/providers/video/status``); creating it again returns the same room.
- ``video.end-room``: the engine ends the room; a recorded visit then gets its composition.
- ``video.compose``: the engine composes the recording (``VideoCompositions``); the job polls
  its progress (``processing-pct``) and, once completed, copies the media file into Courier's
  storage (one recorded step), whence it is downloaded through short-lived signed links.
- ``video.set-audio``: the engine mutes or unmutes a participant (it reports it back).
- ``video.remind``: one participant's reminder before the start (``notify_many``: push, SMS,
  email by their preferences), unless the visit moved or ended since.
- ``video.invite``: ``with-email``: each participant with an email address gets the invitation
  through the email domain's path.
- ``video.delete-composition-files``: a purged composition's file.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

from courier.core.errors import ApiError
from courier.core.time import format_timestamp, parse_timestamp, utcnow
from courier.domains.email.service import do_queue_rendered
from courier.domains.people.schemas import check_email
from courier.domains.user_notifications.service import NotificationTarget, Notified, notify_many
from courier.domains.video import inbound as _inbound  # noqa: F401  (the inbound handlers)
from courier.domains.video import repository as repo
from courier.domains.video.links import join_link
from courier.domains.video.service import (
    COMPOSITIONS,
    CREATE_ROOM_JOB,
    END_ROOM_JOB,
    INVITE_JOB,
    REMIND_JOB,
    SET_AUDIO_JOB,
    audience_of,
    join_url,
    visit_change,
)
from courier.jobs import JobContext, PermanentJobError, enqueue, job_handler
from courier.jsonapi.changes import SYSTEM, Change, change, write_changes
from courier.models.video import VideoChannel, VideoComposition, VisitState
from courier.providers.common import Permanent, callback_url
from courier.providers.email.message import EmailContent
from courier.providers.storage import storage_for
from courier.providers.video import VIDEO
from courier.providers.video.base import Composition, CompositionStatus, VideoCompositions

COMPOSE_JOB = "video.compose"
DELETE_FILES_JOB = "video.delete-composition-files"
POLL_SECONDS = 0.5
MAX_POLLS = 2400  # 20 minutes of polling at most
ACTOR = "video"


def composition_key(organization_id: uuid.UUID, composition_id: uuid.UUID) -> str:
    return f"orgs/{organization_id}/video-compositions/{composition_id}/file"


async def _visit(job: JobContext) -> VideoChannel | None:
    return await repo.load_visit(
        job.session, job.organization_id, uuid.UUID(str(job.payload["visit_id"]))
    )


@job_handler(CREATE_ROOM_JOB, max_attempts=10)
async def create_room(job: JobContext) -> dict[str, Any] | None:
    visit = await _visit(job)
    if visit is None:
        return {"skipped": "the visit is gone"}
    if visit.state == VisitState.TERMINATED.value:
        return {"skipped": "the visit has ended"}
    adapter = job.providers.get(VIDEO)
    name = str(visit.id)
    settings = job.settings
    max_participants, record = visit.max_participants, visit.recorded

    async def create() -> dict[str, Any]:
        try:
            room = await adapter.create_room(
                name,
                max_participants=max_participants,
                record=record,
                status_callback_url=callback_url(settings, "video", "status"),
            )
        except Permanent as exc:
            return {"error": str(exc)[:255] or exc.code or "refused"}
        return {"sid": room.vendor_id, "status": room.status.value}

    replaced = job.payload.get("replace")
    if replaced:

        async def end_replaced() -> dict[str, Any]:
            try:
                await adapter.end_room(str(replaced))
            except Permanent as exc:
                return {"error": str(exc)[:255]}
            return {"ended": str(replaced)}

        await job.step("end-replaced-room", end_replaced)
    made = await job.step("create-room", create) or {}
    visit = await _visit(job)  # the step committed: read it again
    assert visit is not None
    changes: list[Change] = []
    if "error" in made:
        visit.room_error = str(made["error"])[:255]
        changes.append(
            visit_change(visit, "room-failed", await audience_of(job.session, visit), ["room"])
        )
    else:
        visit.room_sid = str(made["sid"])
        if visit.room_status is None:
            visit.room_status = str(made["status"])
        visit.room_error = None
        changes.append(
            visit_change(visit, "room-created", await audience_of(job.session, visit), ["room"])
        )
    write_changes(job.session, changes, actor=SYSTEM, request_id=None)
    return made


@job_handler(END_ROOM_JOB, max_attempts=10)
async def end_room(job: JobContext) -> dict[str, Any] | None:
    visit = await _visit(job)
    if visit is None:
        return {"skipped": "the visit is gone"}
    sid = visit.room_sid
    if sid is None:
        return {"skipped": "the visit never had a room"}
    adapter = job.providers.get(VIDEO)

    async def end() -> dict[str, Any]:
        try:
            room = await adapter.end_room(sid)
        except Permanent as exc:
            return {"error": str(exc)[:255]}
        return {"status": room.status.value}

    ended = await job.step("end-room", end) or {}
    visit = await _visit(job)
    assert visit is not None
    if "status" in ended:
        visit.room_status = str(ended["status"])
    if not visit.recorded:
        return ended
    if await repo.has_composition(job.session, visit.organization_id, visit.id):
        return ended
    now = utcnow()
    composition = VideoComposition(
        id=uuid.uuid5(job.job_id, "composition"),
        organization_id=visit.organization_id,
        video_channel_id=visit.id,
        processing_status=CompositionStatus.ENQUEUED.value,
        processing_pct=0,
        created_at=now,
        last_modified_at=now,
    )
    if not isinstance(adapter, VideoCompositions):
        composition.processing_status = CompositionStatus.FAILED.value
        composition.error = f"the video engine {adapter.name} makes no compositions"
    job.session.add(composition)
    await job.session.flush()
    write_changes(
        job.session,
        [_composition_change(visit, composition, "created", await audience_of(job.session, visit))],
        actor=SYSTEM,
        request_id=None,
    )
    if isinstance(adapter, VideoCompositions):
        await enqueue(
            job.session,
            COMPOSE_JOB,
            {"composition_id": composition.id, "poll": 0},
            organization_id=visit.organization_id,
            dedupe_key=f"{COMPOSE_JOB}:{composition.id}:0",
        )
    return {**ended, "composition_id": str(composition.id)}


def _composition_change(
    visit: VideoChannel, row: VideoComposition, verb: str, audience: list[uuid.UUID]
) -> Change:
    return change(
        COMPOSITIONS,
        row.id,
        verb,
        fields=["processing-status", "processing-pct"],
        audience=audience,
        organization_id=row.organization_id,
        data={
            "video-channel-id": str(visit.id),
            "processing-status": row.processing_status,
            "processing-pct": row.processing_pct,
        },
    )


async def _composition(job: JobContext) -> VideoComposition | None:
    ident = uuid.UUID(str(job.payload["composition_id"]))
    return await repo.load_composition(job.session, job.organization_id, ident)


@job_handler(COMPOSE_JOB, max_attempts=10)
async def compose(job: JobContext) -> dict[str, Any] | None:
    row = await _composition(job)
    if row is None:
        return {"skipped": "the composition is gone"}
    visit = await repo.load_visit(job.session, job.organization_id, row.video_channel_id)
    if visit is None or visit.room_sid is None:
        return {"skipped": "the visit is gone"}
    adapter = job.providers.get(VIDEO)
    if not isinstance(adapter, VideoCompositions):
        raise PermanentJobError(f"the video engine {adapter.name} makes no compositions")
    engine: VideoCompositions = adapter
    room_sid = visit.room_sid
    composition_id, org = row.id, row.organization_id
    audience = await audience_of(job.session, visit)

    async def start() -> dict[str, Any]:
        try:
            made = await engine.create_composition(room_sid)
        except Permanent as exc:
            return {"error": str(exc)[:255]}
        return {"vendor_id": made.vendor_id}

    if row.vendor_id is None:  # the first poll starts it (each poll is a job of its own)
        started = await job.step("create-composition", start) or {}
        row = await _composition(job)
        assert row is not None
        if "error" in started:
            return _fail(job, visit, row, str(started["error"]), audience)
        row.vendor_id = str(started["vendor_id"])
    vendor_id = row.vendor_id

    async def fetch() -> dict[str, Any]:
        found = await engine.fetch_composition(vendor_id)
        return {"found": None} if found is None else {"found": dataclasses.asdict(found)}

    fetched = (await job.step("fetch-composition", fetch) or {}).get("found")
    row = await _composition(job)
    assert row is not None
    row.vendor_id = vendor_id
    progress = (
        Composition(**{**fetched, "status": CompositionStatus(fetched["status"])})
        if fetched
        else None
    )
    if progress is None or progress.status.value == CompositionStatus.FAILED.value:
        reason = progress.error if progress is not None and progress.error else "lost"
        return _fail(job, visit, row, f"the engine's composition failed: {reason}", audience)
    before = (row.processing_status, row.processing_pct)
    if progress.status.value != CompositionStatus.COMPLETED.value:
        row.processing_status = progress.status.value
        row.processing_pct = progress.progress
        if (row.processing_status, row.processing_pct) != before:
            row.last_modified_at = utcnow()
            write_changes(
                job.session,
                [_composition_change(visit, row, "updated", audience)],
                actor=SYSTEM,
                request_id=None,
            )
        poll = int(job.payload.get("poll", 0)) + 1
        if poll > MAX_POLLS:
            return _fail(job, visit, row, "the composition took too long", audience)
        await enqueue(
            job.session,
            COMPOSE_JOB,
            {"composition_id": row.id, "poll": poll},
            organization_id=org,
            run_at=utcnow() + timedelta(seconds=POLL_SECONDS),
            dedupe_key=f"{COMPOSE_JOB}:{row.id}:{poll}",
        )
        return {"progress": progress.progress}
    key = composition_key(org, composition_id)
    settings = job.settings

    async def store() -> dict[str, Any]:
        media = await engine.composition_media(vendor_id)
        await storage_for(settings).write(key, media, content_type=progress.content_type or "")
        return {"size": len(media)}

    stored = await job.step("store-media", store) or {}
    row = await _composition(job)
    assert row is not None
    now = utcnow()
    row.processing_status = CompositionStatus.COMPLETED.value
    row.processing_pct = 100
    row.size = int(stored.get("size") or progress.size or 0)
    row.duration = progress.duration
    row.content_type = progress.content_type or "video/mp4"
    row.storage_key = key
    row.last_modified_at = now
    write_changes(
        job.session,
        [_composition_change(visit, row, "completed", audience)],
        actor=SYSTEM,
        request_id=None,
    )
    return {"size": row.size, "duration": row.duration}


def _fail(
    job: JobContext,
    visit: VideoChannel,
    row: VideoComposition,
    reason: str,
    audience: list[uuid.UUID],
) -> dict[str, Any]:
    row.processing_status = CompositionStatus.FAILED.value
    row.error = reason[:255]
    row.last_modified_at = utcnow()
    write_changes(
        job.session,
        [_composition_change(visit, row, "failed", audience)],
        actor=SYSTEM,
        request_id=None,
    )
    return {"failed": reason}


@job_handler(SET_AUDIO_JOB, max_attempts=5)
async def set_audio(job: JobContext) -> dict[str, Any] | None:
    visit = await _visit(job)
    if visit is None or visit.room_sid is None:
        return {"skipped": "the visit or its room is gone"}
    if visit.state != VisitState.OPEN.value:
        return {"skipped": f"the visit is {visit.state}"}
    adapter = job.providers.get(VIDEO)
    room_sid, identity = visit.room_sid, str(job.payload["individual_id"])
    muted = bool(job.payload["muted"])

    async def apply() -> dict[str, Any]:
        try:
            await adapter.set_audio(room_sid, identity, muted=muted)
        except Permanent as exc:  # e.g. left the room meanwhile: nothing to retry
            return {"refused": str(exc)[:255]}
        return {"muted": muted}

    return await job.step("set-audio", apply)


@job_handler(REMIND_JOB, max_attempts=10)
async def remind(job: JobContext) -> dict[str, Any] | None:
    visit = await _visit(job)
    if visit is None:
        return {"skipped": "the visit is gone"}
    start = parse_timestamp(str(job.payload["start"]))
    minutes = int(job.payload["minutes"])
    if visit.state == VisitState.TERMINATED.value:
        return {"skipped": "the visit has ended"}
    if visit.appointment_start != start:
        return {"skipped": "the visit moved"}
    if minutes not in (visit.reminders or []):
        return {"skipped": "the reminder was removed"}
    individual_id = uuid.UUID(str(job.payload["individual_id"]))
    if individual_id not in await audience_of(job.session, visit):
        return {"skipped": "no longer a participant"}
    template = await repo.reminder_template(
        job.session, job.organization_id, visit.reminder_template_id
    )
    if template is None:
        return {"skipped": "the reminder template is gone"}
    stamp = format_timestamp(start)
    results = await notify_many(
        job.session,
        job.settings,
        organization_id=job.organization_id,
        template=template,
        data={
            "visit_start": stamp,
            "join_url": join_url(job.settings, visit.id),
            "visit_id": str(visit.id),
        },
        targets=[NotificationTarget(individual_id)],
        source=f"video-channel:{visit.id}",
        dedupe_keys=[f"video:{visit.id}:{stamp}:{individual_id}:{minutes}"],
    )
    outcome = results.get(individual_id)
    if isinstance(outcome, Notified):
        return {"notification_id": str(outcome.notification_id), "channels": outcome.channels}
    return {"not_sent": outcome.reason if outcome is not None else "unknown"}


@job_handler(INVITE_JOB, max_attempts=10)
async def invite(job: JobContext) -> dict[str, Any] | None:
    visit = await _visit(job)
    if visit is None:
        return {"skipped": "the visit is gone"}
    audience = await audience_of(job.session, visit)
    people = (await repo.individuals_by_id(job.session, job.organization_id, audience)).values()
    when = f" at {format_timestamp(visit.appointment_start)}" if visit.appointment_start else ""
    link = join_url(job.settings, visit.id)
    sent = skipped = 0
    for person in people:
        try:
            address = check_email(person.email) if person.email else None
        except ValueError:
            address = None
        if address is None:
            continue
        content = EmailContent(
            subject="Your video visit",
            text=f"Hello {person.preferred_name or person.first_name},\n\n"
            f"You are invited to a video visit{when} (UTC).\n"
            + (
                "Join from a browser, without the app, when the visit opens (this link is "
                f"yours alone; do not share it):\n{join_link(job.settings, visit, person.id)}\n"
                if visit.appless
                else f"Join from the app when the visit opens.\n\nVisit: {link}\n"
            ),
        )
        try:
            await do_queue_rendered(
                job.session,
                job.settings,
                organization_id=job.organization_id,
                to=[address],
                content=content,
                individual_id=person.id,
                created_by=ACTOR,
            )
        except ApiError:  # the address bounced earlier for this organization
            skipped += 1
            continue
        sent += 1
    return {"sent": sent, "skipped": skipped}


@job_handler(DELETE_FILES_JOB, max_attempts=20)
async def delete_files(job: JobContext) -> dict[str, Any] | None:
    storage = storage_for(job.settings)
    for key in job.payload.get("keys", []):
        await storage.delete(str(key))
    return {"deleted": len(job.payload.get("keys", []))}
