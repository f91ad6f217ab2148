"""Provisioning a number: the carrier is called once (a recorded step), then the number is
bound (``active``) or marked ``failed`` with the carrier's reason."""

from __future__ import annotations

import uuid
from typing import Any

from courier.domains.text_accounts import repository as repo
from courier.domains.text_accounts.service import PROVISION_JOB
from courier.domains.texts.jobs import account_adapter
from courier.events import publish
from courier.jobs import JobContext, job_handler
from courier.providers.common import Permanent, public_base
from courier.providers.sms.kind import SMS


@job_handler(PROVISION_JOB, max_attempts=8)
async def provision_number(job: JobContext) -> dict[str, Any] | None:
    num = await repo.number(job.session, job.organization_id, uuid.UUID(job.payload["number_id"]))
    if num is None or num.status != "pending":
        return {"skipped": True}
    account = await repo.account(job.session, job.organization_id, num.account_id)
    assert account is not None
    adapter = account_adapter(job.providers.get(SMS), account, job.settings)
    inbound = f"{public_base(job.settings)}/v1/text-account-numbers/{num.id}/inbound/"
    area, phone = num.area_code, num.phone_number

    async def call() -> dict[str, Any]:
        try:
            if phone is not None:
                got = await adapter.claim_number(phone, inbound_url=inbound)
            else:
                got = await adapter.provision_number(str(area), inbound_url=inbound)
        except Permanent as exc:
            return {"error": f"{exc.code}: {exc.message}"}
        return {"number": got.__dict__}

    await job.checkpoint()
    result = await job.step("provider", call) or {}
    if "error" in result:
        num.status, num.error = "failed", str(result["error"])[:255]
    else:
        got = result["number"]
        caps = got.get("capabilities") or {}
        num.status = "active"
        num.phone_number = got["number"]
        num.provider_id = got.get("vendor_id")
        num.capability_sms = bool(caps.get("sms"))
        num.capability_mms = bool(caps.get("mms"))
        num.capability_voice = bool(caps.get("voice"))
        for name in ("lata", "rate_center", "region", "postal_code", "latitude", "longitude"):
            setattr(num, name, got.get(name))
        if account.phone_number is None:
            account.phone_number = num.phone_number
    publish(
        job.session,
        organization_id=num.organization_id,
        resource_type="text-account-numbers",
        verb="updated",
        resource_id=num.id,
        data={"id": str(num.id), "status": num.status},
    )
    return {"status": num.status}
