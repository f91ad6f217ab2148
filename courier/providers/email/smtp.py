"""The ``smtp`` email adapter: any SMTP server (a relay, SES/Postmark/… SMTP endpoints, Postfix),
through ``aiosmtplib``.

- STARTTLS (required, certificate verified) or implicit TLS, or plain text on closed networks;
  AUTH when a user name is set; a timeout on every command.
- Connections are kept open and reused (up to ``smtp_connections`` per process); a reused one
  the server has closed meanwhile is replaced before anything is sent.
- Replies are classified on their codes: 4xx → :class:`NotSent` (retry later), 5xx →
  :class:`Permanent` with the reply (``RecipientGone`` for a 5.1.x "no such mailbox" at RCPT).
  A connection lost or timed out after the message was written is :class:`Ambiguous`: the
  server may have queued it, so it is never sent again.
- Bounces come back as DSN reports posted to ``/providers/email/bounce`` (signed with
  ``email_inbound_secret``): :meth:`SmtpEmail.verify` and :meth:`SmtpEmail.parse`.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from courier.config import Settings
from courier.core.time import utcnow
from courier.providers.common import (
    Ambiguous,
    InboundEvent,
    NotSent,
    Permanent,
    RawRequest,
    RecipientGone,
    SendResult,
    VendorStatus,
)
from courier.providers.email.base import message_id_for
from courier.providers.email.message import DkimKey, envelope_sender, render_document
from courier.providers.email.sandbox import parse_dsn, recipients_of
from courier.providers.email.signing import verify_report_signature

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


def dkim_key(settings: Settings) -> DkimKey | None:
    """The configured DKIM key, or None when DKIM is not configured (all three settings)."""
    if not (settings.email_dkim_domain and settings.email_dkim_selector):
        return None
    if settings.email_dkim_key_file is None:
        return None
    return DkimKey(
        domain=settings.email_dkim_domain,
        selector=settings.email_dkim_selector,
        private_key=settings.email_dkim_key_file.read_bytes(),
    )


def reply_text(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}".strip()


def classify(code: int, message: str, *, at_rcpt: bool = False) -> Exception:
    """What an SMTP reply code means for the delivery."""
    reply = reply_text(code, message)
    if 400 <= code < 500:
        return NotSent(reply, code=str(code))
    if at_rcpt and message.lstrip().startswith("5.1."):
        return RecipientGone(str(code), reply)
    if 500 <= code < 600:
        return Permanent(str(code), reply)
    return NotSent(f"unexpected SMTP reply {reply}", code=str(code))


@dataclass
class _Pool:
    loop: asyncio.AbstractEventLoop
    idle: list[aiosmtplib.SMTP] = field(default_factory=list)
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


class SmtpEmail:
    """Sends through one SMTP server; verifies and parses signed DSN reports."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.security = settings.smtp_security
        self.port = settings.smtp_port or DEFAULT_PORTS[self.security]
        self.dkim = dkim_key(settings)
        self.tls_context: ssl.SSLContext | None = None
        if self.security != "none":
            cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
            self.tls_context = ssl.create_default_context(cafile=cafile)
        self._pool: _Pool | None = None

    # --- connections ---------------------------------------------------------------------------

    def _current_pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop:
            # Connections belong to the event loop that opened them.
            self._pool = _Pool(loop, slots=asyncio.Semaphore(self.settings.smtp_connections))
        return self._pool

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self.settings.smtp_host,
            port=self.port,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
            timeout=self.settings.smtp_timeout_seconds,
            username=self.settings.smtp_username,
            password=self.settings.smtp_password,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise NotSent(
                f"SMTP authentication failed: {reply_text(exc.code, exc.message)}",
                code=str(exc.code),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise NotSent(
                f"SMTP server refused the connection: {reply_text(exc.code, exc.message)}",
                code=str(exc.code),
            ) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise NotSent(f"cannot reach the SMTP server: {exc}") from exc
        return client

    async def close(self) -> None:
        """Say goodbye on every idle connection (at shutdown)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for client in pool.idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    # --- sending -------------------------------------------------------------------------------

    def document(self, message: EmailMessage, delivery_id: uuid.UUID) -> bytes:
        """The bytes that go on the wire: the delivery's Message-ID set, DKIM-signed when a
        key is configured, without Bcc."""
        del message["Message-ID"]
        message["Message-ID"] = message_id_for(self.settings, delivery_id)
        if "Date" not in message:
            message["Date"] = formatdate(usegmt=True)
        del message["Bcc"]
        return render_document(message, self.dkim)

    async def send(self, message: EmailMessage, *, delivery_id: uuid.UUID) -> SendResult:
        """One SMTP transaction (MAIL, RCPT per address, DATA); returns the server's reply.

        Recipients refused while others were accepted are named in ``vendor_status``."""
        recipients = recipients_of(message)
        if not recipients:
            raise Permanent("554", "the email has no recipient")
        sender = envelope_sender(str(message.get("From", "")))
        document = self.document(message, delivery_id)
        pool = self._current_pool()
        async with pool.slots:
            client = pool.idle.pop() if pool.idle else None
            if client is not None and not client.is_connected:
                client.close()
                client = None
            try:
                if client is None:
                    client = await self._connect()
                    reply = await self._transaction(
                        client, sender, recipients, document, reused=False
                    )
                else:
                    try:
                        reply = await self._transaction(
                            client, sender, recipients, document, reused=True
                        )
                    except _StaleConnectionError:
                        # The server closed the idle connection: nothing was sent; reopen.
                        client.close()
                        client = await self._connect()
                        reply = await self._transaction(
                            client, sender, recipients, document, reused=False
                        )
            except BaseException:
                if client is not None:
                    client.close()
                raise
            pool.idle.append(client)
        return SendResult(
            vendor_id=message_id_for(self.settings, delivery_id),
            vendor_status=reply,
            accepted_at=utcnow(),
        )

    async def _transaction(
        self,
        client: aiosmtplib.SMTP,
        sender: str,
        recipients: list[str],
        document: bytes,
        *,
        reused: bool,
    ) -> str:
        try:
            try:
                await client.mail(sender)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
                if reused:
                    raise _StaleConnectionError from exc
                raise
            refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
            for address in recipients:
                try:
                    await client.rcpt(address)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused[address] = exc
            if len(refused) == len(recipients):
                await client.rset()
                # Retry if any address may yet work; otherwise the first refusal is final.
                first = next(
                    (e for e in refused.values() if 400 <= e.code < 500),
                    next(iter(refused.values())),
                )
                raise classify(first.code, first.message, at_rcpt=True)
        except aiosmtplib.SMTPResponseException as exc:
            if not isinstance(exc, aiosmtplib.SMTPRecipientRefused):
                await _reset(client)
            raise classify(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise NotSent(f"SMTP connection failed before the message was sent: {exc}") from exc
        try:
            response = await client.data(document)
        except aiosmtplib.SMTPResponseException as exc:
            await _reset(client)
            raise classify(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # The message may have been written in full: the server may have taken it.
            raise Ambiguous(f"SMTP connection lost while sending the message: {exc}") from exc
        reply = reply_text(response.code, response.message)
        if refused:
            reply += "; refused: " + ", ".join(
                f"{address} ({reply_text(e.code, e.message)})" for address, e in refused.items()
            )
        return reply

    # --- bounces (the generic inbound path) -----------------------------------------------------

    def verify(self, request: RawRequest) -> bool:
        return verify_report_signature(self.settings, request)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        """Bounces: the DSN's failed recipients (the sandbox's reader of RFC 3464)."""
        return parse_dsn(request.body)

    async def fetch(
        self, *, delivery_id: uuid.UUID, vendor_id: str | None, recipient: str
    ) -> VendorStatus | None:
        """SMTP has no way to ask about an earlier message: a delivery left in doubt waits
        for a bounce, then the grace period (never resent)."""
        return None


class _StaleConnectionError(Exception):
    """A reused connection turned out closed before anything was sent."""


async def _reset(client: aiosmtplib.SMTP) -> None:
    """Clear the server's envelope after a refusal, so the connection can be reused."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
