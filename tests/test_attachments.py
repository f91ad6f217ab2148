"""Messaging attachments over HTTP with the default local storage, as a client uses them.

Start an upload, upload the bytes to the signed ``upload-url`` (Courier's ``/uploads/``),
process it, download through the signed ``url``; and everything that must be refused.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

import courier.uploads.workers  # noqa: F401  (registers every kind of upload's jobs)
from courier.app import create_app
from courier.config import Settings
from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.messaging_attachments.service import attachments_for_messages
from courier.domains.messaging_attachments.uploads import messaging_uploads
from courier.jobs import Job, enqueue, run_until_idle
from courier.models.messaging_attachment import MessagingAttachment
from courier.providers.storage import LocalStorage, local_root, storage_for
from courier.uploads.inspection import detect_content_type
from courier.uploads.jobs import cleanup_grace, cleanup_window
from tests.conftest import Org, create_org, doc, make_settings
from tests.factories import individual_token, make_individual_id, message_row

ATTACHMENTS = "/v1/messaging-attachments/"
CLEANUP_JOB = messaging_uploads.cleanup_job
DELETE_FILES_JOB = messaging_uploads.delete_files_job
upload_key = messaging_uploads.keys.upload
file_key = messaging_uploads.keys.file
attachment_keys = messaging_uploads.keys.own

# --- sample files ------------------------------------------------------------------------------


def png_bytes(size: tuple[int, int] = (640, 480), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, (200, 30, 60) if mode == "RGB" else (200, 30, 60, 128))
    for x in range(0, size[0], 7):  # some detail, so it is a real picture
        image.putpixel((x, x % size[1]), (0, 0, 0) if mode == "RGB" else (0, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def pdf_bytes() -> bytes:
    """A minimal valid one-page PDF, with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + bytes(range(256)) * 4
PE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 52 + b"This program cannot be run in DOS mode." * 8


# --- helpers -----------------------------------------------------------------------------------


@dataclass
class Care:
    """An organization with a channel (Alice and Carol subscribed) and a message of Alice's."""

    org: Org
    alice: str
    bob: str
    carol: str
    message: str
    as_alice: dict[str, str]
    as_bob: dict[str, str]
    as_carol: dict[str, str]


async def care(client: httpx.AsyncClient, org: Org) -> Care:
    alice = await make_individual_id(client, org)
    bob = await make_individual_id(client, org)
    carol = await make_individual_id(client, org)
    message = await message_row(client, org, [alice, carol], author_id=alice)

    async def token(ident: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await individual_token(client, org, ident)}"}

    return Care(
        org, alice, bob, carol, message, await token(alice), await token(bob), await token(carol)
    )


async def start(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    message_id: str,
    filename: str = "file.bin",
    content_type: str | None = None,
) -> httpx.Response:
    attributes: dict[str, Any] = {"message-id": message_id, "filename": filename}
    if content_type is not None:
        attributes["content-type"] = content_type
    return await client.post(
        ATTACHMENTS, json=doc("messaging-attachments", attributes), headers=headers
    )


async def upload(
    client: httpx.AsyncClient, started: dict[str, Any], content: bytes, mime: str = "image/png"
) -> httpx.Response:
    return await client.post(
        started["upload-url"], data=started["upload-data"], files={"file": ("f", content, mime)}
    )


async def process(
    client: httpx.AsyncClient, headers: dict[str, str], ident: str, **body: str
) -> httpx.Response:
    return await client.post(f"{ATTACHMENTS}{ident}/process-upload/", json=body, headers=headers)


async def attach(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    message_id: str,
    content: bytes,
    filename: str = "file.bin",
    content_type: str | None = None,
) -> tuple[str, httpx.Response]:
    """Start, upload and process; the attachment's id and the processing response."""
    started = await start(client, headers, message_id, filename, content_type)
    assert started.status_code == 201, started.text
    data = started.json()["data"]
    stored = await upload(client, data, content)
    assert stored.status_code == 204, stored.text
    return data["id"], await process(client, headers, data["id"])


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["errors"][0]["code"]
    return code


