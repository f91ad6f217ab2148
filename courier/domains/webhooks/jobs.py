"""Webhook jobs: fan an event batch out to the endpoints, deliver one attempt (see
:mod:`courier.events.webhooks`)."""

from __future__ import annotations

from typing import Any

from courier.events import webhooks
from courier.jobs import JobContext, job_handler


@job_handler(webhooks.FANOUT_KIND)
async def fan_out(job: JobContext) -> dict[str, Any]:
    return await webhooks.fan_out(job)


@job_handler(webhooks.DELIVER_KIND, max_attempts=webhooks.DELIVER_JOB_ATTEMPTS)
async def deliver(job: JobContext) -> dict[str, Any]:
    return await webhooks.deliver(job)
