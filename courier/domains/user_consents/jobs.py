"""Pending consent requests expire."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from courier.core.tenancy import scoped
from courier.domains.texts.inbound import consent_changed
from courier.domains.user_consents.service import EXPIRE_JOB
from courier.jobs import JobContext, job_handler
from courier.models.user_consent import UserConsent


@job_handler(EXPIRE_JOB)
async def expire_consent(job: JobContext) -> dict[str, Any] | None:
    stmt = scoped(
        select(UserConsent).where(UserConsent.id == uuid.UUID(job.payload["consent_id"])),
        UserConsent,
        job.organization_id,
    )
    consent = (await job.session.execute(stmt)).scalar_one_or_none()
    if consent is None or consent.state != "pending":
        return {"skipped": True}
    consent_changed(job.session, consent, "expired", "no-answer")
    return {"state": "expired"}
