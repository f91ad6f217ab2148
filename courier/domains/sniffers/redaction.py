"""What a sniffer keeps of a request: bodies and query strings without secrets, truncated.

Values of JSON fields whose name says secret, token, password, authorization, API key or
credential are replaced; the query parameters so named too. Whatever survives as text (a body
too large to parse, or not JSON) is scrubbed of anything that looks like a Courier API key
secret, a JSON web token or a ``Bearer``/``Basic`` credential, and of such JSON pairs. Headers
are not kept at all, except the user agent and the content types.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

REDACTED = "[REDACTED]"
STORED_BYTES = 8 * 1024
TRUNCATED = "…[truncated]"

SECRET_NAME = re.compile(
    r"secret|token|passw|authori[sz]ation|api[-_]?key|credential|private[-_]?key|signature",
    re.IGNORECASE,
)
_SECRET_PAIR = re.compile(
    r'("(?:[^"\\]|\\.)*(?:secret|token|passw|authori[sz]ation|api[-_]?key|credential|'
    r'private[-_]?key|signature)(?:[^"\\]|\\.)*"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)',
    re.IGNORECASE,
)
_SECRET_VALUES = (
    re.compile(r"\bck_[A-Za-z0-9_\-]{8,}"),  # Courier API key secrets
    re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),  # JWTs
    re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE),
    # PEM private keys under any name (an APNs credential's ``key``); cut short: to the end
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----|.*)", re.DOTALL
    ),
)


def redact_json(value: Any) -> Any:
    """``value`` with the values of secret-named fields replaced, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if SECRET_NAME.search(str(key)) else redact_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """Scrub secret-looking values and secret-named JSON pairs from free text."""
    text = _SECRET_PAIR.sub(lambda m: f'{m.group(1)}"{REDACTED}"', text)
    for pattern in _SECRET_VALUES:
        text = pattern.sub(REDACTED, text)
    return text


def truncate(text: str, limit: int = STORED_BYTES) -> str:
    """At most ``limit`` bytes of UTF-8, cut on a character boundary, marked when cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    room = limit - len(TRUNCATED.encode("utf-8"))
    return encoded[:room].decode("utf-8", errors="ignore") + TRUNCATED


def redact_body(raw: bytes, *, complete: bool) -> str:
    """A request or response body as kept: JSON parsed and redacted field by field when the
    whole body was captured, otherwise scrubbed as text; then truncated."""
    if not raw:
        return ""
    text = raw.decode("utf-8", errors="replace")
    if complete:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
        else:
            text = orjson.dumps(redact_json(parsed)).decode("utf-8")
            return truncate(text)
    return truncate(redact_text(text))


def redact_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, REDACTED if SECRET_NAME.search(k) else redact_text(v)) for k, v in pairs]
    return truncate(urlencode(kept, safe="[]"))
