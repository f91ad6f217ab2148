"""The rules of user emails: drafts, sending, the status an email shows, bounces.

An email is created as a draft (or sent at once with ``auto-send``). Sending it checks that
no recipient bounced for the organization and that its attachments are processed, then
creates one delivery of the generic state machine (``courier.providers.delivery``), whose
send job calls the configured email adapter. The email mirrors its delivery:

    accepted, queued → queued;  sending → sending;  sent, delivered → sent;
    failed, undelivered → failed

``result`` is the SMTP server's reply once sent, the last temporary refusal while it waits to
be retried, or why it failed (the permanent reply, or the bounce). Services never commit and
never call providers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from courier.config import Settings
from courier.core.errors import (
    ApiError,
    ErrorItem,
    conflict,
    forbidden,
    invalid_attribute,
    not_found,
)
from courier.core.time import utcnow
from courier.domains.email import repository
from courier.domains.email.schemas import EmailCreate
from courier.jsonapi.changes import Changed
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.email import EmailStatus, UserEmail
from courier.providers.common import DeliveryStatus
from courier.providers.delivery import SEND_JOB, DeliveryChange, create_delivery, on_delivery_change
from courier.providers.email import EMAIL
from courier.providers.email.message import EmailContent

RESOURCE_TYPE = "user-emails"

STATUS_OF: dict[DeliveryStatus, EmailStatus] = {
    DeliveryStatus.ACCEPTED: EmailStatus.QUEUED,
    DeliveryStatus.QUEUED: EmailStatus.QUEUED,
    DeliveryStatus.SENDING: EmailStatus.SENDING,
    DeliveryStatus.SENT: EmailStatus.SENT,
    DeliveryStatus.DELIVERED: EmailStatus.SENT,
    DeliveryStatus.UNDELIVERED: EmailStatus.FAILED,
    DeliveryStatus.FAILED: EmailStatus.FAILED,
}


def address_bouncing(addresses: Sequence[tuple[str, str]]) -> ApiError:
    """422 naming each recipient that bounced and why."""
    return ApiError(
        422,
        [
            ErrorItem(
                f"{address} bounced earlier for this organization ({reason}); emails to it "
                "are refused",
                "address-bouncing",
                pointer="/data/attributes/to",
            )
            for address, reason in addresses
        ],
        {},
        False,
    )


class EmailService(CrudService[UserEmail]):
    async def present(self, ctx: Context, rows: Sequence[UserEmail]) -> list[dict[str, Any]]:
        return present_rows(rows)

    def individuals_of(self, obj: UserEmail) -> Sequence[uuid.UUID]:
        return (obj.individual_id,) if obj.individual_id else ()

    async def create(self, ctx: Context, attrs: WriteAttributes) -> UserEmail:
        assert isinstance(attrs, EmailCreate)
        org = ctx.organization_id
        if attrs.sender_organization_id not in (None, org):
            raise not_found("organization")
        individual_id = await self._individual(ctx, attrs.individual_id)
        if attrs.user_id is not None and not await repository.user_exists(
            ctx.session, org, attrs.user_id
        ):
            raise not_found("user")
        if attrs.message is None and attrs.message_html is None:
            raise invalid_attribute("message", "an email needs message or message-html")
        now = utcnow()
        email = UserEmail(
            id=uuid.uuid4(),
            organization_id=org,
            individual_id=individual_id,
            user_id=attrs.user_id,
            created_by=ctx.principal.actor_id,
            to=list(attrs.to),
            subject=attrs.subject,
            message=attrs.message,
            message_html=attrs.message_html,
            status=EmailStatus.DRAFT.value,
            created_at=now,
            last_modified_at=now,
        )
        ctx.session.add(email)
        await ctx.session.flush()
        if attrs.auto_send:
            await check_sendable(ctx.session, org, email)
            await queue_email(ctx.session, ctx.settings, email)
        return email

    async def _individual(self, ctx: Context, given: uuid.UUID | None) -> uuid.UUID | None:
        if ctx.principal.is_individual:
            if given is not None and given != ctx.principal.individual_id:
                raise forbidden("an individual token may write only its own emails")
            return ctx.principal.individual_id
        chosen = given or ctx.acting_individual_id
        if chosen is not None and not await repository.individual_exists(
            ctx.session, ctx.organization_id, chosen
        ):
            raise not_found("individual")
        return chosen

    async def do_send(self, ctx: Context, email: UserEmail) -> Changed[UserEmail]:
        """Queue a draft for sending (409 if it is not a draft)."""
        if email.status != EmailStatus.DRAFT.value:
            raise conflict(
                f"only a draft can be sent; this email is {email.status}", "email-not-draft"
            )
        await check_sendable(ctx.session, ctx.organization_id, email)
        await queue_email(ctx.session, ctx.settings, email)
        return self.changed(ctx, "updated", email, ["status", "task-id"])


async def do_send(ctx: Context, email: UserEmail, _body: Any) -> Changed[UserEmail]:
    """Queue a draft for sending: its status becomes ``queued``, then follows the delivery
    (``sending``, ``sent``, or ``failed`` with the server's reply in ``result``). Not a draft:
    409. A recipient that bounced for this organization: 422. An attachment whose upload is
    not processed: 409."""
    from courier.domains.email.resource import user_emails

    service: EmailService = user_emails.service  # type: ignore[assignment]
    return await service.do_send(ctx, email)


async def check_sendable(
    session: AsyncSession, organization_id: uuid.UUID, email: UserEmail
) -> None:
    """No recipient bounced earlier; no attachment is still waiting to be processed."""
    bounced = await repository.bouncing(session, organization_id, email.to)
    if bounced:
        raise address_bouncing(
            [(b.address, f"{b.status or 'bounced'}: {b.reason}") for b in bounced]
        )
    for attachment in await repository.attachments_of(session, organization_id, email.id):
        if attachment.status == "pending":  # a rejected file simply does not travel
            raise conflict(
                f"attachment {attachment.filename} is still pending: process its upload "
                "before sending",
                "attachment-not-ready",
            )


async def queue_email(session: AsyncSession, settings: Settings, email: UserEmail) -> None:
    """Create the email's delivery (its send job lands with the caller's transaction)."""
    delivery = await create_delivery(
        session,
        settings,
        organization_id=email.organization_id,
        kind=EMAIL,
        resource_type=RESOURCE_TYPE,
        resource_id=email.id,
        recipient=", ".join(email.to)[:320],
    )
    email.delivery_id = delivery.id
    email.status = EmailStatus.QUEUED.value
    email.task_id = await repository.send_job_id(
        session, email.organization_id, f"{SEND_JOB}:{delivery.id}:0"
    )


async def do_queue_rendered(
    session: AsyncSession,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    to: Sequence[str],
    content: EmailContent,
    individual_id: uuid.UUID | None,
    created_by: str,
) -> UserEmail:
    """Send what a template rendered (subject, text, HTML) as an email, through the same path
    as ``POST /v1/user-emails/`` with ``auto-send``: the notifications' templates call this.

    ``to`` must be valid addresses (``courier.domains.people.schemas.check_email``). An address
    that bounced raises the same 422 as the API; the caller decides whether to skip it."""
    if content.text is None and content.html is None:
        raise ValueError("a rendered email needs a text or an HTML body")
    now = utcnow()
    email = UserEmail(
        id=uuid.uuid4(),
        organization_id=organization_id,
        individual_id=individual_id,
        user_id=None,
        created_by=created_by,
        to=list(to),
        subject=content.subject,
        message=content.text,
        message_html=content.html,
        status=EmailStatus.DRAFT.value,
        created_at=now,
        last_modified_at=now,
    )
    session.add(email)
    await session.flush()
    await check_sendable(session, organization_id, email)
    await queue_email(session, settings, email)
    return email


# --- the email follows its delivery ---------------------------------------------------------


@on_delivery_change(RESOURCE_TYPE)
async def follow_delivery(session: AsyncSession, change: DeliveryChange) -> None:
    email = await repository.load_email(session, change.organization_id, change.resource_id)
    if email is None:
        return
    status = STATUS_OF[change.state]
    email.status = status.value
    if change.state is DeliveryStatus.SENT and email.sent_at is None:
        email.sent_at = utcnow()
    if change.state is DeliveryStatus.UNDELIVERED:
        bounce = await repository.bounce_report(session, change.delivery_id)
        if bounce is not None:
            await record_bounce(session, change.organization_id, email, bounce.raw or {})
            return
    if status is EmailStatus.FAILED or (
        change.state is DeliveryStatus.QUEUED and change.code is not None
    ):
        report = await repository.latest_report(session, change.organization_id, change.delivery_id)
        reason = (report.message if report is not None else None) or change.code or "failed"
        if status is EmailStatus.QUEUED:
            reason = f"{reason} (will be retried)"
        email.result = reason[:1000]


async def record_bounce(
    session: AsyncSession, organization_id: uuid.UUID, email: UserEmail, report: dict[str, Any]
) -> None:
    """A DSN said a recipient bounced: the email failed, and the address is refused from now
    on for this organization."""
    recipient = str(report.get("recipient") or "")
    status = str(report.get("status") or "") or None
    diagnostic = str(report.get("diagnostic") or "")
    email.status = EmailStatus.FAILED.value
    email.result = f"bounced by {recipient}: {status or ''} {diagnostic}".strip()[:1000]
    if recipient:
        await repository.mark_bouncing(
            session,
            organization_id,
            recipient,
            status=status,
            reason=diagnostic or status or "bounced",
            email_id=email.id,
        )


def present_rows(rows: Sequence[UserEmail]) -> list[dict[str, Any]]:
    """The attributes of each email as the API shows them."""
    from courier.domains.email.schemas import EmailRead

    out: list[dict[str, Any]] = []
    for row in rows:
        out.append(
            {
                "created_at": row.created_at,
                "created_by": row.created_by,
                "individual_id": row.individual_id,
                "last_modified_at": row.last_modified_at,
                "message": row.message,
                "message_html": row.message_html,
                "result": row.result,
                "sender_organization_id": row.organization_id,
                "status": row.status,
                "subject": row.subject,
                "task_id": str(row.task_id) if row.task_id else None,
                "to": list(row.to),
                "user_id": row.user_id,
            }
        )
    return render_rows(EmailRead, out)
