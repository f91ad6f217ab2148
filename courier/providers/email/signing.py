"""The signature of bounce reports posted to ``/providers/email/bounce``.

Whatever forwards DSNs to Courier (a mail server's pipe, a relay's webhook adapter) signs the
raw body with ``COURIER_EMAIL_INBOUND_SECRET``: header ``X-Courier-Signature: v1=<hex
HMAC-SHA256 of the public URL, a newline and the body>``, the sandboxes' scheme.
"""

from __future__ import annotations

import hmac

from courier.config import Settings
from courier.providers.common import RawRequest, sandbox_signature

SIGNATURE_HEADER = "X-Courier-Signature"


def report_signature(settings: Settings, url: str, body: bytes) -> str:
    """The header value a report posted to ``url`` must carry."""
    if not settings.email_inbound_secret:
        raise ValueError("COURIER_EMAIL_INBOUND_SECRET is not set")
    return sandbox_signature(settings.email_inbound_secret.encode(), url, body)


def verify_report_signature(settings: Settings, request: RawRequest) -> bool:
    if not settings.email_inbound_secret:
        return False
    given = request.header(SIGNATURE_HEADER) or ""
    expected = report_signature(settings, request.url, request.body)
    return hmac.compare_digest(given, expected)
