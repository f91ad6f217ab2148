"""HTTP clients for Courier's own outbound calls (webhooks, status callbacks, the sandboxes'
signed callbacks, a self-hosted engine's API).

Building a client's TLS settings loads the whole certificate bundle (tens of milliseconds of
CPU); a process that sends many short exchanges builds that once and shares it. An
``ssl.SSLContext`` may serve any number of connections at once, in any event loop.
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx


@functools.cache
def public_roots() -> ssl.SSLContext:
    """The public certificate authorities (certifi's bundle, as httpx trusts by default)."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def client(**options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` (use it in ``async with``) that trusts :func:`public_roots`
    unless ``verify`` says otherwise; the other options are httpx's."""
    import httpx  # imported on first use: a serving process that sends nothing never loads it

    options.setdefault("verify", public_roots())
    return httpx.AsyncClient(**options)


__all__ = ["client", "public_roots"]
