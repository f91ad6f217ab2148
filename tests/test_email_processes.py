"""End to end over HTTP: a real ``courier serve`` and a real ``courier worker`` send emails
through the ``smtp`` adapter to a real local SMTP server (aiosmtpd on 127.0.0.1, STARTTLS
with a certificate made here, AUTH), which parses them back; temporary and permanent refusals,
signed bounce reports, and what an individual token sees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from courier.config import Settings
from courier.providers.email.sandbox import build_dsn
from courier.providers.email.signing import SIGNATURE_HEADER, report_signature
from tests.conftest import MASTER_KEY, bearer, doc
from tests.smtp_server import SmtpServer, free_port
from tests.support import process_env

REPO = Path(__file__).resolve().parent.parent
DEADLINE = 90.0
INBOUND_SECRET = "relay-" + uuid.uuid4().hex
PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n" + bytes(range(256)) * 8
)


@dataclass
class Courier:
    base: str
    master: dict[str, str]
    smtp: SmtpServer

    def get(self, path: str, headers: dict[str, str], **params: str) -> httpx.Response:
        return httpx.get(self.base + path, headers=headers, params=params, timeout=30)

    def post(self, path: str, headers: dict[str, str], json: Any) -> httpx.Response:
        return httpx.post(self.base + path, headers=headers, json=json, timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    stop = time.monotonic() + DEADLINE
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise AssertionError("courier serve exited early:\n" + log.read_text()[-3000:])
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("courier serve did not become ready")


@pytest.fixture(scope="module")
def courier(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Courier]:
    directory = tmp_path_factory.mktemp("email-processes")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with SmtpServer(directory / "smtp") as smtp:
        env = process_env()
        env.update(
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
            COURIER_DATA_DIR=str(directory / "data"),
            COURIER_MASTER_KEY=MASTER_KEY,
            COURIER_PUBLIC_URL=base,
            COURIER_RUN_WORKER="false",
            COURIER_RATE_LIMIT="100000/minute",
            COURIER_JOB_BACKOFF_BASE_SECONDS="0.05",
            COURIER_JOB_POLL_SECONDS="1",
            COURIER_EMAIL_FROM="Clinic <noreply@clinic.example>",
            COURIER_EMAIL_INBOUND_SECRET=INBOUND_SECRET,
            **{f"COURIER_{k.upper()}": v for k, v in smtp.settings().items()},
        )
        if database_url.startswith("postgresql"):
            env["COURIER_DATABASE_URL"] = database_url
        logs = [directory / "serve.log", directory / "worker.log"]
        processes: list[subprocess.Popen[bytes]] = []
        try:
            with logs[0].open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "courier.cli", "serve", "--port", str(port)],
                        cwd=REPO,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            _wait_ready(base, processes[0], logs[0])  # migrated before the worker starts
            with logs[1].open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "courier.cli", "worker", "--concurrency=2"],
                        cwd=REPO,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            yield Courier(base, bearer(MASTER_KEY), smtp)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


@dataclass
class Clinic:
    org_id: str
    staff: dict[str, str]
    admin: dict[str, str]


@pytest.fixture(scope="module")
def clinic(courier: Courier) -> Clinic:
    created = courier.post(
        "/v1/organizations/", courier.master, doc("organizations", {"name": "Mail Clinic"})
    )
    assert created.status_code == 201, created.text
    org_id = created.json()["data"]["id"]
    keys = {}
    for role in ("admin", "staff"):
        key = courier.post(
            "/v1/api-keys/",
            courier.master,
            doc("api-keys", {"name": role, "role": role, "organization-id": org_id}),
        )
        assert key.status_code == 201, key.text
        keys[role] = bearer(key.json()["data"]["attributes"]["secret"])
    return Clinic(org_id, keys["staff"], keys["admin"])


def new_individual(courier: Courier, clinic: Clinic) -> str:
    created = courier.post(
        "/v1/individuals/",
        clinic.admin,
        doc("individuals", {"first-name": "Ann", "last-name": uuid.uuid4().hex[:8]}),
    )
    assert created.status_code == 201, created.text
    ident: str = created.json()["data"]["id"]
    return ident


def until_status(courier: Courier, clinic: Clinic, ident: str, *statuses: str) -> dict[str, Any]:
    stop = time.monotonic() + DEADLINE
    while True:
        response = courier.get(f"/v1/user-emails/{ident}/", clinic.staff)
        assert response.status_code == 200, response.text
        attributes: dict[str, Any] = response.json()["data"]["attributes"]
        if attributes["status"] in statuses:
            return attributes
        assert time.monotonic() < stop, f"email stayed {attributes['status']}: {attributes}"
        time.sleep(0.1)


def received_by(courier: Courier, address: str) -> list[EmailMessage]:
    return [r.parsed() for r in courier.smtp.received if address in r.rcpt_tos]


def email_attributes(to: str, individual: str, **more: Any) -> dict[str, Any]:
    return {
        "individual-id": individual,
        "to": to,
        "subject": "Your lab results",
        "message": "Hello Ann,\nyour results are attached.",
        "message-html": "<p>Hello <b>Ann</b>,</p><p>your results are attached.</p>"
        "<img src=x onerror=alert(1)>",
        **more,
    }


def upload_pdf(courier: Courier, clinic: Clinic, email_id: str) -> str:
    started = courier.post(
        "/v1/user-email-attachments/",
        clinic.staff,
        doc(
            "user-email-attachments",
            {"email-id": email_id, "filename": "results.pdf", "content-type": "application/pdf"},
        ),
    )
    assert started.status_code == 201, started.text
    upload = started.json()
    upload = upload.get("data", upload)
    form = upload["upload-data"]
    posted = httpx.post(
        upload["upload-url"],
        data=form,
        files={"file": ("results.pdf", PDF, "application/pdf")},
        timeout=30,
    )
    assert posted.status_code in (200, 201, 204), posted.text
    processed = courier.post(
        f"/v1/user-email-attachments/{upload['id']}/process-upload/", clinic.staff, {}
    )
    assert processed.status_code == 201, processed.text
    attributes = processed.json()["data"]["attributes"]
    assert attributes["ready-to-use"] is True
    assert attributes["content-type"] == "application/pdf"
    assert attributes["size"] == len(PDF)
    ident: str = upload["id"]
    return ident


def test_email_with_a_pdf_reaches_the_smtp_server(courier: Courier, clinic: Clinic) -> None:
    individual = new_individual(courier, clinic)
    to = f"ann-{uuid.uuid4().hex[:6]}@patients.example"
    draft = courier.post(
        "/v1/user-emails/", clinic.staff, doc("user-emails", email_attributes(to, individual))
    )
    assert draft.status_code == 201, draft.text
    ident = draft.json()["data"]["id"]
    upload_pdf(courier, clinic, ident)
    sent = courier.post(f"/v1/user-emails/{ident}/send/", clinic.staff, {})
    assert sent.status_code == 201, sent.text
    attributes = until_status(courier, clinic, ident, "sent", "failed")
    assert attributes["status"] == "sent", attributes["result"]
    assert attributes["result"].startswith("250")

    [received] = [r for r in courier.smtp.received if to in r.rcpt_tos]
    assert received.tls and received.authenticated
    assert received.mail_from == "noreply@clinic.example"
    message = received.parsed()
    assert message["Subject"] == "Your lab results"
    assert message["To"] == to
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None  # lines end in CRLF on the wire
    assert text.get_content().replace("\r\n", "\n") == "Hello Ann,\nyour results are attached.\n"
    assert html is not None
    assert "<b>Ann</b>" in html.get_content() and "onerror" not in html.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "results.pdf"
    assert attachment.get_content() == PDF


def test_451_then_250_is_received_on_the_second_attempt(courier: Courier, clinic: Clinic) -> None:
    individual = new_individual(courier, clinic)
    to = f"retry-{uuid.uuid4().hex[:6]}@patients.example"
    attempts_before = courier.smtp.handler.attempts
    courier.smtp.answer_next("451 4.3.0 Mailbox busy, try again later")
    created = courier.post(
        "/v1/user-emails/",
        clinic.staff,
        doc("user-emails", email_attributes(to, individual, **{"auto-send": True})),
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["attributes"]["status"] == "queued"
    ident = created.json()["data"]["id"]
    attributes = until_status(courier, clinic, ident, "sent", "failed")
    assert attributes["status"] == "sent", attributes["result"]
    assert courier.smtp.handler.attempts - attempts_before == 2
    assert len(received_by(courier, to)) == 1


def test_550_fails_with_the_reply_in_result(courier: Courier, clinic: Clinic) -> None:
    individual = new_individual(courier, clinic)
    to = f"spam-{uuid.uuid4().hex[:6]}@patients.example"
    courier.smtp.answer_next("550 5.7.1 Message rejected by policy")
    created = courier.post(
        "/v1/user-emails/",
        clinic.staff,
        doc("user-emails", email_attributes(to, individual, **{"auto-send": True})),
    )
    ident = created.json()["data"]["id"]
    attributes = until_status(courier, clinic, ident, "sent", "failed")
    assert attributes["status"] == "failed"
    assert attributes["result"] == "550 5.7.1 Message rejected by policy"
    assert received_by(courier, to) == []


def test_signed_bounce_report_fails_the_email_and_refuses_the_address(
    courier: Courier, clinic: Clinic
) -> None:
    individual = new_individual(courier, clinic)
    to = f"gone-{uuid.uuid4().hex[:6]}@patients.example"
    created = courier.post(
        "/v1/user-emails/",
        clinic.staff,
        doc("user-emails", email_attributes(to, individual, **{"auto-send": True})),
    )
    ident = created.json()["data"]["id"]
    until_status(courier, clinic, ident, "sent")
    [received] = [r for r in courier.smtp.received if to in r.rcpt_tos]
    # The relay later reports that the mailbox does not exist: a DSN quoting the message.
    report = build_dsn(received.content, to, "5.1.1", "user unknown")
    url = courier.base + "/providers/email/inbound"
    settings = Settings(email_inbound_secret=INBOUND_SECRET)
    forged = httpx.post(
        url, content=report, headers={"Content-Type": "message/rfc822", SIGNATURE_HEADER: "v1=0"}
    )
    assert forged.status_code == 401
    posted = httpx.post(
        url,
        content=report,
        headers={
            "Content-Type": "message/rfc822",
            SIGNATURE_HEADER: report_signature(settings, url, report),
        },
    )
    assert posted.status_code == 204, posted.text
    attributes = until_status(courier, clinic, ident, "failed")
    assert attributes["result"].startswith(f"bounced by {to}: 5.1.1")
    again = courier.post(
        "/v1/user-emails/",
        clinic.staff,
        doc("user-emails", email_attributes(to, individual, **{"auto-send": True})),
    )
    assert again.status_code == 422, again.text
    assert again.json()["errors"][0]["code"] == "address-bouncing"


def test_an_individual_token_sees_only_its_own_emails(courier: Courier, clinic: Clinic) -> None:
    ann = new_individual(courier, clinic)
    bob = new_individual(courier, clinic)
    ids = {}
    for who in (ann, bob):
        created = courier.post(
            "/v1/user-emails/",
            clinic.staff,
            doc("user-emails", email_attributes("family@patients.example", who)),
        )
        assert created.status_code == 201, created.text
        ids[who] = created.json()["data"]["id"]
    token = courier.post(
        "/v1/access-tokens/", clinic.staff, doc("access-tokens", {"individual-id": ann})
    )
    assert token.status_code == 201, token.text
    as_ann = bearer(token.json()["data"]["attributes"]["token"])
    listed = courier.get("/v1/user-emails/", as_ann, **{"individual-id": ann})
    assert listed.status_code == 200, listed.text
    assert [e["id"] for e in listed.json()["data"]] == [ids[ann]]
    assert courier.get(f"/v1/user-emails/{ids[bob]}/", as_ann).status_code == 404
    assert courier.get(f"/v1/user-emails/{ids[ann]}/", as_ann).status_code == 200
    assert courier.get("/v1/user-emails/", as_ann, **{"individual-id": bob}).status_code == 403
