"""Messaging attachments with ``COURIER_STORAGE=s3``, against moto's S3 server over HTTP.

The client uploads straight to the bucket with the presigned POST and downloads through the
presigned GET; Courier only inspects, copies and thumbnails.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import update

import courier.uploads.workers  # noqa: F401  (registers every kind of upload's jobs)
from courier.app import create_app
from courier.config import Settings
from courier.core.db import commit
from courier.core.tenancy import scoped
from courier.domains.messaging_attachments.uploads import messaging_uploads
from courier.jobs import enqueue, run_until_idle
from courier.models.messaging_attachment import MessagingAttachment
from courier.providers.storage import storage_for
from courier.providers.storage.s3 import S3Storage
from courier.uploads.jobs import cleanup_grace
from tests.conftest import Org, create_org, doc, make_settings
from tests.factories import message_row
from tests.test_attachments import ELF, error_code, listed, pdf_bytes, png_bytes
from tests.test_storage import s3_settings

ATTACHMENTS = "/v1/messaging-attachments/"
LIMIT = 64 * 1024
CLEANUP_JOB = messaging_uploads.cleanup_job
upload_key = messaging_uploads.keys.upload
file_key = messaging_uploads.keys.file


@pytest.fixture(scope="module")
def s3(database_url: str, data_dir: Path) -> Settings:
    return make_settings(
        database_url,
        data_dir,
        **s3_settings(s3_key_prefix=f"run-{uuid.uuid4().hex[:8]}/", attachment_max_bytes=LIMIT),
    )


@pytest.fixture(scope="module")
async def s3_app(s3: Settings) -> AsyncIterator[Any]:
    application = create_app(s3)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def api(s3_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=s3_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
        yield http


@pytest.fixture
async def net() -> AsyncIterator[httpx.AsyncClient]:
    """The client's own connection to the bucket (real HTTP to moto)."""
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


@pytest.fixture
async def s3_org(api: httpx.AsyncClient) -> Org:
    return await create_org(api)


def bucket(settings: Settings) -> S3Storage:
    storage = storage_for(settings)
    assert isinstance(storage, S3Storage)
    return storage


async def attach(
    api: httpx.AsyncClient,
    net: httpx.AsyncClient,
    org: Org,
    message: str,
    content: bytes,
    filename: str,
    content_type: str | None = None,
) -> tuple[str, httpx.Response]:
    attributes: dict[str, Any] = {"message-id": message, "filename": filename}
    if content_type:
        attributes["content-type"] = content_type
    started = await api.post(
        ATTACHMENTS, json=doc("messaging-attachments", attributes), headers=org.staff
    )
    assert started.status_code == 201, started.text
    data = started.json()["data"]
    stored = await net.post(
        data["upload-url"], data=data["upload-data"], files={"file": (filename, content)}
    )
    assert stored.status_code in (200, 201, 204), stored.text
    processed = await api.post(f"{ATTACHMENTS}{data['id']}/process-upload/", headers=org.staff)
    return data["id"], processed


async def test_png_and_pdf_through_the_bucket(
    api: httpx.AsyncClient, net: httpx.AsyncClient, s3_org: Org, s3: Settings
) -> None:
    message = await message_row(api, s3_org)
    picture = png_bytes((500, 250))
    ident, processed = await attach(api, net, s3_org, message, picture, "xray.png", "image/png")
    assert processed.status_code == 201, processed.text
    attributes = processed.json()["data"]["attributes"]
    assert attributes["content-type"] == "image/png"
    assert attributes["content-size"] == len(picture)

    url = attributes["url"]
    assert url.startswith(s3.s3_endpoint_url or "")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(s3.attachment_link_ttl_seconds)]
    download = await net.get(url)
    assert download.status_code == 200
    assert download.content == picture
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"].startswith('inline; filename="xray.png"')
    thumbnail = await net.get(attributes["thumbnail"])
    with Image.open(io.BytesIO(thumbnail.content)) as preview:
        assert preview.size == (320, 160)

    # The verified copy lives at its own key; the upload is gone.
    storage = bucket(s3)
    organization = uuid.UUID(s3_org.id)
    assert await storage.head(upload_key(organization, uuid.UUID(ident))) is None
    assert await storage.read(file_key(organization, uuid.UUID(ident))) == picture

    document = pdf_bytes()
    _, processed = await attach(api, net, s3_org, message, document, "labs.pdf")
    assert processed.status_code == 201, processed.text
    attributes = processed.json()["data"]["attributes"]
    assert attributes["content-type"] == "application/pdf" and attributes["thumbnail"] is None
    download = await net.get(attributes["url"])
    assert download.content == document
    assert download.headers["content-disposition"].startswith('attachment; filename="labs.pdf"')


async def test_refused_files_are_deleted_from_the_bucket(
    api: httpx.AsyncClient, net: httpx.AsyncClient, s3_org: Org, s3: Settings
) -> None:
    message = await message_row(api, s3_org)
    storage = bucket(s3)
    organization = uuid.UUID(s3_org.id)
    ident, processed = await attach(api, net, s3_org, message, ELF, "cat.png", "image/png")
    assert error_code(processed, 415) == "unsupported-attachment-type"
    assert await storage.head(upload_key(organization, uuid.UUID(ident))) is None
    assert await storage.head(file_key(organization, uuid.UUID(ident))) is None

    # Larger than the limit (the bucket's policy says so too; moto does not enforce it).
    ident, processed = await attach(
        api, net, s3_org, message, pdf_bytes() + b"%" * LIMIT, "big.pdf"
    )
    assert error_code(processed, 400) == "attachment-too-large"
    assert await storage.head(upload_key(organization, uuid.UUID(ident))) is None
    listing = await api.get(
        ATTACHMENTS,
        params={"message-id": message, "filter[include-pending]": "true"},
        headers=s3_org.staff,
    )
    assert listed(listing) == []


async def test_cleanup_deletes_expired_uploads_from_the_bucket(
    api: httpx.AsyncClient, net: httpx.AsyncClient, s3_org: Org, s3: Settings, s3_app: Any
) -> None:
    message = await message_row(api, s3_org)
    started = await api.post(
        ATTACHMENTS,
        json=doc("messaging-attachments", {"message-id": message, "filename": "late.txt"}),
        headers=s3_org.staff,
    )
    data = started.json()["data"]
    stored = await net.post(
        data["upload-url"], data=data["upload-data"], files={"file": ("late.txt", b"late\n")}
    )
    assert stored.status_code in (200, 201, 204)
    organization = uuid.UUID(s3_org.id)
    key = upload_key(organization, uuid.UUID(data["id"]))
    storage = bucket(s3)
    assert await storage.head(key) is not None

    async with s3_app.state.database.sessionmaker() as session:
        past = datetime.now(UTC) - cleanup_grace(s3) - timedelta(minutes=1)
        await session.execute(
            scoped(
                update(MessagingAttachment).where(MessagingAttachment.id == uuid.UUID(data["id"])),
                MessagingAttachment,
                organization,
            ).values(upload_expires_at=past)
        )
        await enqueue(session, CLEANUP_JOB, {}, organization_id=organization)
        await commit(session)
    assert await run_until_idle(s3_app.state.database, s3, kinds=[CLEANUP_JOB]) >= 1
    assert await storage.head(key) is None
    gone = await api.get(f"{ATTACHMENTS}{data['id']}/", headers=s3_org.staff)
    assert gone.status_code == 404
