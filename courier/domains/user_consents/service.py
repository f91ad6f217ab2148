"""SMS consents: a request texted to the user's phone (``args.messages.initial``) from the
account's default number; the replies move it (:mod:`courier.domains.texts.inbound`): a
YES-like reply accepts (and texts ``accept``), NO or STOP declines, anything else is answered
with ``invalid-response``; STOP after acceptance revokes; an unanswered request expires.
Every change is kept in the consent's history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from courier.core.errors import forbidden, invalid_attribute, not_found, unprocessable
from courier.core.time import format_timestamp, utcnow
from courier.domains.text_accounts import repository as accounts
from courier.domains.texts.inbound import consent_changed
from courier.domains.texts.service import TextRefusedError, choose_number, queue_text
from courier.domains.user_consents import repository as repo
from courier.domains.user_consents.schemas import UserConsentCreate
from courier.jobs import enqueue
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.resource import CrudService
from courier.models.user_consent import UserConsent, UserConsentEvent

EXPIRE_JOB = "user-consents.expire"


class UserConsentService(CrudService[UserConsent]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> UserConsent:
        assert isinstance(attrs, UserConsentCreate)
        if attrs.organization_id is not None and attrs.organization_id != ctx.organization_id:
            raise not_found("organization")
        user = await repo.user(ctx.session, ctx.organization_id, attrs.user_id)
        if user is None:
            raise invalid_attribute("user-id", "no such user in this organization")
        phone = getattr(user, "phone", None)
        if not phone:
            raise unprocessable("the user has no phone number to text", "no-phone")
        account = await accounts.account_of(ctx.session, ctx.organization_id)
        if account is None:
            raise unprocessable("the organization has no text account", "no-text-account")
        num = await choose_number(ctx.session, ctx.organization_id, account, None, None)
        consent = UserConsent(
            id=uuid.uuid4(),
            organization_id=ctx.organization_id,
            user_id=user.id,
            type="sms",
            state="pending",
            target_id=phone,
            number_id=num.id,
            args=attrs.args.model_dump(by_alias=True, exclude_none=True),
        )
        ctx.session.add(consent)
        ctx.session.add(
            UserConsentEvent(
                organization_id=ctx.organization_id,
                consent_id=consent.id,
                state="pending",
                reason="requested",
            )
        )
        await ctx.session.flush()
        try:
            await queue_text(
                ctx.session,
                ctx.settings,
                account=account,
                num=num,
                target=phone,
                message=attrs.args.messages.initial,
                purpose="consent",
                values={"consent_id": consent.id},
            )
        except TextRefusedError as exc:
            raise forbidden(str(exc)) from exc
        if attrs.args.expires_in_hours:
            consent.expires_at = utcnow() + timedelta(hours=attrs.args.expires_in_hours)
            await enqueue(
                ctx.session,
                EXPIRE_JOB,
                {"consent_id": consent.id},
                organization_id=ctx.organization_id,
                run_at=consent.expires_at,
            )
        return consent

    async def present(self, ctx: Context, rows: Sequence[UserConsent]) -> list[dict[str, Any]]:
        ids = [row.id for row in rows]
        history: dict[uuid.UUID, list[dict[str, str]]] = {i: [] for i in ids}
        if ids:
            for event in await repo.history(ctx.session, ctx.organization_id, ids):
                history[event.consent_id].append(
                    {
                        "state": event.state,
                        "reason": event.reason,
                        "at": format_timestamp(event.created_at),
                    }
                )
        out = await super().present(ctx, rows)
        for row, attributes in zip(rows, out, strict=True):
            attributes["history"] = history[row.id]
        return out


__all__ = ["UserConsentService", "consent_changed"]
