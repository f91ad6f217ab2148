"""Planning a bulk message: who receives it, and in which language.

The fan-out's plan hook (:data:`courier.domains.messaging_bulk.fanout.BULK_MESSAGES`) expands
the recipients once, when the bulk message is sent: the ``individual-ids`` that still exist
plus the members of ``individual-group-ids`` at that moment, without duplicates and without the
sender, in id order. Each recipient's text is chosen then, by their locale
(:mod:`courier.domains.messaging.locales`), and kept with them as the target's ``text-key``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.time import now_ms
from courier.domains.messaging.locales import choose_text_key, reader_locales
from courier.domains.messaging_bulk import repository as repo
from courier.domains.messaging_bulk.schemas import BULK_TYPE
from courier.jobs import PermanentJobError
from courier.jobs.fanout import FanoutRun, Target
from courier.jsonapi.changes import SYSTEM, change, write_changes
from courier.models.messaging_bulk import BulkStatus, MessagingBulkMessage

TEXT_KEY = "text-key"  # a target's chosen message-js entry (absent: the plain message)


def has_text(message: str, message_js: dict[str, str]) -> bool:
    return bool(message.strip()) or any(v.strip() for v in message_js.values())


def text_for(bulk: MessagingBulkMessage, key: str | None) -> str:
    """The text a recipient gets: the ``message-js`` entry chosen for them, else ``message``."""
    if key is not None:
        chosen = (bulk.message_js or {}).get(key)
        if isinstance(chosen, str) and chosen.strip():
            return chosen
    return bulk.message


def fallback_key(bulk: MessagingBulkMessage) -> str | None:
    """For a recipient no translation fits: ``message``, else English, else the first entry."""
    if bulk.message.strip():
        return None
    texts = {k: v for k, v in (bulk.message_js or {}).items() if v.strip()}
    return choose_text_key(texts, "en") or (min(texts) if texts else None)


def announce_status(session: AsyncSession, bulk: MessagingBulkMessage, verb: str) -> None:
    """Tell the sender's event stream how far the bulk message got (``updated`` when planned,
    ``posted`` when done): progress of a job, so an event without an audit row."""
    audience = [bulk.sender_individual_id] if bulk.sender_individual_id else []
    write_changes(
        session,
        [
            change(
                BULK_TYPE,
                bulk.id,
                verb,
                audience=audience,
                organization_id=bulk.organization_id,
                data={"status": bulk.status},
                audited=False,
            )
        ],
        actor=SYSTEM,
        request_id=None,
    )


async def plan_recipients(run: FanoutRun) -> list[Target]:
    """The recipients, each with the text chosen for them; the bulk message is ``posting``
    from now on (with nobody to reach, the fan-out settles it ``posted`` at once)."""
    session, org = run.session, run.organization_id
    bulk = await repo.load_bulk(session, org, run.subject_id, for_update=True)
    if bulk is None:
        raise PermanentJobError("the bulk message no longer exists")
    recipients = await repo.recipients_of(session, bulk)
    locales = await reader_locales(session, org, recipients)
    texts = {k: v for k, v in (bulk.message_js or {}).items() if v.strip()}
    default = fallback_key(bulk)
    targets = []
    for ident in recipients:
        key = choose_text_key(texts, locales.get(ident)) or default
        targets.append(Target(ident, {TEXT_KEY: key} if key is not None else None))
    bulk.last_modified_at = now_ms()
    if targets:
        bulk.status = BulkStatus.POSTING.value
        announce_status(session, bulk, "updated")
    return targets
