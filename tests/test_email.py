"""User emails over HTTP with the default sandbox adapter: drafts, auto-send, send, status and
result, who sees what, bounces from the sandbox and from a signed DSN, refused addresses."""

from __future__ import annotations

import uuid
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx

from courier.core.db import commit
from courier.domains.email.service import do_queue_rendered
from courier.jobs import load_job_modules, run_until_idle
from courier.providers.email.message import EmailContent
from tests.conftest import Org, bearer, create_org, doc
from tests.factories import individual_token, make_individual_id
from tests.test_providers import Live, live, live_org, settle

__all__ = ["live", "live_org"]  # fixtures of the provider tests: a server on a real socket

EMAILS = "/v1/user-emails/"


def email_doc(individual: str | None, **attributes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "to": "ann@patients.example",
        "subject": "Your lab results",
        "message": "Hello Ann, your results are in.",
    }
    if individual is not None:
        values["individual-id"] = individual
    values.update(attributes)
    return doc("user-emails", values)


async def deliver(app: Any) -> None:
    await run_until_idle(app.state.database, app.state.settings)


async def get_email(client: httpx.AsyncClient, org: Org, ident: str) -> dict[str, Any]:
    response = await client.get(f"{EMAILS}{ident}/", headers=org.staff)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


async def sandbox_raw(client: httpx.AsyncClient, org: Org, address: str) -> list[bytes]:
    listed = await client.get(
        "/sandbox/email/messages", params={"address": address}, headers=org.admin
    )
    assert listed.status_code == 200, listed.text
    documents = []
    for message in listed.json()["data"]:
        raw = await client.get(
            "/sandbox/email/raw", params={"message-id": message["message-id"]}, headers=org.admin
        )
        assert raw.status_code == 200, raw.text
        documents.append(raw.json()["data"]["raw"].encode("utf-8", "surrogateescape"))
    return documents


async def test_draft_then_send_through_the_sandbox(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    individual = await make_individual_id(client, org)
    created = await client.post(
        EMAILS,
        headers=org.staff,
        json=email_doc(
            individual,
            **{"message-html": "<p>Hello <b>Ann</b></p><script>steal()</script>"},
        ),
    )
    assert created.status_code == 201, created.text
    body = created.json()["data"]
    ident = body["id"]
    attributes = body["attributes"]
    assert attributes["status"] == "draft"
    assert attributes["to"] == ["ann@patients.example"]
    assert attributes["sender-organization-id"] == org.id
    assert attributes["task-id"] is None and attributes["result"] is None

    await deliver(app)  # a draft is not sent
    assert (await get_email(client, org, ident))["status"] == "draft"

    sent = await client.post(f"{EMAILS}{ident}/send/", headers=org.staff, json={})
    assert sent.status_code == 201, sent.text
    assert sent.json()["data"]["attributes"]["status"] == "queued"
    task = sent.json()["data"]["attributes"]["task-id"]
    assert task
    job = await client.get(f"/v1/jobs/{task}/", headers=org.admin)
    assert job.status_code == 200, job.text

    again = await client.post(f"{EMAILS}{ident}/send/", headers=org.staff, json={})
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "email-not-draft"

    await deliver(app)
    attributes = await get_email(client, org, ident)
    assert attributes["status"] == "sent", attributes["result"]
    assert attributes["result"].startswith("250")

    [raw] = await sandbox_raw(client, org, "ann@patients.example")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Subject"] == "Your lab results"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "your results are in" in text.get_content()
    assert html is not None and "<b>Ann</b>" in html.get_content()
    assert "steal" not in html.get_content()


async def test_auto_send_several_recipients_and_list(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    individual = await make_individual_id(client, org)
    created = await client.post(
        EMAILS,
        headers=org.staff,
        json=email_doc(
            individual,
            to=["Bob@Patients.example", "carer@patients.example"],
            **{"auto-send": True},
        ),
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["attributes"]["status"] == "queued"
    await deliver(app)
    listed = await client.get(EMAILS, params={"individual-id": individual}, headers=org.staff)
    assert listed.status_code == 200, listed.text
    [email] = listed.json()["data"]
    assert email["attributes"]["status"] == "sent"
    assert email["attributes"]["to"] == ["Bob@patients.example", "carer@patients.example"]
    assert len(await sandbox_raw(client, org, "carer@patients.example")) == 1

    missing = await client.get(EMAILS, headers=org.staff)
    assert missing.status_code == 400


async def test_bad_input_is_refused_clearly(client: httpx.AsyncClient, org: Org) -> None:
    individual = await make_individual_id(client, org)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"to": "not-an-address"}, 400, "/data/attributes/to/0"),
        ({"to": []}, 400, "/data/attributes/to"),
        ({"subject": "two\nlines"}, 400, "/data/attributes/subject"),
        ({"message": None}, 400, "/data/attributes/message"),
        ({"auto-send": "yes"}, 400, "/data/attributes/auto-send"),
        ({"sender-organization-id": "5f0c6a2e-3d55-4b4e-9a7e-0c6f1c2b3d4e"}, 404, ""),
        ({"individual-id": "5f0c6a2e-3d55-4b4e-9a7e-0c6f1c2b3d4e"}, 404, ""),
    ]
    for attributes, status, pointer in cases:
        response = await client.post(
            EMAILS, headers=org.staff, json=email_doc(individual, **attributes)
        )
        assert response.status_code == status, (attributes, response.text)
        if pointer:
            pointers = {e["source"]["pointer"] for e in response.json()["errors"]}
            assert pointer in pointers, (attributes, pointers)
    readonly = await client.post(EMAILS, headers=org.readonly, json=email_doc(individual))
    assert readonly.status_code == 403


