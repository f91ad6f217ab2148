"""Jobs of messaging channels: texting a provider's post to the participant of a channel whose
SMS path is on (:mod:`courier.domains.messaging.sms`). Importing this module (as every worker
does) also registers the bridge's hooks into received texts: replies posted into channels, and
channels opened for unknown phones (:mod:`courier.domains.messaging.sms_openings`)."""

from __future__ import annotations

import uuid
from typing import Any

from courier.domains.messaging import analysis, sms, sms_openings  # noqa: F401 (the opener)
from courier.jobs import JobContext, job_handler


@job_handler(sms.POST_JOB)
async def text_post(job: JobContext) -> dict[str, Any] | None:
    message_id = uuid.UUID(str(job.payload["message_id"]))
    return await sms.text_post(job.session, job.settings, job.organization_id, message_id)


@job_handler(analysis.ANALYSE_JOB)
async def analyse_messages(job: JobContext) -> dict[str, Any] | None:
    """Sentiment and key phrases of freshly posted or edited messages."""
    ident = uuid.UUID(str(job.payload["message_id"]))
    stored = await analysis.analyse_messages(job.session, job.organization_id, [ident])
    return {"analyzed": stored}
