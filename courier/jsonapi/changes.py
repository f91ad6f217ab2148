"""Recording a change: the audit row and the domain event, together, in the request's
transaction. Every domain records its changes through :func:`record_change`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from courier.core import audit
from courier.events import publish
from courier.jsonapi.context import Context


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
    """An audit row (field names only, never values) and the ``<resource_type>.<verb>`` event
    for ``individual_ids`` (whose streams show it). Both land only if the transaction commits."""
    org = organization_id or ctx.organization_id
    if audited:
        audit.record(
            ctx.session,
            ctx.principal,
            organization_id=org,
            action=verb,
            resource_type=resource_type,
            resource_id=resource_id,
            fields=fields,
            request_id=ctx.request_id,
        )
    if published:
        publish(
            ctx.session,
            organization_id=org,
            resource_type=resource_type,
            verb=verb,
            resource_id=resource_id,
            individual_ids=individual_ids,
            data={"id": str(resource_id), **(data or {})},
        )
