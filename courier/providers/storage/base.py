"""Storage of uploaded files: one Protocol, a local-disk adapter and an S3-compatible one.

Clients never send file bytes through the JSON API: they get a presigned upload (a URL and the
form fields to post with the file, like an S3 presigned POST), upload straight to it, and later
download through short-lived signed links. Courier itself reads objects only to inspect them
(content type, thumbnails) and writes only what it derives from them.

Keys are opaque paths of safe characters (``orgs/<org>/messaging-attachments/<id>/file``):
never a client's file name, which may hold patient data.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from urllib.parse import quote

MAX_KEY_LENGTH = 512
_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._/-]*$")
CHUNK_SIZE = 64 * 1024


class StorageError(Exception):
    """The storage backend failed (unreachable, refused our credentials ...)."""


class InvalidKeyError(ValueError):
    """A key that is not an opaque path of safe characters."""


def check_key(key: str) -> str:
    """``key`` if it is a safe relative path (no empty, ``.`` or ``..`` segments), else raise."""
    if not key or len(key) > MAX_KEY_LENGTH or not _KEY.match(key):
        raise InvalidKeyError("a storage key is 1 to 512 of A-Z a-z 0-9 . _ - /")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKeyError("a storage key has no empty, '.' or '..' segments")
    return key


@dataclass(frozen=True)
class PresignedUpload:
    """Where and how a client uploads one object: POST ``url`` as multipart/form-data with
    every one of ``fields`` and then the file itself (the part named ``file``)."""

    url: str
    fields: dict[str, str]
    expires_at: datetime
    max_size: int


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = field(default=None, compare=False)


@runtime_checkable
class Storage(Protocol):
    """An object store. Every method is safe to repeat; ``delete`` of a missing key is a no-op."""

    name: str

    async def presign_upload(
        self, key: str, *, expires_in: timedelta, max_size: int
    ) -> PresignedUpload:
        """A one-object upload the client performs itself, valid for ``expires_in``, refused
        above ``max_size`` bytes (and when empty)."""
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """The object's size, or None when there is no such object."""
        ...

    async def read(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes (the first ``max_bytes`` of them when given).
        A missing object raises FileNotFoundError."""
        ...

    def stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        """The object's bytes in chunks (for large objects). Missing: FileNotFoundError."""
        ...

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        """Create or replace an object (thumbnails, verified copies)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; nothing happens when it does not exist."""
        ...

    async def presign_download(
        self,
        key: str,
        *,
        expires_in: timedelta,
        content_type: str | None = None,
        filename: str | None = None,
        inline: bool = False,
    ) -> str:
        """A link that serves the object until ``expires_in`` has passed, with this content
        type and a Content-Disposition naming ``filename`` (``inline`` or as a download)."""
        ...


def content_disposition(filename: str | None, *, inline: bool) -> str:
    """RFC 6266: an ASCII fallback name plus the exact UTF-8 name in ``filename*``."""
    kind = "inline" if inline else "attachment"
    if not filename:
        return kind
    fallback = "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename
    ).strip()
    fallback = fallback or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
