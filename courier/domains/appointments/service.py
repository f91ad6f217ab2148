"""The rules of appointments (seed 003; docs/APPOINTMENTS.md).

- ``host``, ``attendees``, ``reference-patients``, ``created-by`` and ``updated-by`` name
  individuals of the organization (else 404 pointing at the attribute). An attendee is given
  once (400). ``reference-patients`` only on an internal appointment (422).
- ``end-time`` after ``start-time`` (400). ``recurring.rrule`` is an RFC 5545 rule, expanded
  in ``time-zone`` (the organization's by default) so every occurrence keeps its local time.
- ``actual-start-time``/``actual-end-time`` only on a non-recurring appointment (422);
  ``location`` only for ``in_person`` (422). A ``video_call`` gets its video visit
  (``courier.domains.video.appointments``) and shows its ``video-call.join-url``.
- Every PATCH names ``updated-by``; each change of a value is written to ``change-log`` (who,
  when, from, to) and each change of ``status`` to ``status-history``.
- Every change is announced (``appointments.created|updated``) to the host and attendees, and
  their ``appointment`` badge counts are set to their open appointments.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from courier.config import Settings
from courier.core.errors import ApiError, ErrorItem, forbidden, invalid_attribute
from courier.core.time import format_timestamp, utcnow
from courier.domains.appointments import recurrence
from courier.domains.appointments.repository import attendees_of, refresh_badges
from courier.domains.appointments.schemas import (
    AppointmentCreate,
    AppointmentRead,
    AppointmentUpdate,
    AttendeeIn,
    RecurringIn,
)
from courier.domains.organizations.repository import organization_timezone
from courier.domains.people.repository import require_individual, require_individuals
from courier.domains.templates.repository import find_template
from courier.domains.video.appointments import ensure_visit, video_call
from courier.jsonapi.changes import Change, Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.appointment import (
    Appointment,
    AppointmentAttendee,
    AttendanceStatus,
    InteractionType,
    PaymentStatus,
)

NOT_NULL = (
    "name",
    "start-time",
    "end-time",
    "time-zone",
    "recurring",
    "host",
    "attendees",
    "reference-patients",
    "interaction-type",
    "status",
    "extended",
)
# What a change must change for a video_call's visit to be made or moved.
VIDEO_FIELDS = {"interaction-type", "start-time", "end-time", "recurring", "host", "attendees"}
# Attributes PATCH copies as they are (the others have rules of their own below).
PLAIN = ("name", "description", "visit_note", "extended", "interaction_type", "location")


def _unprocessable(attribute: str, detail: str, code: str) -> ApiError:
    return ApiError(
        422, [ErrorItem(detail, code, pointer=f"/data/attributes/{attribute}")], {}, False
    )


def _shown(value: Any) -> Any:
    """A value as the change log keeps it (JSON)."""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return [_shown(item) for item in value]
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    return value


def _attendee_values(given: Sequence[uuid.UUID | AttendeeIn]) -> list[AttendeeIn]:
    wanted: list[AttendeeIn] = []
    seen: set[uuid.UUID] = set()
    for index, item in enumerate(given):
        attendee = item if isinstance(item, AttendeeIn) else AttendeeIn(id=item)
        if attendee.id in seen:
            raise ApiError(
                400,
                [
                    ErrorItem(
                        f"attendees names {attendee.id} more than once",
                        "duplicate-attendee",
                        pointer=f"/data/attributes/attendees/{index}",
                    )
                ],
                {},
                True,
            )
        seen.add(attendee.id)
        wanted.append(attendee)
    return wanted


def _rule_of(recurring: RecurringIn | None) -> str | None:
    if recurring is None or not recurring.is_recurring:
        if recurring is not None and recurring.rrule is not None:
            raise invalid_attribute(
                "recurring", "has an rrule but is-recurring is false", "invalid-recurrence"
            )
        return None
    if recurring.rrule is None:
        raise invalid_attribute(
            "recurring", "is-recurring needs an rrule (e.g. FREQ=WEEKLY;COUNT=10)", "invalid-rrule"
        )
    try:
        return recurrence.normalise_rule(recurring.rrule)
    except ValueError as exc:
        raise ApiError(
            400,
            [
                ErrorItem(
                    f"recurring.rrule {exc}",
                    "invalid-rrule",
                    pointer="/data/attributes/recurring/rrule",
                )
            ],
            {},
            True,
        ) from exc


def _check_rule(rule: str | None, start: datetime, zone: str) -> None:
    if rule is None:
        return
    try:
        recurrence.check_rule(rule, start, zone)
    except ValueError as exc:
        raise ApiError(
            400,
            [
                ErrorItem(
                    f"recurring.rrule {exc}",
                    "invalid-rrule",
                    pointer="/data/attributes/recurring/rrule",
                )
            ],
            {},
            True,
        ) from exc


class AppointmentService(CrudService[Appointment]):
    async def present(self, ctx: Context, rows: Sequence[Appointment]) -> list[dict[str, Any]]:
        if not rows:
            return []
        attendees = await attendees_of(ctx.session, ctx.organization_id, [r.id for r in rows])
        now = utcnow()
        return render_rows(
            AppointmentRead,
            [appointment_values(row, attendees.get(row.id, []), now, ctx.settings) for row in rows],
        )

    # --- create ---------------------------------------------------------------------------

    async def create(self, ctx: Context, attrs: WriteAttributes) -> Changed[Appointment]:
        assert isinstance(attrs, AppointmentCreate)
        org = ctx.organization_id
        await require_individual(ctx, attrs.host, pointer="/data/attributes/host")
        wanted = _attendee_values(attrs.attendees)
        await require_individuals(ctx, [a.id for a in wanted], "/data/attributes/attendees")
        created_by = await self._acting(ctx, attrs.created_by, "created-by")
        rule = _rule_of(attrs.recurring)
        zone = attrs.time_zone or await _organization_zone(ctx)
        self._check_times(attrs.start_time, attrs.end_time)
        _check_rule(rule, attrs.start_time, zone)
        self._check_kind(attrs.interaction_type, attrs.location is not None)
        if attrs.reference_patients:
            if not attrs.internal:
                raise _unprocessable(
                    "reference-patients",
                    "reference-patients applies only to internal appointments",
                    "not-internal",
                )
            await require_individuals(
                ctx, attrs.reference_patients, "/data/attributes/reference-patients"
            )
        template_id = await _reminder_template(ctx, attrs.reminder_template)
        reminders = [r.model_dump(by_alias=True) for r in attrs.reminders]
        _check_reminders(reminders, template_id)
        now = utcnow()
        appointment = Appointment(
            id=uuid.uuid4(),
            organization_id=org,
            name=attrs.name,
            description=attrs.description,
            appointment_type=attrs.appointment_type,
            generated_from_type=attrs.generated_from_type,
            generated_from=attrs.generated_from,
            group=attrs.group,
            internal=attrs.internal,
            host_id=attrs.host,
            start_time=attrs.start_time,
            end_time=attrs.end_time,
            series_end=recurrence.series_end(rule, attrs.start_time, attrs.end_time, zone),
            time_zone=zone,
            rrule=rule,
            interaction_type=attrs.interaction_type,
            location=_location(attrs.location),
            status=attrs.status,
            status_history=[
                {"status": attrs.status, "changed-by": _id(created_by), "changed-at": _at(now)}
            ],
            change_log=[],
            reference_patients=[str(p) for p in dict.fromkeys(attrs.reference_patients)],
            visit_note=attrs.visit_note,
            reminders=reminders,
            reminder_template_id=template_id,
            extended=dict(attrs.extended),
            created_by=created_by,
            created_by_actor=ctx.principal.actor_id,
            created_at=now,
            last_updated_by=created_by,
            last_updated_at=now,
        )
        ctx.session.add(appointment)
        await ctx.session.flush()
        for position, attendee in enumerate(wanted):
            ctx.session.add(_attendee_row(appointment, attendee, position, now))
        audience = [attrs.host, *(a.id for a in wanted)]
        await ensure_visit(
            ctx.session, ctx.settings, appointment, [a.id for a in wanted], ctx.principal.actor_id
        )
        await refresh_badges(ctx.session, org, [a.id for a in wanted])
        from courier.domains.appointments.jobs import on_booked

        await on_booked(ctx.session, appointment)
        return Changed(
            appointment,
            [self._change(ctx, "created", appointment, attrs.model_fields_set, audience)],
        )

    # --- update ---------------------------------------------------------------------------

    async def update(
        self, ctx: Context, obj: Appointment, attrs: WriteAttributes
    ) -> Changed[Appointment]:
        assert isinstance(attrs, AppointmentUpdate)
        given = attrs.given()
        nulls = [
            ErrorItem(
                f"{name} must not be null", "null-attribute", pointer=f"/data/attributes/{name}"
            )
            for key, value in sorted(given.items())
            if value is None and (name := key.replace("_", "-")) in NOT_NULL
        ]
        if nulls:
            raise ApiError(400, nulls, {}, True)
        org = ctx.organization_id
        updated_by = await self._acting(ctx, attrs.updated_by, "updated-by")
        assert updated_by is not None
        given.pop("updated_by")
        current = (await attendees_of(ctx.session, org, [obj.id]))[obj.id]
        before_attendees = [row.individual_id for row in current]
        now = utcnow()
        changes: dict[str, dict[str, Any]] = {}

        def note(attribute: str, before: Any, after: Any) -> None:
            if _shown(before) != _shown(after):
                changes[attribute] = {"from": _shown(before), "to": _shown(after)}

        if "host" in given:
            await require_individual(ctx, given["host"], pointer="/data/attributes/host")
            note("host", obj.host_id, given["host"])
            obj.host_id = given["host"]
        for name in PLAIN:
            if name in given:
                value = given[name]
                if name == "location":
                    value = _location(attrs.location)
                note(name.replace("_", "-"), getattr(obj, name), value)
                setattr(obj, name, value)
        self._check_kind(obj.interaction_type, obj.location is not None)
        rule = obj.rrule
        if "recurring" in given:
            rule = _rule_of(attrs.recurring)
            note("recurring", obj.rrule, rule)
        start = given.get("start_time", obj.start_time)
        end = given.get("end_time", obj.end_time)
        zone = given.get("time_zone", obj.time_zone)
        self._check_times(start, end)
        if rule != obj.rrule or start != obj.start_time or zone != obj.time_zone:
            _check_rule(rule, start, zone)
        note("start-time", obj.start_time, start)
        note("end-time", obj.end_time, end)
        note("time-zone", obj.time_zone, zone)
        obj.start_time, obj.end_time, obj.time_zone, obj.rrule = start, end, zone, rule
        obj.series_end = recurrence.series_end(rule, start, end, zone)
        for name in ("actual_start_time", "actual_end_time"):
            if name in given:
                if given[name] is not None and rule:
                    raise _unprocessable(
                        name.replace("_", "-"),
                        f"{name.replace('_', '-')} applies only to non-recurring appointments",
                        "recurring-appointment",
                    )
                note(name.replace("_", "-"), getattr(obj, name), given[name])
                setattr(obj, name, given[name])
        if rule and (obj.actual_start_time or obj.actual_end_time):
            raise _unprocessable(
                "recurring",
                "an appointment with actual times cannot become recurring",
                "recurring-appointment",
            )
        if (
            obj.actual_start_time
            and obj.actual_end_time
            and obj.actual_end_time < obj.actual_start_time
        ):
            raise invalid_attribute("actual-end-time", "must not be before actual-start-time")
        if "reference_patients" in given:
            patients = [str(p) for p in dict.fromkeys(given["reference_patients"])]
            if patients and not obj.internal:
                raise _unprocessable(
                    "reference-patients",
                    "reference-patients applies only to internal appointments",
                    "not-internal",
                )
            await require_individuals(
                ctx, given["reference_patients"], "/data/attributes/reference-patients"
            )
            note("reference-patients", obj.reference_patients, patients)
            obj.reference_patients = patients
        if "attendees" in given:
            wanted = _attendee_values(given["attendees"])
            await require_individuals(ctx, [a.id for a in wanted], "/data/attributes/attendees")
            before = [_attendee_shown(row) for row in current]
            rows = await self._replace_attendees(ctx, obj, current, wanted, now)
            note("attendees", before, [_attendee_shown(row) for row in rows])
        if "reminders" in given:
            reminders = [r.model_dump(by_alias=True) for r in attrs.reminders or []]
            note("reminders", obj.reminders, reminders)
            obj.reminders = reminders
        if "reminder_template" in given:
            template_id = await _reminder_template(ctx, given["reminder_template"])
            note("reminder-template", obj.reminder_template_id, template_id)
            obj.reminder_template_id = template_id
        _check_reminders(obj.reminders, obj.reminder_template_id)
        if "status" in given and given["status"] != obj.status:
            note("status", obj.status, given["status"])
            obj.status = given["status"]
            obj.status_history = [
                *obj.status_history,
                {"status": obj.status, "changed-by": _id(updated_by), "changed-at": _at(now)},
            ]
        if not changes:
            return Changed(obj)  # nothing changed: no log entry, no event
        obj.change_log = [
            *obj.change_log,
            {"changed-by": _id(updated_by), "changed-at": _at(now), "changes": changes},
        ]
        obj.last_updated_by = updated_by
        obj.last_updated_at = now
        after_attendees = [
            row.individual_id for row in (await attendees_of(ctx.session, org, [obj.id]))[obj.id]
        ]
        await refresh_badges(ctx.session, org, [*before_attendees, *after_attendees])
        if set(changes) & VIDEO_FIELDS:
            await ensure_visit(
                ctx.session, ctx.settings, obj, after_attendees, ctx.principal.actor_id
            )
        from courier.domains.appointments.jobs import on_changed

        await on_changed(ctx.session, obj, set(changes))
        audience = [*(h for h in (obj.host_id,) if h), *before_attendees, *after_attendees]
        change = self._change(ctx, "updated", obj, changes, audience)
        return Changed(obj, [change])

    async def _replace_attendees(
        self,
        ctx: Context,
        obj: Appointment,
        current: list[AppointmentAttendee],
        wanted: list[AttendeeIn],
        now: datetime,
    ) -> list[AppointmentAttendee]:
        by_individual = {row.individual_id: row for row in current}
        kept: list[AppointmentAttendee] = []
        for position, attendee in enumerate(wanted):
            row = by_individual.pop(attendee.id, None)
            if row is None:
                row = _attendee_row(obj, attendee, position, now)
                ctx.session.add(row)
            else:
                row.position = position
                for name in ("attendance_status", "no_show", "payment_status"):
                    value = getattr(attendee, name)
                    if value is not None and value != getattr(row, name):
                        setattr(row, name, value)
                        row.last_updated_at = now
            kept.append(row)
        for gone in by_individual.values():
            await ctx.session.delete(gone)
        await ctx.session.flush()
        return kept

    # --- shared ---------------------------------------------------------------------------

    async def _acting(
        self, ctx: Context, given: uuid.UUID | None, attribute: str
    ) -> uuid.UUID | None:
        """The individual making a change: an individual token's own (another: 403), else
        the one named (an individual of the organization: else 404)."""
        if ctx.principal.is_individual:
            if given is not None and given != ctx.principal.individual_id:
                raise forbidden(f"an individual token acts only as itself: {attribute}")
            return ctx.principal.individual_id
        if given is None:
            return None
        await require_individual(ctx, given, pointer=f"/data/attributes/{attribute}")
        return given

    def _check_times(self, start: datetime, end: datetime) -> None:
        if end <= start:
            raise invalid_attribute("end-time", "must be after start-time", "invalid-time-range")

    def _check_kind(self, interaction_type: str, has_location: bool) -> None:
        if has_location and interaction_type != InteractionType.IN_PERSON.value:
            raise _unprocessable(
                "location",
                "location applies only to in_person appointments",
                "location-not-in-person",
            )

    def _change(
        self,
        ctx: Context,
        verb: str,
        obj: Appointment,
        fields: Any,
        audience: Sequence[uuid.UUID],
    ) -> Change:
        names = sorted(str(f).replace("_", "-") for f in fields)
        base = self.change(ctx, verb, obj, names, data={"status": obj.status})
        return Change(
            base.resource_type,
            base.resource_id,
            base.verb,
            base.fields,
            tuple(dict.fromkeys(audience)),
            base.organization_id,
            base.data,
            base.audited,
            base.published,
        )


async def _reminder_template(ctx: Context, ref: str | None) -> uuid.UUID | None:
    """The organization's template ``ref`` names (its id or name), else 404."""
    if ref is None:
        return None
    try:
        template = await find_template(ctx.session, ctx.organization_id, ref)
    except ApiError as exc:
        raise ApiError(
            404,
            [
                ErrorItem(
                    f"reminder-template names no template of this organization: {ref}",
                    "not-found",
                    pointer="/data/attributes/reminder-template",
                )
            ],
        ) from exc
    return template.id


