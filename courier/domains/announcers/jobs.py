"""``announcers.evaluate``: act on a range of events (:mod:`.evaluation`), each (announcer,
event) at most once, the notifications written in the job's own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from courier.domains.announcers.evaluation import Sent, dedupe_key, evaluate
from courier.domains.announcers.service import EVALUATE_KIND
from courier.domains.announcers.triggers import Subject
from courier.domains.user_notifications.service import NotificationTarget, Notified, notify_many
from courier.jobs import JobContext, job_handler
from courier.models.announcer import Announcer
from courier.models.event import Event
from courier.models.template import Template


@job_handler(EVALUATE_KIND)
async def evaluate_events(job: JobContext) -> dict[str, Any]:
    async def send(
        announcer: Announcer, template: Template, event: Event, recipients: Sequence[Subject]
    ) -> Sent:
        results = await notify_many(
            job.session,
            job.settings,
            organization_id=job.organization_id,
            template=template,
            data=announcer.args.get("data") or {},
            targets=[NotificationTarget(r.individual_id, r.user_id) for r in recipients],
            source=f"announcer:{announcer.id}:{event.id}",
            dedupe_keys=[dedupe_key(announcer.id, event.id, r.individual_id) for r in recipients],
        )
        notified = sum(isinstance(outcome, Notified) for outcome in results.values())
        return Sent(notified, len(results) - notified)

    summary = await evaluate(
        job.session,
        job.organization_id,
        int(job.payload["from_seq"]),
        int(job.payload["to_seq"]),
        send,
    )
    return summary.as_result()
