"""Storage of uploaded files, chosen by ``COURIER_STORAGE``: ``local`` (default) or ``s3``.

Use :func:`storage_for`::

    storage = storage_for(settings, base_url=str(request.base_url))
    upload = await storage.presign_upload(key, expires_in=timedelta(minutes=15), max_size=n)

``base_url`` is only used by the local adapter (its links point at this Courier); the
``public_url`` setting, when set, wins over it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from courier.config import Settings
from courier.core.http import link_base_url
from courier.providers.common import ProviderKind
from courier.providers.storage.base import (
    InvalidKeyError,
    ObjectInfo,
    PresignedUpload,
    Storage,
    StorageError,
    check_key,
    content_disposition,
)
from courier.providers.storage.local import LocalStorage, derive_signing_key

__all__ = [
    "STORAGE",
    "InvalidKeyError",
    "LocalStorage",
    "ObjectInfo",
    "PresignedUpload",
    "Storage",
    "StorageError",
    "check_key",
    "content_disposition",
    "local_root",
    "storage_for",
]


def local_root(settings: Settings) -> Path:
    return (Path(settings.data_dir) / "storage").resolve()


_SIGNING_KEYS: dict[tuple[str, str | None], bytes] = {}


def _signing_key(settings: Settings) -> bytes:
    from courier.core.auth import token_secret

    cache_key = (str(Path(settings.data_dir).resolve()), settings.token_secret)
    if cache_key not in _SIGNING_KEYS:  # token_secret() may read a file: once per process
        _SIGNING_KEYS[cache_key] = derive_signing_key(token_secret(settings))
    return _SIGNING_KEYS[cache_key]


@functools.lru_cache(maxsize=8)
def _s3_client(endpoint_url: str | None, region: str | None, path_style: bool) -> Any:
    # boto3 clients are thread-safe and costly to build: one per configuration, per process.
    # Imported here: a process on local storage never loads boto3.
    from courier.providers.storage.s3 import make_client

    return make_client(endpoint_url=endpoint_url, region=region, path_style=path_style)


def storage_for(settings: Settings, *, base_url: str | None = None) -> Storage:
    """The configured storage. ``base_url``: how the current client reaches Courier."""
    if settings.storage == "s3":
        if not settings.s3_bucket:
            raise ValueError("COURIER_S3_BUCKET is required when COURIER_STORAGE=s3")
        from courier.providers.storage.s3 import S3Storage

        client = _s3_client(settings.s3_endpoint_url, settings.s3_region, settings.s3_path_style)
        return S3Storage(client, settings.s3_bucket, settings.s3_key_prefix)
    public = (
        link_base_url(settings.public_url, settings.allowed_hosts, base_url)
        if base_url is not None
        else settings.public_url or ""
    )
    return LocalStorage(local_root(settings), _signing_key(settings), public)


# The storage kind in the registry (``COURIER_STORAGE=local|s3``). Request handlers keep using
# :func:`storage_for`, which also takes the caller's base URL for local links.
STORAGE: ProviderKind[Storage] = ProviderKind("storage", setting="storage")


@STORAGE.adapter("local")
def _local(settings: Settings) -> Storage:
    return storage_for(settings)


@STORAGE.adapter("s3")
def _s3(settings: Settings) -> Storage:
    return storage_for(settings)