def listed(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


async def attachment_row(
    session: AsyncSession, organization: uuid.UUID, ident: str
) -> MessagingAttachment:
    stmt = select(MessagingAttachment).where(MessagingAttachment.id == uuid.UUID(ident))
    row: MessagingAttachment = (
        await session.execute(scoped(stmt, MessagingAttachment, organization))
    ).scalar_one()
    return row


def local_key(url: str) -> str:
    return urlsplit(url).path.removeprefix("/uploads/")


async def get_attributes(
    client: httpx.AsyncClient, headers: dict[str, str], ident: str
) -> dict[str, Any]:
    response = await client.get(f"{ATTACHMENTS}{ident}/", headers=headers)
    assert response.status_code == 200, response.text
    attributes: dict[str, Any] = response.json()["data"]["attributes"]
    return attributes


# --- the two-step flow -------------------------------------------------------------------------


async def test_png_uploaded_processed_thumbnailed_and_downloaded(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    message = await message_row(client, org)
    picture = png_bytes()
    before = int(datetime.now(UTC).timestamp())
    started = await start(client, org.staff, message, "knee.png", "image/png")
    after = int(datetime.now(UTC).timestamp()) + 1
    assert started.status_code == 201, started.text
    data = started.json()["data"]
    assert set(data) == {"id", "upload-url", "upload-data", "expiration-time"}
    ttl = settings.attachment_upload_ttl_seconds
    assert before + ttl <= data["expiration-time"] <= after + ttl
    assert data["upload-url"].startswith("http://courier.test/uploads/orgs/")
    assert set(data["upload-data"]) == {"key", "expires", "max-size", "signature"}

    pending = await get_attributes(client, org.staff, data["id"])
    assert pending["status"] == "pending"
    assert pending["url"] is None and pending["content-type"] is None
    assert pending["filename"] == "knee.png" and pending["message-id"] == message
    # Nothing uploaded yet: processing waits for the file.
    assert error_code(await process(client, org.staff, data["id"]), 409) == "upload-missing"

    assert (await upload(client, data, picture)).status_code == 204
    processed = await process(client, org.staff, data["id"])
    assert processed.status_code == 201, processed.text
    attributes = processed.json()["data"]["attributes"]
    assert attributes["status"] == "ready"
    assert attributes["content-type"] == "image/png"
    assert attributes["content-size"] == len(picture)
    assert attributes["removed"] is False

    download = await client.get(attributes["url"])
    assert download.status_code == 200
    assert download.content == picture
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith('inline; filename="knee.png"')

    thumbnail = await client.get(attributes["thumbnail"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumbnail.content)) as preview:
        assert preview.format == "JPEG"
        assert preview.size == (320, 240)

    # Processing again answers the attachment as it is.
    again = await process(client, org.staff, data["id"])
    assert again.status_code == 201
    assert again.json()["data"]["attributes"]["content-size"] == len(picture)
    # The upload link still works until it expires, but never replaces the verified file.
    assert (await upload(client, data, ELF)).status_code == 204
    served = await get_attributes(client, org.staff, data["id"])
    assert (await client.get(served["url"])).content == picture


async def test_pdf_and_text_detected_from_their_bytes(client: httpx.AsyncClient, org: Org) -> None:
    message = await message_row(client, org)
    document = pdf_bytes()
    # Named and claimed as something else: the bytes decide.
    _, processed = await attach(
        client, org.staff, message, document, "scan.docx", "application/msword"
    )
    assert processed.status_code == 201, processed.text
    attributes = processed.json()["data"]["attributes"]
    assert attributes["content-type"] == "application/pdf"
    assert attributes["content-size"] == len(document)
    assert attributes["thumbnail"] is None
    download = await client.get(attributes["url"])
    assert download.content == document
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith('attachment; filename="scan.docx"')

    note = "Take 2 tablets twice daily — after meals.\n".encode()
    _, text = await attach(client, org.staff, message, note, "note.txt")
    assert text.status_code == 201, text.text
    assert text.json()["data"]["attributes"]["content-type"] == "text/plain"

    transparent = png_bytes((100, 50), "RGBA")
    _, image = await attach(client, org.staff, message, transparent, "logo.png")
    preview = await client.get(image.json()["data"]["attributes"]["thumbnail"])
    assert preview.headers["content-type"] == "image/png"  # transparency kept


@pytest.mark.parametrize("payload", [ELF, PE], ids=["elf", "pe"])
async def test_disguised_executable_refused_and_deleted(
    client: httpx.AsyncClient, org: Org, settings: Settings, payload: bytes
) -> None:
    message = await message_row(client, org)
    ident, processed = await attach(client, org.staff, message, payload, "photo.png", "image/png")
    assert error_code(processed, 415) == "unsupported-attachment-type"
    detail = processed.json()["message"]
    assert "not an accepted attachment type" in detail and "image/png" in detail

    attributes = await get_attributes(client, org.staff, ident)
    assert attributes["status"] == "rejected"
    assert attributes["url"] is None and attributes["thumbnail"] is None
    key = upload_key(uuid.UUID(org.id), uuid.UUID(ident))
    assert not (local_root(settings) / key).exists()
    assert await storage_for(settings).head(key) is None
    assert error_code(await process(client, org.staff, ident), 409) == "attachment-rejected"
    assert (
        listed(await client.get(ATTACHMENTS, params={"message-id": message}, headers=org.staff))
        == []
    )


async def test_fake_and_unknown_files_refused(client: httpx.AsyncClient, org: Org) -> None:
    message = await message_row(client, org)
    header_only = png_bytes()[:40] + b"\x00garbage" * 20  # a PNG signature, not a PNG
    _, processed = await attach(client, org.staff, message, header_only, "x.png")
    assert error_code(processed, 415) == "invalid-image"
    _, unknown = await attach(client, org.staff, message, bytes(range(256)) * 8, "x.bin")
    assert error_code(unknown, 415) == "unrecognised-attachment-type"
    # A type claimed up front that is never accepted is refused before any upload.
    refused = await start(client, org.staff, message, "setup.exe", "application/x-msdownload")
    assert error_code(refused, 415) == "unsupported-attachment-type"
    assert refused.json()["errors"][0]["source"]["pointer"] == "/data/attributes/content-type"
    bad = await start(client, org.staff, message, "a/b.png")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"]["pointer"] == "/data/attributes/filename"


# --- sizes and the upload route ----------------------------------------------------------------

SMALL_LIMIT = 4096


@pytest.fixture(scope="module")
async def small(database_url: str, data_dir: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Courier with a 4 KiB attachment limit, on the same database and data directory."""
    settings = make_settings(database_url, data_dir, attachment_max_bytes=SMALL_LIMIT)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://small.test") as http:
            yield http


async def test_oversize_refused_at_upload_and_at_processing(
    small: httpx.AsyncClient, settings: Settings
) -> None:
    org = await create_org(small)
    message = await message_row(small, org)
    started = (await start(small, org.staff, message, "big.png")).json()["data"]
    assert started["upload-data"]["max-size"] == str(SMALL_LIMIT)
    too_big = await upload(small, started, png_bytes((400, 400)) + b"\x00" * SMALL_LIMIT)
    assert error_code(too_big, 413) == "payload-too-large"
    key = upload_key(uuid.UUID(org.id), uuid.UUID(started["id"]))
    assert await storage_for(settings).head(key) is None

    # A store that does not enforce the limit (or a file grown since): processing measures it.
    await storage_for(settings).write(key, b"%PDF-1.4\n" + b"0" * SMALL_LIMIT, content_type="x/y")
    processed = await process(small, org.staff, started["id"])
    assert error_code(processed, 400) == "attachment-too-large"
    assert "at most 4.0 KiB" in processed.json()["message"]
    assert await storage_for(settings).head(key) is None
    assert (await get_attributes(small, org.staff, started["id"]))["status"] == "rejected"


async def test_upload_route_refusals(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    message = await message_row(client, org)
    data = (await start(client, org.staff, message)).json()["data"]
    fields = data["upload-data"]
    url = data["upload-url"]
    note = b"hello\n"

    tampered = {**fields, "signature": fields["signature"][::-1]}
    refused = await client.post(url, data=tampered, files={"file": ("f", note)})
    assert error_code(refused, 403) == "invalid-signature"
    larger = {**fields, "max-size": str(10**9)}
    assert error_code(await client.post(url, data=larger, files={"file": ("f", note)}), 403)
    other_key = url.removesuffix("/upload") + "/file"
    assert error_code(await client.post(other_key, data=fields, files={"file": ("f", note)}), 403)

    local = storage_for(settings)
    assert isinstance(local, LocalStorage)
    stale = local.upload_fields(fields["key"], int(datetime.now(UTC).timestamp()) - 5, 100)
    expired = await client.post(url, data=stale, files={"file": ("f", note)})
    assert error_code(expired, 403) == "upload-expired"

    misnamed = await client.post(url, data=fields, files={"upload": ("f", note)})
    assert error_code(misnamed, 400) == "missing-file"
    assert error_code(await client.post(url, data=fields), 415) == "unsupported-media-type"
    empty = await client.post(url, data=fields, files={"file": ("f", b"")})
    assert error_code(empty, 400) == "empty-file"
    not_a_form = await client.post(url, content=note, headers={"content-type": "text/plain"})
    assert not_a_form.status_code == 415
    traversal = await client.post(
        "http://courier.test/uploads/a/%2E%2E/b", data=fields, files={"file": ("f", note)}
    )
    assert traversal.status_code in (403, 404)
    assert (await upload(client, data, note)).status_code == 204


async def test_download_links_refused_when_expired_tampered_or_foreign(
    client: httpx.AsyncClient, org: Org, settings: Settings
) -> None:
    message = await message_row(client, org)
    first, one = await attach(client, org.staff, message, pdf_bytes(), "a.pdf")
    second, two = await attach(client, org.staff, message, b"second file\n", "b.txt")
    url_one = one.json()["data"]["attributes"]["url"]
    url_two = two.json()["data"]["attributes"]["url"]
    assert (await client.get(url_one)).status_code == 200

    parts = urlsplit(url_one)
    query = parse_qs(parts.query)
    tampered = url_one.replace(query["signature"][0], "f" * 64)
    assert error_code(await client.get(tampered), 403) == "invalid-signature"
    retyped = url_one.replace("application%2Fpdf", "text%2Fhtml")
    assert retyped != url_one
    assert error_code(await client.get(retyped), 403) == "invalid-signature"
    # One file's signature does not open another file.
    foreign = urlsplit(url_two)._replace(query=parts.query).geturl()
    assert error_code(await client.get(foreign), 403) == "invalid-signature"
    unsigned = urlsplit(url_one)._replace(query="").geturl()
    assert error_code(await client.get(unsigned), 403) == "invalid-signature"

    local = storage_for(settings, base_url="http://courier.test/")
    expired = await local.presign_download(
        local_key(url_one), expires_in=timedelta(seconds=-1), content_type="application/pdf"
    )
    assert error_code(await client.get(expired), 403) == "link-expired"
    missing = await local.presign_download(
        f"orgs/{org.id}/nothing/here", expires_in=timedelta(minutes=1)
    )
    assert (await client.get(missing)).status_code == 404
    assert first != second


# --- lists, visibility, removal ----------------------------------------------------------------


async def test_pending_hidden_unless_asked(client: httpx.AsyncClient, org: Org) -> None:
    message = await message_row(client, org)
    ready, _ = await attach(client, org.staff, message, b"ready\n", "a.txt")
    pending = (await start(client, org.staff, message, "b.txt")).json()["data"]["id"]
    rejected, _ = await attach(client, org.staff, message, ELF, "c.png")
    other_message = await message_row(client, org)
    await attach(client, org.staff, other_message, b"elsewhere\n", "d.txt")

    async def ids(**params: str) -> list[str]:
        return listed(
            await client.get(
                ATTACHMENTS, params={"message-id": message, **params}, headers=org.readonly
            )
        )

    assert await ids() == [ready]
    assert await ids(**{"filter[include-pending]": "false"}) == [ready]
    assert await ids(**{"filter[include-pending]": "true"}) == [ready, pending]
    assert await ids(**{"filter[include-pending]": "1", "sort": "-created-at"}) == [pending, ready]
    assert rejected not in await ids(**{"filter[include-pending]": "true"})
    bad = await client.get(
        ATTACHMENTS,
        params={"message-id": message, "filter[include-pending]": "maybe"},
        headers=org.staff,
    )
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["source"]["parameter"] == "filter[include-pending]"
    assert (await client.get(ATTACHMENTS, headers=org.staff)).status_code == 400


async def test_other_organization_sees_nothing(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    message = await message_row(client, org)
    ident, _ = await attach(client, org.staff, message, b"private\n", "a.txt")
    assert (await client.get(f"{ATTACHMENTS}{ident}/", headers=other_org.admin)).status_code == 404
    assert (await process(client, other_org.admin, ident)).status_code == 404
    patched = await client.patch(
        f"{ATTACHMENTS}{ident}/",
        json=doc("messaging-attachments", {"removed": True}, ident),
        headers=other_org.admin,
    )
    assert patched.status_code == 404
    assert (
        listed(
            await client.get(ATTACHMENTS, params={"message-id": message}, headers=other_org.admin)
        )
        == []
    )
    assert (await start(client, other_org.staff, message)).status_code == 404
    assert (await client.get(f"{ATTACHMENTS}{uuid.uuid4()}/", headers=org.admin)).status_code == 404


async def test_individuals_see_attachments_of_their_channels_only(
    client: httpx.AsyncClient, org: Org
) -> None:
    c = await care(client, org)
    ident, processed = await attach(client, c.as_alice, c.message, b"from alice\n", "a.txt")
    assert processed.status_code == 201, processed.text
    assert (await get_attributes(client, c.as_carol, ident))["filename"] == "a.txt"
    listing = await client.get(ATTACHMENTS, params={"message-id": c.message}, headers=c.as_carol)
    assert listed(listing) == [ident]

    # Bob does not subscribe to the channel: he can neither attach nor see.
    assert (await start(client, c.as_bob, c.message)).status_code == 404
    assert (await client.get(f"{ATTACHMENTS}{ident}/", headers=c.as_bob)).status_code == 404
    listing = await client.get(ATTACHMENTS, params={"message-id": c.message}, headers=c.as_bob)
    assert listed(listing) == []
    assert (await process(client, c.as_bob, ident)).status_code == 404
    # A key acting for Bob sees what Bob sees; acting for Alice, what Alice sees.
    as_bob = {"message-id": c.message, "individual-id": c.bob}
    assert listed(await client.get(ATTACHMENTS, params=as_bob, headers=org.staff)) == []
    as_alice = {"message-id": c.message, "individual-id": c.alice}
    assert listed(await client.get(ATTACHMENTS, params=as_alice, headers=org.staff)) == [ident]
    assert (await start(client, org.staff, c.message)).status_code == 201
    # A token may act only as its own individual.
    wrong = await process(client, c.as_alice, ident, **{"individual-id": c.bob})
    assert wrong.status_code == 403

    # A draft's attachments are its author's alone.
    draft = await message_row(client, org, [c.alice, c.carol], author_id=c.alice, draft=True)
    secret, done = await attach(client, c.as_alice, draft, b"draft note\n", "d.txt")
    assert done.status_code == 201, done.text
    assert (await client.get(f"{ATTACHMENTS}{secret}/", headers=c.as_carol)).status_code == 404
    assert (await start(client, c.as_carol, draft)).status_code == 404


async def test_removed_attachment_never_served_again(client: httpx.AsyncClient, org: Org) -> None:
    c = await care(client, org)
    ident, processed = await attach(client, c.as_alice, c.message, png_bytes(), "x.png")
    assert processed.json()["data"]["attributes"]["thumbnail"] is not None

    async def remove(headers: dict[str, str], removed: bool = True) -> httpx.Response:
        return await client.patch(
            f"{ATTACHMENTS}{ident}/",
            json=doc("messaging-attachments", {"removed": removed}, ident),
            headers=headers,
        )

    assert (await remove(c.as_carol)).status_code == 403  # neither uploader nor author
    assert (await remove(org.readonly)).status_code == 403
    response = await remove(c.as_alice)
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert attributes["removed"] is True
    assert attributes["url"] is None and attributes["thumbnail"] is None
    assert attributes["content-type"] == "image/png"  # kept for the record
    listing = await client.get(ATTACHMENTS, params={"message-id": c.message}, headers=org.staff)
    assert [item["attributes"]["url"] for item in listing.json()["data"]] == [None]
    assert error_code(await remove(org.staff, removed=False), 409) == "attachment-removed"
    assert (await remove(org.staff)).status_code == 200  # already removed: nothing changes
    assert error_code(await process(client, org.staff, ident), 409) == "removed"
    bad = await client.patch(
        f"{ATTACHMENTS}{ident}/",
        json=doc("messaging-attachments", {"removed": "yes"}, ident),
        headers=org.staff,
    )
    assert bad.status_code == 400


async def test_message_representation_helper(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    message = await message_row(client, org)
    empty = await message_row(client, org)
    ready, _ = await attach(client, org.staff, message, png_bytes((64, 64)), "x.png")
    await start(client, org.staff, message, "pending.txt")
    async with app.state.database.sessionmaker() as session:
        found = await attachments_for_messages(
            session,
            uuid.UUID(org.id),
            [uuid.UUID(message), uuid.UUID(empty)],
            settings=settings,
            base_url="http://courier.test/",
        )
        plain = await attachments_for_messages(
            session, uuid.UUID(org.id), [uuid.UUID(message)], settings=settings, thumbnails=False
        )
    assert found[uuid.UUID(empty)] == []
    [item] = found[uuid.UUID(message)]
    assert item["id"] == ready and item["content-type"] == "image/png"
    assert (await client.get(item["url"])).status_code == 200
    assert (await client.get(item["thumbnail"])).status_code == 200
    assert plain[uuid.UUID(message)][0]["thumbnail"] is None


# --- cleanup -----------------------------------------------------------------------------------


async def test_expired_pending_uploads_are_cleaned_up(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    message = await message_row(client, org)
    storage = storage_for(settings)
    organization = uuid.UUID(org.id)
    stale = (await start(client, org.staff, message, "stale.txt")).json()["data"]
    assert (await upload(client, stale, b"never processed\n")).status_code == 204
    fresh = (await start(client, org.staff, message, "fresh.txt")).json()["data"]
    assert (await upload(client, fresh, b"still uploading\n")).status_code == 204
    done = (await start(client, org.staff, message, "done.txt")).json()["data"]
    assert (await upload(client, done, b"processed\n")).status_code == 204
    assert (await process(client, org.staff, done["id"])).status_code == 201
    assert (await upload(client, done, b"uploaded again\n")).status_code == 204  # a late copy

    async with app.state.database.sessionmaker() as session:
        # Starting an upload scheduled the cleanup of its window.
        row = await attachment_row(session, organization, stale["id"])
        grace = cleanup_grace(settings)
        window = cleanup_window(row.upload_expires_at + grace)
        job = (
            await session.execute(
                scoped(
                    select(Job).where(Job.dedupe_key == f"{CLEANUP_JOB}:{window}"),
                    Job,
                    organization,
                )
            )
        ).scalar_one()
        assert job.kind == CLEANUP_JOB and job.state == "queued"
        assert job.run_at >= row.upload_expires_at + grace

        # Two of the windows closed long ago; the sweep is due now.
        past = datetime.now(UTC) - grace - timedelta(hours=1)
        closed = [uuid.UUID(stale["id"]), uuid.UUID(done["id"])]
        await session.execute(
            scoped(
                update(MessagingAttachment).where(MessagingAttachment.id.in_(closed)),
                MessagingAttachment,
                organization,
            ).values(upload_expires_at=past)
        )
        await enqueue(session, CLEANUP_JOB, {}, organization_id=organization)
        await commit(session)

    assert await run_until_idle(app.state.database, settings, kinds=[CLEANUP_JOB]) >= 1

    assert (await client.get(f"{ATTACHMENTS}{stale['id']}/", headers=org.staff)).status_code == 404
    assert await storage.head(upload_key(organization, uuid.UUID(stale["id"]))) is None
    # Still within its window: untouched.
    assert (await get_attributes(client, org.staff, fresh["id"]))["status"] == "pending"
    assert await storage.head(upload_key(organization, uuid.UUID(fresh["id"]))) is not None
    # Processed: the late copy at its upload key is gone, the verified file is still served.
    assert await storage.head(upload_key(organization, uuid.UUID(done["id"]))) is None
    served = await get_attributes(client, org.staff, done["id"])
    assert (await client.get(served["url"])).content == b"processed\n"
    async with app.state.database.sessionmaker() as session:
        row = await attachment_row(session, organization, done["id"])
        assert row.upload_key is None


# --- purge -------------------------------------------------------------------------------------


async def test_purging_an_individual_deletes_their_attachments_and_files(
    client: httpx.AsyncClient, org: Org, app: Any, settings: Settings
) -> None:
    import courier.domains.purges.jobs  # noqa: F401  (registers the purge job)
    from courier.domains.purges.service import PURGE_JOB

    c = await care(client, org)
    carols = await message_row(client, org, [c.alice, c.carol], author_id=c.carol)
    own, _ = await attach(client, c.as_alice, c.message, b"alice on hers\n", "1.txt")
    on_hers, _ = await attach(client, c.as_carol, c.message, b"carol on alice's\n", "2.txt")
    by_her, _ = await attach(client, c.as_alice, carols, png_bytes((50, 50)), "3.png")
    kept, _ = await attach(client, c.as_carol, carols, b"carol on hers\n", "4.txt")

    response = await client.post(
        "/v1/purge-data/",
        headers=org.admin,
        json=doc("system-purges", {"entity-type": "individual", "entity-id": c.alice}),
    )
    assert response.status_code == 201, response.text
    await run_until_idle(app.state.database, settings, kinds=[PURGE_JOB, DELETE_FILES_JOB])
    receipt = await client.get(
        f"/v1/purge-data/{response.json()['data']['id']}/", headers=org.admin
    )
    assert receipt.json()["data"]["attributes"]["state"] == "completed"
    assert receipt.json()["data"]["attributes"]["counts"]["messaging_attachments"] == 3

    storage = storage_for(settings)
    organization = uuid.UUID(org.id)
    for ident in (own, on_hers, by_her):
        assert (await client.get(f"{ATTACHMENTS}{ident}/", headers=org.staff)).status_code == 404
        for key in attachment_keys(organization, uuid.UUID(ident)):
            assert await storage.head(key) is None
    assert (await get_attributes(client, org.staff, kept))["status"] == "ready"
    assert await storage.head(file_key(organization, uuid.UUID(kept))) is not None


# --- content detection -------------------------------------------------------------------------


def zipped(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def test_content_types_come_from_the_bytes() -> None:
    docx = zipped(
        [
            ("docProps/app.xml", b"<Properties/>" * 400),  # a large first member
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w:document/>"),
        ]
    )
    assert detect_content_type(docx) == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    xlsx = zipped([("[Content_Types].xml", b"<Types/>"), ("xl/workbook.xml", b"<workbook/>")])
    assert detect_content_type(xlsx) == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    odt = zipped(
        [("mimetype", b"application/vnd.oasis.opendocument.text"), ("content.xml", b"<x/>")]
    )
    assert detect_content_type(odt) == "application/vnd.oasis.opendocument.text"
    assert detect_content_type(zipped([("payload.exe", ELF)])) == "application/zip"
    assert detect_content_type(pdf_bytes()) == "application/pdf"
    assert detect_content_type("Grüße\r\n\tok".encode()) == "text/plain"
    assert detect_content_type(b"text with a NUL\x00 byte") is None
    assert detect_content_type("latin-1 é".encode("latin-1")) is None
    assert detect_content_type(ELF) == "application/x-executable"
    assert detect_content_type(b"") is None


async def test_heic_photo_accepted_with_a_thumbnail(client: httpx.AsyncClient, org: Org) -> None:
    out = io.BytesIO()
    from courier.uploads.inspection import heif_supported

    assert heif_supported()  # registers libheif's Pillow plugin, which the encoder needs too
    Image.new("RGB", (400, 300), (10, 120, 200)).save(out, format="HEIF")
    message = await message_row(client, org)
    _, processed = await attach(client, org.staff, message, out.getvalue(), "IMG_0001.HEIC")
    assert processed.status_code == 201, processed.text
    attributes = processed.json()["data"]["attributes"]
    assert attributes["content-type"] == "image/heic"
    preview = await client.get(attributes["thumbnail"])
    with Image.open(io.BytesIO(preview.content)) as thumbnail:
        assert thumbnail.size == (320, 240)
    download = await client.get(attributes["url"])
    assert download.headers["content-disposition"].startswith("attachment;")
