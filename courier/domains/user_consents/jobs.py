"""Pending consent requests expire."""

from __future__ import annotations

import uuid
from typing import Any

from courier.domains.texts.inbound import consent_changed
from courier.domains.user_consents import repository as repo
from courier.domains.user_consents.service import EXPIRE_JOB
from courier.jobs import JobContext, job_handler


@job_handler(EXPIRE_JOB)
async def expire_consent(job: JobContext) -> dict[str, Any] | None:
    ident = uuid.UUID(job.payload["consent_id"])
    consent = await repo.consent(job.session, job.organization_id, ident)
    if consent is None or consent.state != "pending":
        return {"skipped": True}
    consent_changed(job.session, consent, "expired", "no-answer")
    return {"state": "expired"}
