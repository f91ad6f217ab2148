"""``messaging-responders.reply``: post an auto-responder's reply to a participant's message.

Enqueued in the participant's posting transaction (dedupe key per responder and message). The
reply, its audit row, its event and the channel's quiet-period claim commit together with the
job's "succeeded", or not at all: a job taken up again after a crash replies once.
"""

from __future__ import annotations

import uuid
from typing import Any

from courier.domains.messaging_responders.service import REPLY_JOB, reply
from courier.jobs import JobContext, job_handler


@job_handler(REPLY_JOB)
async def auto_reply(job: JobContext) -> dict[str, Any] | None:
    return await reply(
        job.session,
        job.organization_id,
        uuid.UUID(str(job.payload["responder_id"])),
        uuid.UUID(str(job.payload["message_id"])),
        quiet_seconds=job.settings.auto_responder_quiet_seconds,
    )
