"""A real local SMTP server for the tests and the benchmark: ``aiosmtpd`` on 127.0.0.1.

It speaks STARTTLS (or implicit TLS) with a self-signed certificate generated here, requires
AUTH (PLAIN or LOGIN, only after TLS), keeps every message it accepts as bytes, and answers
DATA from a script: e.g. ``["451 4.3.0 Try again later"]`` makes the first delivery fail
temporarily and the next ones succeed; addresses in ``reject`` get ``550`` at RCPT.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

USERNAME = "courier"
PASSWORD = "s3cret-smtp-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files in ``directory``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file = directory / "smtp-cert.pem"
    key_file = directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool
    authenticated: bool
    peer: str

    def parsed(self) -> EmailMessage:
        message = BytesParser(policy=policy.default).parsebytes(self.content)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class SmtpHandler:
    script: deque[str] = field(default_factory=deque)
    reject: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook names)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.lower() in self.reject:
            return "550 5.1.1 <" + address + ">: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        with self.lock:
            self.attempts += 1
            if self.script:
                return self.script.popleft()
            content = envelope.original_content or envelope.content
            assert isinstance(content, bytes)
            self.received.append(
                Received(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    content=content,
                    tls=session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None,
                    authenticated=bool(session.authenticated),
                    peer=str(session.peer),
                )
            )
        return "250 2.0.0 OK: queued"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USERNAME
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """``with SmtpServer(tmp_path) as smtp: ...`` — a server in a thread of this process."""

    def __init__(self, directory: Path, *, implicit_tls: bool = False) -> None:
        self.cert_file, self.key_file = self_signed_certificate(directory)
        self.handler = SmtpHandler()
        self.port = free_port()
        self.implicit_tls = implicit_tls
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=context if implicit_tls else None,
            server_hostname="localhost",
            tls_context=None if implicit_tls else context,
            require_starttls=not implicit_tls,
            authenticator=_authenticate,
            auth_required=True,
            # aiosmtpd only knows of STARTTLS; with implicit TLS the whole session is TLS.
            auth_require_tls=not implicit_tls,
            data_size_limit=64 * 1024 * 1024,
        )

    def settings(self) -> dict[str, str]:
        """The ``COURIER_*`` settings (without the prefix) of an smtp adapter sending here."""
        return {
            "email_provider": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": str(self.port),
            "smtp_security": "tls" if self.implicit_tls else "starttls",
            "smtp_username": USERNAME,
            "smtp_password": PASSWORD,
            "smtp_ca_file": str(self.cert_file),
        }

    def answer_next(self, *replies: str) -> None:
        """The next DATA commands get these replies (then 250 again)."""
        with self.handler.lock:
            self.handler.script.extend(replies)

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
