"""Password hashing for personal console logins: scrypt from the standard library.

Stored as ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64 without padding), so the cost can be
raised later and old hashes still verify. n=2^15, r=8, p=1 take 32 MiB and tens of
milliseconds per attempt: cheap for a person signing in, expensive for a guesser.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 2**15, 8, 1
MAXMEM = 64 * 1024 * 1024
LENGTH = 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=N, r=R, p=P, maxmem=MAXMEM, dklen=LENGTH
    )
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def decoy() -> str:
    """Verified against when the user name is unknown, so that an unknown name takes as long
    to refuse as a wrong password (no user-name probing by timing)."""
    return hash_password(secrets.token_urlsafe(16))
