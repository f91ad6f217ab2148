"""Resolve a number lookup through the configured sms adapter."""

from __future__ import annotations

import uuid
from typing import Any

from courier.core.time import utcnow
from courier.domains.text_accounts import repository as accounts
from courier.domains.text_number_info import repository as repo
from courier.domains.text_number_info.service import LOOKUP_JOB
from courier.domains.texts.jobs import account_adapter
from courier.events import publish
from courier.jobs import JobContext, job_handler
from courier.providers.common import Permanent
from courier.providers.sms.kind import SMS


@job_handler(LOOKUP_JOB, max_attempts=6)
async def resolve(job: JobContext) -> dict[str, Any] | None:
    ident = uuid.UUID(job.payload["info_id"])
    row = await repo.by_id(job.session, job.organization_id, ident)
    if row is None or row.status != "pending":
        return {"skipped": True}
    adapter = job.providers.get(SMS)
    account = await accounts.account_of(job.session, job.organization_id)
    if account is not None:
        adapter = account_adapter(adapter, account, job.settings)
    number = row.number
    await job.checkpoint()
    try:
        found = await adapter.lookup(number)
    except Permanent as exc:
        row.status, row.error = "failed", f"{exc.code}: {exc.message}"[:255]
    else:
        row.status = "resolved" if found.valid else "failed"
        row.error = None if found.valid else "not a valid number"
        row.line_type = found.line_type
        row.carrier_name = found.carrier
        row.country = found.country
        row.mobile_country_code = found.mobile_country_code
        row.mobile_network_code = found.mobile_network_code
        row.resolved_at = utcnow()
    row.last_modified_at = utcnow()
    publish(
        job.session,
        organization_id=row.organization_id,
        resource_type="text-number-info",
        verb=row.status,
        resource_id=row.id,
        data={"id": str(row.id), "status": row.status},
    )
    return {"status": row.status}
