"""Building the RFC 5322 document of an email, the same way for every adapter.

What Courier asks an email adapter to send is an :class:`OutgoingEmail` (provider words, no
models). :func:`build_message` turns it into a standard library
:class:`email.message.EmailMessage`:

- text only: one ``text/plain`` part; HTML given: ``multipart/alternative`` with the text
  (derived from the HTML when none was given) and the HTML, sanitised with ``nh3``;
- attachments: the above inside ``multipart/mixed``, each file with its content type;
- ``List-Unsubscribe`` when the organization has an unsubscribe URL.

:func:`render_document` gives the bytes that go on the wire (CRLF line ends), signed with
DKIM (``dkimpy``) when a key is configured. The adapter sets the ``Message-ID`` that ties a
bounce to its delivery (:func:`courier.providers.email.base.message_id_for`).
"""

from __future__ import annotations

import html as html_entities
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

# Tags kept in an email's HTML: nh3's safe defaults (no script, style, iframe, form, event
# handlers or javascript: links). Inline style attributes are dropped with everything else
# that could hide content or reach out.
_BLOCK = re.compile(
    r"</?(p|div|h[1-6]|ul|ol|li|tr|table|blockquote|pre)\b[^>]*>|<br\s*/?>", re.IGNORECASE
)
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True)
class EmailContent:
    """What a person reads: subject, plain text and/or HTML (at least one body).

    Templates (notifications) render to this too, so every email goes out the same way."""

    subject: str
    text: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class EmailAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class DkimKey:
    """A DKIM signing key: ``d=`` domain, ``s=`` selector and the PEM private key."""

    domain: str
    selector: str
    private_key: bytes


@dataclass(frozen=True)
class OutgoingEmail:
    """One email as Courier composes it (an adapter then sends it as one transaction)."""

    sender: str
    to: Sequence[str]
    content: EmailContent
    attachments: Sequence[EmailAttachment] = ()
    unsubscribe_url: str | None = None
    reply_to: str | None = None
    date: datetime | None = None
    extra_headers: Sequence[tuple[str, str]] = field(default=())


def sanitize_html(markup: str) -> str:
    """The HTML a recipient's mail client gets: nh3's allowlist, links made ``noopener``."""
    import nh3  # on first use, as in text_from_html: a serving process may never send an email

    return nh3.clean(markup)


def text_from_html(markup: str) -> str:
    """A readable plain-text alternative of (sanitised) HTML."""
    import nh3

    marked = _BLOCK.sub(lambda m: "\n" + m.group(0) + "\n", markup)
    stripped = html_entities.unescape(nh3.clean(marked, tags=set()))
    lines = [_SPACES.sub(" ", line).strip() for line in stripped.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The email as a standard library message (see the module's docstring)."""
    content = email.content
    if content.text is None and content.html is None:
        raise ValueError("an email needs a text or an HTML body")
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message["Subject"] = content.subject
    message["Date"] = format_datetime(email.date) if email.date else _now_header()
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    if email.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
    for name, value in email.extra_headers:
        message[name] = value
    html = sanitize_html(content.html) if content.html is not None else None
    text = content.text if content.text is not None else text_from_html(html or "")
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for attachment in email.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message


def render_document(message: EmailMessage, dkim_key: DkimKey | None = None) -> bytes:
    """The message's bytes as sent (CRLF), with a ``DKIM-Signature`` first when a key is set."""
    document = message.as_bytes(policy=policy.SMTP)
    if dkim_key is None:
        return document
    import dkim  # dkimpy (and dnspython): only a process that signs loads them

    signature: bytes = dkim.sign(
        document,
        dkim_key.selector.encode(),
        dkim_key.domain.encode(),
        dkim_key.private_key,
        include_headers=[
            b"from",
            b"to",
            b"subject",
            b"date",
            b"message-id",
            b"mime-version",
            b"content-type",
            b"list-unsubscribe",
        ],
    )
    return signature + document


def envelope_sender(sender: str) -> str:
    """The bare address of a From value (``Clinic <noreply@clinic.test>``)."""
    from email.headerregistry import HeaderRegistry

    header = HeaderRegistry()("From", sender)
    addresses: tuple[Address, ...] = header.addresses  # type: ignore[attr-defined]
    return addresses[0].addr_spec if addresses else sender


def _now_header() -> str:
    from courier.core.time import utcnow

    return format_datetime(utcnow())
