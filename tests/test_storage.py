"""The storage adapters behind one Protocol: local disk, and S3 against moto's real server.

The same tests run over both adapters (presigned uploads performed over HTTP as a client
would, head, read, ranges, streams, writes, deletes, presigned downloads). moto runs in server
mode on a free port of 127.0.0.1 for the whole test session (:func:`moto_endpoint`).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from courier.config import Settings
from courier.providers.storage import (
    InvalidKeyError,
    LocalStorage,
    Storage,
    check_key,
    content_disposition,
    storage_for,
)
from courier.providers.storage.local import LinkRefusedError, derive_signing_key
from courier.providers.storage.s3 import S3Storage

BUCKET = "courier-test-attachments"
_moto: dict[str, str] = {}


def moto_endpoint() -> str:
    """The URL of this process's moto S3 server (started once, stopped at exit), with the
    bucket created and AWS test credentials in the environment."""
    if "url" not in _moto:
        from moto.server import ThreadedMotoServer

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "courier-test")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "courier-test-secret")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        atexit.register(server.stop)
        url = f"http://127.0.0.1:{port}"
        import boto3

        boto3.session.Session().client(
            "s3", endpoint_url=url, region_name="us-east-1"
        ).create_bucket(Bucket=BUCKET)
        _moto["url"] = url
    return _moto["url"]


def s3_settings(**values: Any) -> dict[str, Any]:
    """Settings values that select the S3 adapter against moto."""
    return {
        "storage": "s3",
        "s3_bucket": BUCKET,
        "s3_endpoint_url": moto_endpoint(),
        "s3_region": "us-east-1",
        "s3_path_style": True,
        **values,
    }


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "storage", derive_signing_key("secret"), "http://c.test")
    settings = Settings(data_dir=tmp_path, **s3_settings(s3_key_prefix=f"t{uuid.uuid4().hex}/"))
    found = storage_for(settings)
    assert isinstance(found, S3Storage)
    return found


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def upload_as_client(
    http: httpx.AsyncClient, storage: Storage, url: str, fields: dict[str, str], data: bytes
) -> httpx.Response:
    """POST the presigned form: to moto over the network, or to Courier's own route."""
    if isinstance(storage, LocalStorage):
        # The local adapter's links point at Courier; here its checks are called directly.
        key = urlsplit(url).path.removeprefix("/uploads/")
        try:
            limit = storage.verify_upload(key, fields)
        except LinkRefusedError as exc:
            return httpx.Response(exc.status)
        if len(data) > limit:
            return httpx.Response(413)
        await storage.write(key, data, content_type="application/octet-stream")
        return httpx.Response(204)
    return await http.post(url, data=fields, files={"file": ("blob", data)})


# --- the Protocol, over both adapters ----------------------------------------------------------


async def test_presigned_upload_then_head_read_stream_delete(
    storage: Storage, http: httpx.AsyncClient
) -> None:
    key = f"orgs/{uuid.uuid4()}/sample/upload"
    assert await storage.head(key) is None
    upload = await storage.presign_upload(key, expires_in=timedelta(minutes=5), max_size=1000)
    assert upload.max_size == 1000
    assert upload.fields["key"].endswith(key)
    payload = bytes(range(256)) * 3
    stored = await upload_as_client(http, storage, upload.url, upload.fields, payload)
    assert stored.status_code == 204, stored.text

    info = await storage.head(key)
    assert info is not None and info.size == len(payload)
    assert await storage.read(key) == payload
    assert await storage.read(key, max_bytes=10) == payload[:10]
    chunks = [chunk async for chunk in storage.stream(key, chunk_size=100)]
    assert b"".join(chunks) == payload and len(chunks) == 8

    await storage.delete(key)
    assert await storage.head(key) is None
    await storage.delete(key)  # deleting what is gone is fine
    with pytest.raises(FileNotFoundError):
        await storage.read(key)


async def test_write_and_presigned_download(storage: Storage, http: httpx.AsyncClient) -> None:
    key = f"orgs/{uuid.uuid4()}/thumbnail.png"
    await storage.write(key, b"\x89PNG-ish", content_type="image/png")
    await storage.write(key, b"\x89PNG-new", content_type="image/png")  # replaced whole
    assert await storage.read(key) == b"\x89PNG-new"
    url = await storage.presign_download(
        key,
        expires_in=timedelta(seconds=90),
        content_type="image/png",
        filename="résumé scan.png",
        inline=True,
    )
    query = parse_qs(urlsplit(url).query)
    if isinstance(storage, LocalStorage):
        content_type, disposition = storage.verify_download(
            urlsplit(url).path.removeprefix("/uploads/"), {k: v[0] for k, v in query.items()}
        )
        assert content_type == "image/png"
        assert disposition == content_disposition("résumé scan.png", inline=True)
    else:
        assert query["X-Amz-Expires"] == ["90"]
        response = await http.get(url)
        assert response.status_code == 200
        assert response.content == b"\x89PNG-new"
        assert response.headers["content-type"] == "image/png"
        assert (
            "filename*=UTF-8''r%C3%A9sum%C3%A9%20scan.png"
            in response.headers["content-disposition"]
        )