def _check_reminders(reminders: Sequence[Any], template_id: uuid.UUID | None) -> None:
    if reminders and template_id is None:
        raise invalid_attribute(
            "reminder-template",
            "is required with reminders: the template they are sent with",
            "missing-reminder-template",
        )
    keys = [f"{r['days-before']}@{r['at']}" for r in reminders]
    if len(set(keys)) != len(keys):
        raise invalid_attribute("reminders", "names the same reminder twice", "duplicate-reminder")


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def _at(value: datetime) -> str:
    return format_timestamp(value)


def _location(location: Any) -> dict[str, Any] | None:
    if location is None:
        return None
    dumped: dict[str, Any] = location.model_dump(by_alias=True, exclude_none=True)
    return dumped


def _attendee_row(
    appointment: Appointment, attendee: AttendeeIn, position: int, now: datetime
) -> AppointmentAttendee:
    return AppointmentAttendee(
        id=uuid.uuid4(),
        organization_id=appointment.organization_id,
        appointment_id=appointment.id,
        individual_id=attendee.id,
        position=position,
        attendance_status=attendee.attendance_status or AttendanceStatus.PENDING.value,
        no_show=bool(attendee.no_show),
        payment_status=attendee.payment_status or PaymentStatus.NOT_APPLICABLE.value,
        last_updated_at=now,
    )


