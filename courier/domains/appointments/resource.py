"""``appointments`` (seed 003): list, get, book, modify."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, or_

from courier.core.auth import Permission
from courier.domains.appointments.repository import appointments_repository, attends
from courier.domains.appointments.schemas import (
    APPOINTMENT_TYPE,
    AppointmentCreate,
    AppointmentRead,
    AppointmentUpdate,
)
from courier.domains.appointments.service import appointments
from courier.jsonapi import query as q
from courier.jsonapi.context import Context
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.appointment import Appointment, AppointmentStatus, InteractionType


def _attendee(stmt: Select[Any], value: Any, _ctx: Context) -> Select[Any]:
    return stmt.where(attends(value))


def _series_end(
    stmt: Select[Any], comparisons: list[tuple[str, datetime]], _ctx: Context
) -> Select[Any]:
    """Compare the end of the last occurrence; a series without end is later than any time."""
    column = Appointment.series_end
    conditions: list[ColumnElement[bool]] = []
    for op, moment in comparisons:
        if op in (">", ">="):
            bound = column > moment if op == ">" else column >= moment
            conditions.append(or_(column.is_(None), bound))
        else:
            conditions.append(column < moment if op == "<" else column <= moment)
    return stmt.where(*conditions)


appointments_spec = register(
    ResourceSpec(
        type_name=APPOINTMENT_TYPE,
        model=Appointment,
        read_schema=AppointmentRead,
        create_schema=AppointmentCreate,
        update_schema=AppointmentUpdate,
        service=appointments,
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE, Op.UPDATE}),
        filters=[
            q.uuid_eq("filter[host]", Appointment.host_id, "Appointments this individual hosts"),
            q.Filter(
                "filter[attendee]",
                q.parse_uuid,
                _attendee,
                "Appointments this individual attends",
                schema={"type": "string", "format": "uuid"},
            ),
            q.enum(
                "filter[status]",
                Appointment.status,
                [s.value for s in AppointmentStatus],
                "Appointments in this status",
            ),
            q.enum(
                "filter[interaction-type]",
                Appointment.interaction_type,
                [i.value for i in InteractionType],
                "Appointments of this interaction type",
            ),
            q.boolean("filter[group]", Appointment.group, "Group appointments (or not)"),
            q.boolean("filter[internal]", Appointment.internal, "Internal appointments (or not)"),
            q.time_window(
                "start-time",
                Appointment.start_time,
                "Compare the planned start (of the first occurrence): a comparator (>, <, >=, "
                "<=) and an ISO 8601 time; repeat to bound a window",
            ),
            q.Filter(
                "filter[cmp-end-time]",
                q.parse_time_comparisons,
                _series_end,
                "Compare the planned end of the last occurrence (a recurrence without end is "
                "after any time): with filter[cmp-start-time]<T, filter[cmp-end-time]>S finds "
                "what happens between S and T",
                repeatable=True,
                schema={"type": "string", "pattern": q.TIME_COMPARISON_PATTERN},
            ),
        ],
        sorts={
            "start-time": Appointment.start_time,
            "created-at": Appointment.created_at,
            "last-updated-at": Appointment.last_updated_at,
            "name": Appointment.name,
        },
        default_sort=[("start-time", False)],
        permissions={Op.CREATE: Permission.COMMUNICATE, Op.UPDATE: Permission.COMMUNICATE},
        repository=appointments_repository,
        summaries={
            Op.LIST: "List appointments (filter by host, attendee, status, time window ...)",
            Op.GET: "Get one appointment",
            Op.CREATE: "Book an appointment (video_call: its video visit and join-url)",
            Op.UPDATE: "Modify an appointment (updated-by required; status history and change "
            "log kept)",
        },
        singular="appointment",
        tag="appointments",
    )
)
