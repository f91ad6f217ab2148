"""Jobs of messaging channels: texting a provider's post to the participant of a channel whose
SMS path is on (:mod:`courier.domains.messaging.sms`)."""

from __future__ import annotations

import uuid
from typing import Any

from courier.domains.messaging import sms
from courier.jobs import JobContext, job_handler


@job_handler(sms.POST_JOB)
async def text_post(job: JobContext) -> dict[str, Any] | None:
    message_id = uuid.UUID(str(job.payload["message_id"]))
    return await sms.text_post(job.session, job.settings, job.organization_id, message_id)