async def test_empty_object_reads_empty(storage: Storage) -> None:
    key = f"orgs/{uuid.uuid4()}/empty"
    await storage.write(key, b"", content_type="text/plain")
    assert await storage.read(key, max_bytes=100) == b""
    info = await storage.head(key)
    assert info is not None and info.size == 0


async def test_unsafe_keys_refused(storage: Storage) -> None:
    for key in ("../etc/passwd", "a/../../b", "/abs", "a//b", "a/./b", "sp ace", ""):
        with pytest.raises(InvalidKeyError):
            await storage.head(key)
        with pytest.raises(InvalidKeyError):
            await storage.presign_upload(key, expires_in=timedelta(minutes=1), max_size=1)


# --- S3 specifics ------------------------------------------------------------------------------


async def test_s3_upload_policy_limits_size_and_key(tmp_path: Path) -> None:
    storage = storage_for(Settings(data_dir=tmp_path, **s3_settings(s3_key_prefix="p/")))
    assert isinstance(storage, S3Storage)
    upload = await storage.presign_upload(
        "orgs/x/upload", expires_in=timedelta(minutes=15), max_size=4096
    )
    assert upload.fields["key"] == "p/orgs/x/upload"
    policy = json.loads(base64.b64decode(upload.fields["policy"]))
    assert ["content-length-range", 1, 4096] in policy["conditions"]
    assert {"key": "p/orgs/x/upload"} in policy["conditions"]
    assert {"bucket": BUCKET} in policy["conditions"]


def test_storage_selection(tmp_path: Path) -> None:
    local = storage_for(
        Settings(data_dir=tmp_path, allowed_hosts="here.test"), base_url="http://here.test/"
    )
    assert isinstance(local, LocalStorage) and local.base_url == "http://here.test"
    public = storage_for(
        Settings(data_dir=tmp_path, public_url="https://courier.clinic.test"),
        base_url="http://internal:8000/",
    )
    assert isinstance(public, LocalStorage) and public.base_url == "https://courier.clinic.test"
    with pytest.raises(ValueError, match="COURIER_S3_BUCKET"):
        storage_for(Settings(data_dir=tmp_path, storage="s3"))


# --- local signatures --------------------------------------------------------------------------


async def test_local_links_refuse_tampering_and_expiry(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, derive_signing_key("one secret"), "http://c.test")
    other = LocalStorage(tmp_path, derive_signing_key("another secret"), "http://c.test")
    upload = await storage.presign_upload("a/upload", expires_in=timedelta(minutes=1), max_size=9)
    assert storage.verify_upload("a/upload", upload.fields) == 9
    refusals: list[tuple[str, dict[str, str]]] = [
        ("a/upload", {**upload.fields, "max-size": "999999"}),  # a larger limit
        ("a/other", {**upload.fields, "key": "a/other"}),  # another key
        ("a/other", upload.fields),  # the form's key is not the URL's
    ]
    for key, fields in refusals:
        with pytest.raises(LinkRefusedError) as refused:
            storage.verify_upload(key, fields)
        assert refused.value.status == 403
    with pytest.raises(LinkRefusedError) as refused:
        other.verify_upload("a/upload", upload.fields)  # signed under another secret
    assert refused.value.status == 403
    expired = storage.upload_fields("a/upload", 1_000_000_000, 9)
    with pytest.raises(LinkRefusedError) as refused:
        storage.verify_upload("a/upload", expired)
    assert (refused.value.status, refused.value.code) == (403, "upload-expired")
    with pytest.raises(LinkRefusedError) as refused:
        storage.verify_upload("a/upload", {"key": "a/upload"})
    assert refused.value.status == 400

    url = await storage.presign_download(
        "a/file", expires_in=timedelta(minutes=1), content_type="text/plain"
    )
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert storage.verify_download("a/file", params) == ("text/plain", None)
    for key, changed in [
        ("a/file", {**params, "content-type": "text/html"}),
        ("a/other", params),
        ("a/file", {**params, "signature": "0" * 64}),
        ("a/file", {"expires": params["expires"]}),
    ]:
        with pytest.raises(LinkRefusedError) as refused:
            storage.verify_download(key, changed)
        assert refused.value.status == 403
    stale = await storage.presign_download("a/file", expires_in=timedelta(seconds=-5))
    stale_params = {k: v[0] for k, v in parse_qs(urlsplit(stale).query).items()}
    with pytest.raises(LinkRefusedError) as refused:
        storage.verify_download("a/file", stale_params)
    assert refused.value.code == "link-expired"


def test_keys_and_dispositions() -> None:
    assert check_key("orgs/1/messaging-attachments/2/file") == "orgs/1/messaging-attachments/2/file"
    assert content_disposition(None, inline=False) == "attachment"
    assert content_disposition('a"b;.pdf', inline=False) == (
        "attachment; filename=\"a_b_.pdf\"; filename*=UTF-8''a%22b%3B.pdf"
    )
