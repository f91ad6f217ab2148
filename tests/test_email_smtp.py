"""The smtp adapter through aiosmtplib against a real local aiosmtpd server (STARTTLS or
implicit TLS, AUTH), and the messages it builds, parsed back as a mail client would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from courier.config import Settings
from courier.providers.common import DeliveryStatus, NotSent, Permanent, RawRequest, RecipientGone
from courier.providers.email.base import delivery_id_of
from courier.providers.email.message import (
    EmailAttachment,
    EmailContent,
    OutgoingEmail,
    build_message,
)
from courier.providers.email.sandbox import build_dsn
from courier.providers.email.signing import SIGNATURE_HEADER, report_signature
from courier.providers.email.smtp import SmtpEmail
from tests.smtp_server import SmtpServer, free_port

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "smtp") as server:
        yield server


def adapter(server: SmtpServer, **overrides: object) -> SmtpEmail:
    values: dict[str, object] = {
        **server.settings(),
        "email_from": "Clinic <noreply@clinic.test>",
        "smtp_timeout_seconds": 10,
    }
    values.update(overrides)
    return SmtpEmail(Settings(**values))  # type: ignore[arg-type]


def email(
    *to: str, html: str | None = "<p>Hello <b>Ann</b></p><script>x()</script>"
) -> EmailMessage:
    return build_message(
        OutgoingEmail(
            sender="Clinic <noreply@clinic.test>",
            to=list(to) or ["ann@patients.test"],
            content=EmailContent("Your results", "Hello Ann", html),
            attachments=[EmailAttachment("results.pdf", "application/pdf", PDF)],
            unsubscribe_url="https://clinic.test/unsubscribe",
        )
    )


async def send(sender: SmtpEmail, message: EmailMessage) -> tuple[uuid.UUID, str]:
    delivery_id = uuid.uuid4()
    result = await sender.send(message, delivery_id=delivery_id)
    return delivery_id, result.vendor_status


async def test_starttls_auth_message_received_and_parsed(smtp: SmtpServer) -> None:
    sender = adapter(smtp)
    delivery_id, reply = await send(sender, email())
    assert reply.startswith("250")
    [received] = smtp.received
    assert received.tls and received.authenticated
    assert received.mail_from == "noreply@clinic.test"
    assert received.rcpt_tos == ["ann@patients.test"]
    message = received.parsed()
    assert message["Subject"] == "Your results"
    assert delivery_id_of(message["Message-ID"]) == delivery_id
    assert message["List-Unsubscribe"] == "<https://clinic.test/unsubscribe>"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and text.get_content().strip() == "Hello Ann"
    assert html is not None
    assert "<b>Ann</b>" in html.get_content() and "script" not in html.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "results.pdf"
    assert attachment.get_content() == PDF
    await sender.close()


async def test_connection_reused_between_sends(smtp: SmtpServer) -> None:
    sender = adapter(smtp)
    for _ in range(3):
        await send(sender, email())
    assert len(smtp.received) == 3
    assert len({r.peer for r in smtp.received}) == 1
    await sender.close()


async def test_implicit_tls(tmp_path: Path) -> None:
    with SmtpServer(tmp_path / "tls", implicit_tls=True) as server:
        sender = adapter(server)
        await send(sender, email())
        [received] = server.received
        assert received.tls and received.authenticated
        await sender.close()


async def test_451_is_not_sent_then_250(smtp: SmtpServer) -> None:
    sender = adapter(smtp)
    smtp.answer_next("451 4.3.0 Try again later")
    with pytest.raises(NotSent) as refused:
        await send(sender, email())
    assert refused.value.code == "451"
    assert "Try again later" in refused.value.message
    assert smtp.received == []
    await send(sender, email())
    assert len(smtp.received) == 1
    await sender.close()


async def test_550_at_data_is_permanent_with_the_reply(smtp: SmtpServer) -> None:
    sender = adapter(smtp)
    smtp.answer_next("550 5.7.1 Message rejected as spam")
    with pytest.raises(Permanent) as refused:
        await send(sender, email())
    assert refused.value.code == "550"
    assert refused.value.message == "550 5.7.1 Message rejected as spam"
    await sender.close()


async def test_unknown_mailbox_at_rcpt_is_recipient_gone(smtp: SmtpServer) -> None:
    smtp.handler.reject.add("gone@patients.test")
    sender = adapter(smtp)
    with pytest.raises(RecipientGone) as refused:
        await send(sender, email("gone@patients.test"))
    assert refused.value.code == "550"
    # One of two refused: sent to the other, the refusal named in the reply.
    _, reply = await send(sender, email("gone@patients.test", "ann@patients.test"))
    assert "refused: gone@patients.test (550" in reply
    assert smtp.received[-1].rcpt_tos == ["ann@patients.test"]
    await sender.close()


async def test_wrong_password_and_no_server_are_not_sent(smtp: SmtpServer) -> None:
    with pytest.raises(NotSent, match="authentication failed"):
        await send(adapter(smtp, smtp_password="wrong"), email())
    with pytest.raises(NotSent, match="cannot reach"):
        await send(adapter(smtp, smtp_port=free_port()), email())
    assert smtp.received == []


async def test_dkim_signature_verifies(smtp: SmtpServer, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    sender = adapter(
        smtp,
        email_dkim_domain="clinic.test",
        email_dkim_selector="courier",
        email_dkim_key_file=str(key_file),
    )
    await send(sender, email())
    content = smtp.received[0].content
    assert content.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"courier._domainkey.clinic.test." else b""

    assert dkim.verify(content, dnsfunc=dns)
    tampered = content.replace(b"Your results", b"Your resulta")
    assert not dkim.verify(tampered, dnsfunc=dns)
    await sender.close()


def test_text_derived_from_html_when_missing() -> None:
    message = build_message(
        OutgoingEmail(
            sender="noreply@clinic.test",
            to=["ann@patients.test"],
            content=EmailContent("Hi", None, "<p>First &amp; one</p><p>Second</p>"),
        )
    )
    text = message.get_body(("plain",))
    assert text is not None
    assert text.get_content().split() == ["First", "&", "one", "Second"]


def test_signed_dsn_is_a_bounce_of_the_delivery(tmp_path: Path) -> None:
    settings = Settings(email_from="noreply@clinic.test", email_inbound_secret="bounce-secret")
    sender = SmtpEmail(settings)
    delivery_id = uuid.uuid4()
    document = sender.document(email(), delivery_id)
    report = build_dsn(document, "ann@patients.test", "5.1.1", "no such user")
    url = "http://127.0.0.1:8000/providers/email/inbound"
    signed = RawRequest(
        "POST", url, {SIGNATURE_HEADER.lower(): report_signature(settings, url, report)}, report
    )
    assert sender.verify(signed)
    forged = RawRequest("POST", url, {SIGNATURE_HEADER.lower(): "v1=00"}, report)
    assert not sender.verify(forged)
    unsigned_settings = SmtpEmail(Settings(email_from="noreply@clinic.test"))
    assert not unsigned_settings.verify(signed)  # no secret configured: nothing verifies
    [event] = sender.parse(signed)
    assert event.delivery_id == delivery_id
    assert event.status is DeliveryStatus.UNDELIVERED
    assert event.vendor_code == "5.1.1"
    assert event.raw["recipient"] == "ann@patients.test"