async def test_individual_token_sees_only_its_own_emails(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    ann = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    to_ann = await client.post(EMAILS, headers=org.staff, json=email_doc(ann))
    to_bob = await client.post(EMAILS, headers=org.staff, json=email_doc(bob))
    ann_token = bearer(await individual_token(client, org, ann))

    own = await client.get(f"{EMAILS}{to_ann.json()['data']['id']}/", headers=ann_token)
    assert own.status_code == 200
    other = await client.get(f"{EMAILS}{to_bob.json()['data']['id']}/", headers=ann_token)
    assert other.status_code == 404
    listed = await client.get(EMAILS, params={"individual-id": ann}, headers=ann_token)
    assert [e["id"] for e in listed.json()["data"]] == [to_ann.json()["data"]["id"]]
    assert (
        await client.get(EMAILS, params={"individual-id": bob}, headers=ann_token)
    ).status_code == 403
    send_bob = await client.post(
        f"{EMAILS}{to_bob.json()['data']['id']}/send/", headers=ann_token, json={}
    )
    assert send_bob.status_code == 404
    # A token writes only its own emails.
    mine = await client.post(EMAILS, headers=ann_token, json=email_doc(None))
    assert mine.status_code == 201, mine.text
    assert mine.json()["data"]["attributes"]["individual-id"] == ann
    theirs = await client.post(EMAILS, headers=ann_token, json=email_doc(bob))
    assert theirs.status_code == 403
    # Another organization sees nothing.
    foreign = await client.get(f"{EMAILS}{to_ann.json()['data']['id']}/", headers=other_org.staff)
    assert foreign.status_code == 404


async def test_sandbox_bounce_fails_the_email_and_refuses_the_address(
    live: Live, live_org: Org
) -> None:
    client, org = live.client, live_org
    other = await create_org(client)
    individual = await make_individual_id(client, org)
    gone = f"gone-{uuid.uuid4().hex[:6]}@patients.example"
    armed = await client.post(
        "/sandbox/email/bounces", headers=org.admin, json={"address": gone, "status": "5.1.1"}
    )
    assert armed.status_code == 200, armed.text
    created = await client.post(
        EMAILS, headers=org.staff, json=email_doc(individual, to=gone, **{"auto-send": True})
    )
    assert created.status_code == 201, created.text
    ident = created.json()["data"]["id"]
    await settle(live)
    attributes = await get_email(client, org, ident)
    assert attributes["status"] == "failed", attributes["result"]
    assert f"bounced by {gone}" in attributes["result"]
    assert "5.1.1" in attributes["result"]

    refused = await client.post(
        EMAILS, headers=org.staff, json=email_doc(individual, to=[gone], **{"auto-send": True})
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["errors"][0]
    assert error["code"] == "address-bouncing"
    assert f"{gone} bounced" in error["detail"]
    assert error["source"]["pointer"] == "/data/attributes/to"
    # A draft to it may be written, but not sent.
    draft = await client.post(EMAILS, headers=org.staff, json=email_doc(individual, to=gone))
    assert draft.status_code == 201
    send = await client.post(f"{EMAILS}{draft.json()['data']['id']}/send/", headers=org.staff)
    assert send.status_code == 422
    # Another organization may still write to it.
    elsewhere = await client.post(
        EMAILS,
        headers=other.staff,
        json=email_doc(await make_individual_id(client, other), to=gone, **{"auto-send": True}),
    )
    assert elsewhere.status_code == 201, elsewhere.text


# --- attachments ------------------------------------------------------------------------------

ATTACHMENTS = "/v1/user-email-attachments/"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def attach(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    email_id: str,
    content: bytes,
    filename: str = "results.pdf",
) -> tuple[str, httpx.Response]:
    started = await client.post(
        ATTACHMENTS,
        headers=headers,
        json=doc("user-email-attachments", {"email-id": email_id, "filename": filename}),
    )
    assert started.status_code == 201, started.text
    upload = started.json()["data"]
    assert upload["expiration-time"] > 0
    stored = await client.post(
        upload["upload-url"], data=upload["upload-data"], files={"file": ("f", content)}
    )
    assert stored.status_code == 204, stored.text
    processed = await client.post(
        f"{ATTACHMENTS}{upload['id']}/process-upload/", headers=headers, json={}
    )
    return upload["id"], processed


async def test_attachments_upload_links_limits_and_travel(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    individual = await make_individual_id(client, org)
    created = await client.post(EMAILS, headers=org.staff, json=email_doc(individual))
    email_id = created.json()["data"]["id"]

    # Processing before anything was uploaded: 409.
    pending = await client.post(
        ATTACHMENTS,
        headers=org.staff,
        json={"email-id": email_id, "filename": "later.pdf"},  # plain JSON works too
    )
    assert pending.status_code == 201, pending.text
    early = await client.post(
        f"{ATTACHMENTS}{pending.json()['data']['id']}/process-upload/", headers=org.staff
    )
    assert early.status_code == 409

    ident, processed = await attach(client, org.staff, email_id, PDF)
    assert processed.status_code == 201, processed.text
    attributes = processed.json()["data"]["attributes"]
    assert attributes["ready-to-use"] is True
    assert attributes["content-type"] == "application/pdf"
    assert attributes["size"] == len(PDF)
    assert attributes["download-link"] is None

    linked = await client.get(
        f"{ATTACHMENTS}{ident}/", params={"with-link": "true"}, headers=org.staff
    )
    assert linked.status_code == 200, linked.text
    link = linked.json()["data"]["attributes"]["download-link"]
    downloaded = await client.get(link)
    assert downloaded.status_code == 200 and downloaded.content == PDF
    bad_flag = await client.get(
        f"{ATTACHMENTS}{ident}/", params={"with-link": "maybe"}, headers=org.staff
    )
    assert bad_flag.status_code == 400

    listed = await client.get(ATTACHMENTS, params={"email-id": email_id}, headers=org.staff)
    assert [a["id"] for a in listed.json()["data"]] == [pending.json()["data"]["id"], ident]
    assert (await client.get(ATTACHMENTS, headers=org.staff)).status_code == 400

    # A file whose bytes are not an accepted type is rejected (and deleted).
    _, refused = await attach(client, org.staff, email_id, b"MZ\x90\x00" + bytes(200), "x.exe")
    assert refused.status_code == 415, refused.text

    # A pending attachment blocks sending; the email sends once it is gone or processed.
    blocked = await client.post(f"{EMAILS}{email_id}/send/", headers=org.staff)
    assert blocked.status_code == 409
    assert blocked.json()["errors"][0]["code"] == "attachment-not-ready"


async def test_attachment_limits_and_drafts_only(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    individual = await make_individual_id(client, org)
    created = await client.post(EMAILS, headers=org.staff, json=email_doc(individual))
    email_id = created.json()["data"]["id"]
    settings = app.state.settings
    saved = (settings.email_attachment_max_count, settings.email_attachment_max_total_bytes)
    settings.email_attachment_max_count = 2
    settings.email_attachment_max_total_bytes = len(PDF) + 10
    try:
        _, first = await attach(client, org.staff, email_id, PDF)
        assert first.status_code == 201, first.text
        _, second = await attach(client, org.staff, email_id, PDF)
        assert second.status_code == 400, second.text
        assert second.json()["errors"][0]["code"] == "email-too-large"
        _, third = await attach(client, org.staff, email_id, b"hello\n", "note.txt")
        assert third.status_code == 201, third.text
        fourth = await client.post(
            ATTACHMENTS, headers=org.staff, json={"email-id": email_id, "filename": "more.txt"}
        )
        assert fourth.status_code == 409
        assert fourth.json()["errors"][0]["code"] == "too-many-attachments"
    finally:
        settings.email_attachment_max_count, settings.email_attachment_max_total_bytes = saved
    sent = await client.post(f"{EMAILS}{email_id}/send/", headers=org.staff)
    assert sent.status_code == 201, sent.text
    late = await client.post(
        ATTACHMENTS, headers=org.staff, json={"email-id": email_id, "filename": "late.txt"}
    )
    assert late.status_code == 409
    assert late.json()["errors"][0]["code"] == "email-not-draft"


async def test_attachments_follow_who_sees_the_email(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    ann = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    to_bob = await client.post(EMAILS, headers=org.staff, json=email_doc(bob))
    bob_email = to_bob.json()["data"]["id"]
    ident, processed = await attach(client, org.staff, bob_email, PDF)
    assert processed.status_code == 201
    ann_token = bearer(await individual_token(client, org, ann))
    assert (await client.get(f"{ATTACHMENTS}{ident}/", headers=ann_token)).status_code == 404
    started = await client.post(
        ATTACHMENTS, headers=ann_token, json={"email-id": bob_email, "filename": "x.pdf"}
    )
    assert started.status_code == 404
    assert (await client.get(f"{ATTACHMENTS}{ident}/", headers=other_org.staff)).status_code == 404
    bob_token = bearer(await individual_token(client, org, bob))
    assert (await client.get(f"{ATTACHMENTS}{ident}/", headers=bob_token)).status_code == 200


async def test_purge_removes_emails_attachments_and_sandbox_copies(
    live: Live, live_org: Org
) -> None:
    client, org = live.client, live_org
    load_job_modules(live.settings)  # the purge job's handler, as a worker has it
    individual = await make_individual_id(client, org)
    address = f"purged-{uuid.uuid4().hex[:6]}@patients.example"
    created = await client.post(EMAILS, headers=org.staff, json=email_doc(individual, to=address))
    email_id = created.json()["data"]["id"]
    ident, processed = await attach(client, org.staff, email_id, PDF)
    assert processed.status_code == 201, processed.text
    sent = await client.post(f"{EMAILS}{email_id}/send/", headers=org.staff)
    assert sent.status_code == 201
    await settle(live)
    assert len(await sandbox_raw(client, org, address)) == 1
    purge = await client.post(
        "/v1/purge-data/",
        headers=org.admin,
        json=doc("system-purges", {"entity-type": "individual", "entity-id": individual}),
    )
    assert purge.status_code == 201, purge.text
    await settle(live)
    receipt = await client.get(f"/v1/purge-data/{purge.json()['data']['id']}/", headers=org.admin)
    assert receipt.json()["data"]["attributes"]["state"] == "completed", receipt.text
    assert (await client.get(f"{EMAILS}{email_id}/", headers=org.staff)).status_code == 404
    assert (await client.get(f"{ATTACHMENTS}{ident}/", headers=org.staff)).status_code == 404
    assert await sandbox_raw(client, org, address) == []


async def test_unsubscribe_url_of_the_organization_becomes_list_unsubscribe(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    individual = await make_individual_id(client, org)
    first = await client.post(
        EMAILS,
        headers=org.staff,
        json=email_doc(individual, to="plain@patients.example", **{"auto-send": True}),
    )
    assert first.status_code == 201
    await deliver(app)
    [plain] = await sandbox_raw(client, org, "plain@patients.example")
    assert b"List-Unsubscribe" not in plain
    set_url = await client.post(
        "/v1/org-preferences/",
        headers=org.admin,
        json=doc(
            "org-preferences",
            {"name": "email-unsubscribe-url", "value": "https://clinic.invalid/unsubscribe"},
        ),
    )
    assert set_url.status_code == 201, set_url.text
    second = await client.post(
        EMAILS,
        headers=org.staff,
        json=email_doc(individual, to="listed@patients.example", **{"auto-send": True}),
    )
    assert second.status_code == 201
    await deliver(app)
    [listed] = await sandbox_raw(client, org, "listed@patients.example")
    message = BytesParser(policy=policy.default).parsebytes(listed)
    assert message["List-Unsubscribe"] == "<https://clinic.invalid/unsubscribe>"


async def test_a_rendered_template_is_sent_as_an_email(
    client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """What a notification template calls: subject, text and HTML in, a sent email out."""
    individual = await make_individual_id(client, org)
    async with app.state.database.sessionmaker() as session:
        email = await do_queue_rendered(
            session,
            app.state.settings,
            organization_id=uuid.UUID(org.id),
            to=["rendered@patients.example"],
            content=EmailContent(
                "Appointment tomorrow", None, "<p>See you at <b>10:00</b>.</p><script>x</script>"
            ),
            individual_id=uuid.UUID(individual),
            created_by="notifications",
        )
        await commit(session)
        ident = str(email.id)
    await deliver(app)
    attributes = await get_email(client, org, ident)
    assert attributes["status"] == "sent", attributes["result"]
    assert attributes["subject"] == "Appointment tomorrow"
    [raw] = await sandbox_raw(client, org, "rendered@patients.example")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "See you at 10:00." in text.get_content()
    assert html is not None and "<b>10:00</b>" in html.get_content()
    assert "script" not in html.get_content()
