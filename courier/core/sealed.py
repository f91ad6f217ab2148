"""Secrets Courier must use later but never show again (provider credentials): sealed with
Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the installation's token secret."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from courier.config import Settings
from courier.core.auth import token_secret

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


def _fernet(settings: Settings) -> Fernet:
    # Imported here: a process that never seals or unseals does not load cryptography (~7 MB).
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(b"courier-sealed:" + token_secret(settings).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(settings: Settings, plain: str) -> str:
    return _fernet(settings).encrypt(plain.encode()).decode("ascii")


def unseal(settings: Settings, sealed: str) -> str:
    """The plain text; ValueError when the token secret changed since it was sealed."""
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(settings).decrypt(sealed.encode("ascii")).decode()
    except InvalidToken as exc:
        raise ValueError("sealed with another token secret") from exc