def _attendee_shown(row: AppointmentAttendee) -> dict[str, Any]:
    return {
        "id": str(row.individual_id),
        "attendance-status": row.attendance_status,
        "no-show": row.no_show,
        "payment-status": row.payment_status,
    }


async def _organization_zone(ctx: Context) -> str:
    return await organization_timezone(ctx.session, ctx.organization_id) or "UTC"


def appointment_values(
    row: Appointment,
    attendees: Sequence[AppointmentAttendee],
    now: datetime,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """What AppointmentRead renders of one appointment."""
    video = row.interaction_type == InteractionType.VIDEO_CALL.value
    return {
        "name": row.name,
        "description": row.description,
        "appointment_type": row.appointment_type,
        "generated_from_type": row.generated_from_type,
        "generated_from": row.generated_from,
        "group": row.group,
        "internal": row.internal,
        "recurring": {
            "is_recurring": row.rrule is not None,
            "rrule": row.rrule,
            "next_occurrences": recurrence.occurrences(
                row.rrule, row.start_time, row.time_zone, after=now
            ),
            "series_end": row.series_end,
        },
        "start_time": row.start_time,
        "end_time": row.end_time,
        "actual_start_time": row.actual_start_time,
        "actual_end_time": row.actual_end_time,
        "time_zone": row.time_zone,
        "host": row.host_id,
        "attendees": [
            {
                "id": a.individual_id,
                "attendance_status": a.attendance_status,
                "no_show": a.no_show,
                "payment_status": a.payment_status,
                "last_updated_at": a.last_updated_at,
            }
            for a in attendees
        ],
        "reference_patients": row.reference_patients,
        "interaction_type": row.interaction_type,
        "video_call": video_call(settings, row) if video else None,
        "location": row.location,
        "status": row.status,
        "status_history": row.status_history,
        "visit_note": row.visit_note,
        "reminders": row.reminders,
        "reminder_template": row.reminder_template_id,
        "change_log": row.change_log,
        "extended": row.extended,
        "organization_id": row.organization_id,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "last_updated_by": row.last_updated_by,
        "last_updated_at": row.last_updated_at,
    }


appointments = AppointmentService()
