"""The change path: services say what changed; one function records it.

A service returns :class:`Changed` (the object the caller gets back, and the :class:`Change`
values it made) instead of steering the route factory through side channels. The factory, the
action routes and the jobs hand those changes to :func:`record_changes`, the one function that
writes audit rows (field names only, never values) and domain events, in the request's
transaction, for one change or a batch alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core import audit
from courier.core.auth import Principal
from courier.core.time import utcnow
from courier.events import NewEvent, add_audit_rows, publish_many
from courier.jsonapi.context import Context

M = TypeVar("M")


@dataclass(frozen=True)
class Change:
    """One change of one resource: ``<resource_type>.<verb>`` for ``audience``."""

    resource_type: str
    resource_id: uuid.UUID
    verb: str  # created, updated, deleted, archived, retried ...
    fields: tuple[str, ...] = ()  # names only: never values (no patient data in the audit)
    audience: tuple[uuid.UUID, ...] = ()  # the individuals whose event streams show it
    organization_id: uuid.UUID | None = None  # default: the caller's organization
    data: Mapping[str, Any] | None = None  # extra event payload (ids and counts only)
    audited: bool = True
    published: bool = True
    details: Mapping[str, Any] | None = None  # extra audit facts (ids, counts; no patient data)


@dataclass(frozen=True)
class Actor:
    """Who made a change, as the audit log names it."""

    type: str  # master, api-key, individual-token
    id: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.kind.value, principal.actor_id)


SYSTEM = Actor("system", "courier")  # a job finishing work nobody is asking about right now


def change(
    resource_type: str,
    resource_id: uuid.UUID,
    verb: str,
    *,
    fields: Iterable[str] = (),
    audience: Iterable[uuid.UUID] = (),
    organization_id: uuid.UUID | None = None,
    data: Mapping[str, Any] | None = None,
    audited: bool = True,
    published: bool = True,
    details: Mapping[str, Any] | None = None,
) -> Change:
    """A :class:`Change` from any iterables (fields sorted, audience de-duplicated)."""
    return Change(
        resource_type,
        resource_id,
        verb,
        tuple(sorted(fields)),
        tuple(dict.fromkeys(audience)),
        organization_id,
        data,
        audited,
        published,
        details,
    )


@dataclass
class Changed(Generic[M]):
    """What a service did: the object to answer with and the changes to record.

    ``changes`` may be empty (nothing changed: an idempotent repeat). ``revealed`` holds
    attributes shown in this response only (a secret at creation), ``meta`` the response
    document's meta (e.g. a repair report).
    """

    obj: M
    changes: list[Change] = field(default_factory=list)
    revealed: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def also(self, *more: Change) -> Changed[M]:
        self.changes.extend(more)
        return self


def record_changes(ctx: Context, changes: Sequence[Change]) -> None:
    """Record the changes a request made (see :func:`write_changes`)."""
    principal = ctx.principal
    write_changes(
        ctx.session,
        changes,
        actor=Actor.of(principal),
        request_id=ctx.request_id,
        organization_id=principal.organization_id,
    )


def write_changes(
    session: AsyncSession,
    changes: Sequence[Change],
    *,
    actor: Actor,
    request_id: str | None,
    organization_id: uuid.UUID | None = None,
) -> None:
    """The one writer of audit rows and domain events, for requests, jobs and the CLI alike:
    one row and one event per change, both landing only if the session's transaction commits.
    A change without its own organization belongs to ``organization_id``. A batch is written
    as one: its audit rows by one multi-row INSERT, its events by one (in order), with the
    transaction's others (:mod:`courier.events`)."""
    rows: list[dict[str, Any]] = []
    events: list[NewEvent] = []
    now = utcnow()
    for item in changes:
        org = item.organization_id or organization_id
        if org is None:
            raise ValueError(f"{item.resource_type}.{item.verb}: no organization to record it in")
        if item.audited:
            rows.append(
                audit.row(
                    actor,
                    organization_id=org,
                    action=item.verb,
                    resource_type=item.resource_type,
                    resource_id=item.resource_id,
                    fields=item.fields,
                    request_id=request_id,
                    details=item.details,
                    occurred_at=now,
                )
            )
        if item.published:
            events.append(
                NewEvent(
                    org,
                    item.resource_type,
                    item.verb,
                    item.resource_id,
                    item.audience,
                    {"id": str(item.resource_id), **(item.data or {})},
                )
            )
    if rows:
        add_audit_rows(session, rows)
    publish_many(session, events)


def record_change(
    ctx: Context,
    *,
    resource_type: str,
    verb: str,
    resource_id: uuid.UUID,
    organization_id: uuid.UUID | None = None,
    fields: Sequence[str] = (),
    individual_ids: Iterable[uuid.UUID] = (),
    data: dict[str, Any] | None = None,
    audited: bool = True,
    published: bool = True,
) -> None:
    """One change, by keywords: :func:`record_changes` of one :func:`change`."""
    record_changes(
        ctx,
        [
            change(
                resource_type,
                resource_id,
                verb,
                fields=fields,
                audience=individual_ids,
                organization_id=organization_id,
                data=data,
                audited=audited,
                published=published,
            )
        ],
    )
