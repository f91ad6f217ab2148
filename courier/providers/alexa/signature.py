"""Amazon's rules for a genuine Alexa skill request (the "Verify the request" steps of
Amazon's Alexa Skills Kit documentation), with the ``cryptography`` library:

1. ``SignatureCertChainUrl``: scheme ``https``, host ``s3.amazonaws.com`` (any case), port 443
   when one is given, and a path that, normalised, starts with ``/echo.api/``.
2. The certificate chain it names (PEM, leaf first), fetched once per URL and cached, is valid
   now, chains to a trusted root, and the leaf's subject alternative names include
   ``echo-api.amazon.com``.
3. ``Signature-256``: base64 of the RSA-SHA256 (PKCS#1 v1.5) signature of the raw body,
   verified with the leaf's public key.
4. The request's ``timestamp`` is within 150 seconds of now.

The certificate fetcher is injectable (tests and closed networks serve a local chain); the
trusted roots are ``COURIER_ALEXA_TRUSTED_ROOTS`` (a PEM bundle), else certifi's bundle.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import posixpath
import warnings
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import certifi
import httpx
import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from courier.core.time import parse_timestamp, utcnow
from courier.providers.alexa.base import CERT_URL_HEADER as CERT_URL_HEADER
from courier.providers.alexa.base import SIGNATURE_HEADER as SIGNATURE_HEADER
from courier.providers.alexa.base import (
    TIMESTAMP_TOLERANCE_SECONDS,
    SkillRequestRejected,
)
from courier.providers.common import RawRequest

CERT_HOST = "s3.amazonaws.com"
CERT_PATH_PREFIX = "/echo.api/"
ECHO_API_NAME = "echo-api.amazon.com"
MAX_CHAIN_BYTES = 64 * 1024

CertificateFetcher = Callable[[str], Awaitable[bytes]]


def check_certificate_url(url: str) -> str:
    """``url`` if Amazon's rules allow it, else ``SkillRequestRejected("bad-certificate-url")``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _bad_url(url) from error
    path = posixpath.normpath(unquote(parts.path)) if parts.path else ""
    if (
        parts.scheme.lower() != "https"
        or (parts.hostname or "").lower() != CERT_HOST
        or port not in (None, 443)
        or not (path + "/").startswith(CERT_PATH_PREFIX)
        or parts.username is not None
    ):
        raise _bad_url(url)
    return url


def _bad_url(url: str) -> SkillRequestRejected:
    return SkillRequestRejected(
        f"SignatureCertChainUrl {url[:200]!r} is not an https URL under "
        f"https://{CERT_HOST}{CERT_PATH_PREFIX}",
        code="bad-certificate-url",
    )


async def fetch_over_https(url: str) -> bytes:
    """Amazon's certificate chain, fetched from the (already checked) URL."""
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content[:MAX_CHAIN_BYTES]


def load_trusted_roots(path: str | None) -> list[x509.Certificate]:
    """The roots a chain must end in: the PEM bundle at ``path``, else certifi's."""
    data = Path(path or certifi.where()).read_bytes()
    with warnings.catch_warnings():  # certifi carries old roots with non-positive serials
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_pem_x509_certificates(data)


class SkillRequestVerifier:
    """Verifies skill requests by Amazon's rules; chains are fetched once per URL (and only
    kept once verified)."""

    def __init__(
        self,
        *,
        trusted_roots: list[x509.Certificate],
        fetch: CertificateFetcher = fetch_over_https,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.fetch = fetch
        self._store = Store(trusted_roots)
        self._clock = clock
        self._chains: dict[str, list[x509.Certificate]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.fetches = 0  # how many chains were fetched (the cache's effect, for operators)

    def trust(self, roots: list[x509.Certificate]) -> None:
        """Replace the trusted roots (and forget every chain verified under the old ones)."""
        self._store = Store(roots)
        self._chains.clear()

    async def _chain(self, url: str) -> list[x509.Certificate]:
        held = self._chains.get(url)
        if held is not None:
            return held
        loop = id(asyncio.get_running_loop())
        async with self._locks.setdefault(loop, asyncio.Lock()):
            held = self._chains.get(url)
            if held is not None:
                return held
            try:
                self.fetches += 1
                pem = await self.fetch(url)
                chain = x509.load_pem_x509_certificates(pem)
            except Exception as error:
                raise SkillRequestRejected(
                    "the signing certificate chain could not be fetched or read",
                    code="bad-certificate",
                ) from error
            self._chains[url] = chain
            return chain

    def _check_chain(self, chain: list[x509.Certificate]) -> x509.Certificate:
        leaf, intermediates = chain[0], chain[1:]
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(self._clock())
            .build_server_verifier(DNSName(ECHO_API_NAME))
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as error:
            raise SkillRequestRejected(
                f"the signing certificate is not valid for {ECHO_API_NAME} under a trusted "
                f"root: {error}",
                code="bad-certificate",
            ) from error
        return leaf

    async def verify(self, request: RawRequest) -> Mapping[str, Any]:
        """The request's JSON envelope if it is a genuine, fresh Alexa request."""
        url = request.header(CERT_URL_HEADER)
        signature = request.header(SIGNATURE_HEADER)
        if not url or not signature:
            raise SkillRequestRejected(
                "SignatureCertChainUrl and Signature-256 headers are required",
                code="bad-signature",
            )
        check_certificate_url(url.strip())
        chain = await self._chain(url.strip())
        if not chain:
            raise SkillRequestRejected("empty certificate chain", code="bad-certificate")
        leaf = self._check_chain(chain)  # every time: a cached chain may have expired since
        key = leaf.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SkillRequestRejected("the signing key is not RSA", code="bad-certificate")
        try:
            raw_signature = base64.b64decode(signature.strip(), validate=True)
            key.verify(raw_signature, request.body, padding.PKCS1v15(), hashes.SHA256())
        except (binascii.Error, ValueError, InvalidSignature) as error:
            raise SkillRequestRejected(
                "Signature-256 does not match the request body", code="bad-signature"
            ) from error
        return parse_envelope(request.body, self._clock())


def parse_envelope(body: bytes, now: datetime) -> Mapping[str, Any]:
    """The request envelope, refused when malformed or more than 150 seconds away."""
    try:
        envelope = orjson.loads(body)
        stamp = parse_timestamp(envelope["request"]["timestamp"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise SkillRequestRejected("not an Alexa request envelope", code="malformed") from error
    if not isinstance(envelope, dict) or not isinstance(envelope.get("request"), dict):
        raise SkillRequestRejected("not an Alexa request envelope", code="malformed")
    if abs((now - stamp).total_seconds()) > TIMESTAMP_TOLERANCE_SECONDS:
        raise SkillRequestRejected(
            "the request's timestamp is more than 150 seconds away", code="stale-timestamp"
        )
    return envelope
