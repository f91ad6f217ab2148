"""Local-disk storage (the embedded default): files under ``<data_dir>/storage/``.

Courier serves this storage's presigned links itself (``courier.domains.uploads``): uploads are
``POST /uploads/<key>`` with the form fields this adapter signed (as with an S3 presigned
POST), downloads are ``GET /uploads/<key>?expires=..&signature=..``. Signatures are
HMAC-SHA256 under a key derived from the token secret, so every replica that shares the
secret (and the disk) accepts the links of every other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from courier.providers.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    PresignedUpload,
    check_key,
    content_disposition,
)

UPLOAD_PATH = "/uploads/"


def derive_signing_key(secret: str) -> bytes:
    """The storage's own HMAC key: a token secret never signs two kinds of thing."""
    return hmac.new(secret.encode("utf-8"), b"courier:storage-links:v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class LinkRefusedError(Exception):
    """A signed link or upload form that Courier does not honour (status for the reply)."""

    status: int
    code: str
    detail: str

    def __str__(self) -> str:
        return self.detail


def _now() -> int:
    return int(datetime.now(UTC).timestamp())


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, signing_key: bytes, base_url: str) -> None:
        self.root = root
        self._signing_key = signing_key
        self.base_url = base_url.rstrip("/")

    # --- signatures ---------------------------------------------------------------------

    def _sign(self, *parts: str) -> str:
        message = "\n".join(parts).encode("utf-8")
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def _url(self, key: str) -> str:
        return self.base_url + UPLOAD_PATH + quote(key, safe="/")

    def upload_fields(self, key: str, expires: int, max_size: int) -> dict[str, str]:
        return {
            "key": key,
            "expires": str(expires),
            "max-size": str(max_size),
            "signature": self._sign("upload", key, str(expires), str(max_size)),
        }

    def verify_upload(self, key: str, fields: Mapping[str, str]) -> int:
        """The size limit the signed ``fields`` allow for ``key``; LinkRefusedError if they are
        not ours, were altered, name another key, or have expired."""
        check_key(key)
        try:
            expires = int(fields["expires"])
            max_size = int(fields["max-size"])
            signature = fields["signature"]
        except (KeyError, ValueError) as exc:
            raise LinkRefusedError(
                400,
                "invalid-upload-form",
                "the upload form needs the fields key, expires, max-size and signature "
                "it was given, and the file",
            ) from exc
        if fields.get("key", key) != key:
            raise LinkRefusedError(
                403, "invalid-signature", "the form's key is not the key of the upload URL"
            )
        expected = self._sign("upload", key, str(expires), str(max_size))
        if not hmac.compare_digest(expected, signature):
            raise LinkRefusedError(403, "invalid-signature", "the upload signature is not valid")
        if expires < _now():
            raise LinkRefusedError(403, "upload-expired", "the upload link has expired")
        return max_size

    def verify_download(self, key: str, params: Mapping[str, str]) -> tuple[str | None, str | None]:
        """The (content type, content disposition) a valid download link asks for."""
        check_key(key)
        try:
            expires = int(params["expires"])
            signature = params["signature"]
        except (KeyError, ValueError) as exc:
            raise LinkRefusedError(
                403, "invalid-signature", "the download link is not signed"
            ) from exc
        content_type = params.get("content-type", "")
        disposition = params.get("disposition", "")
        expected = self._sign("download", key, str(expires), content_type, disposition)
        if not hmac.compare_digest(expected, signature):
            raise LinkRefusedError(403, "invalid-signature", "the download link is not valid")
        if expires < _now():
            raise LinkRefusedError(403, "link-expired", "the download link has expired")
        return content_type or None, disposition or None

    # --- the Storage protocol -----------------------------------------------------------

    def path_of(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("key outside the storage root")
        return path

    async def presign_upload(
        self, key: str, *, expires_in: timedelta, max_size: int
    ) -> PresignedUpload:
        check_key(key)
        expires = _now() + int(expires_in.total_seconds())
        return PresignedUpload(
            url=self._url(key),
            fields=self.upload_fields(key, expires, max_size),
            expires_at=datetime.fromtimestamp(expires, UTC),
            max_size=max_size,
        )

    async def head(self, key: str) -> ObjectInfo | None:
        path = self.path_of(key)
        try:
            stat = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        return ObjectInfo(key, stat.st_size, f"{stat.st_mtime_ns:x}-{stat.st_size:x}")

    async def read(self, key: str, *, max_bytes: int | None = None) -> bytes:
        path = self.path_of(key)

        def read() -> bytes:
            with path.open("rb") as handle:
                return handle.read() if max_bytes is None else handle.read(max_bytes)

        return await asyncio.to_thread(read)

    async def stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.path_of(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        await asyncio.to_thread(self._replace, key, lambda out: out.write(data))

    async def store_file(self, key: str, source: BinaryIO) -> None:
        """Copy an uploaded file (already checked) into place, atomically."""
        await asyncio.to_thread(
            self._replace, key, lambda out: shutil.copyfileobj(source, out, CHUNK_SIZE)
        )

    def _replace(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            with temporary.open("xb") as out:
                fill(out)
            temporary.chmod(0o600)
            # Readers see the old object or the new one, never half of one.
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    async def delete(self, key: str) -> None:
        path = self.path_of(key)

        def remove() -> None:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty, or already gone: both fine
                path.parent.rmdir()

        await asyncio.to_thread(remove)

    async def presign_download(
        self,
        key: str,
        *,
        expires_in: timedelta,
        content_type: str | None = None,
        filename: str | None = None,
        inline: bool = False,
    ) -> str:
        check_key(key)
        expires = str(_now() + int(expires_in.total_seconds()))
        disposition = content_disposition(filename, inline=inline) if filename else ""
        params = {"expires": expires}
        if content_type:
            params["content-type"] = content_type
        if disposition:
            params["disposition"] = disposition
        params["signature"] = self._sign("download", key, expires, content_type or "", disposition)
        return self._url(key) + "?" + urlencode(params, quote_via=quote)
