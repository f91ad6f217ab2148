"""Appless join links: a participant of an ``appless`` visit joins from a browser, with no
app and no account, through a link Courier signs for them alone.

``GET /video/join/<visit>/<individual>?expires=<unix seconds>&sig=<hex>`` answers the same
credentials as ``get-credentials`` (participants only, within the join window). ``sig`` is an
HMAC-SHA256, with a key derived from the installation's token secret, of the visit, the
individual and the expiry: a link cannot be turned into another person's or another visit's,
nor outlive its expiry (the end of the join window; a week for a visit without one).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from courier.config import Settings
from courier.core.auth import token_secret
from courier.domains.video.service import join_window
from courier.models.video import VideoChannel
from courier.providers.common import public_base

JOIN_PREFIX = "/video/join"
OPEN_ENDED = timedelta(days=7)


def _key(settings: Settings) -> bytes:
    return hmac.new(token_secret(settings).encode(), b"courier-video-join", hashlib.sha256).digest()


def signature(
    settings: Settings, visit_id: uuid.UUID, individual_id: uuid.UUID, expires: int
) -> str:
    message = f"{visit_id}:{individual_id}:{expires}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def link_expiry(visit: VideoChannel) -> datetime:
    _opens, closes = join_window(visit)
    return closes if closes is not None else visit.created_at + OPEN_ENDED


def join_link(settings: Settings, visit: VideoChannel, individual_id: uuid.UUID) -> str:
    expires = int(link_expiry(visit).timestamp())
    query = urlencode(
        {"expires": str(expires), "sig": signature(settings, visit.id, individual_id, expires)}
    )
    return f"{public_base(settings)}{JOIN_PREFIX}/{visit.id}/{individual_id}?{query}"


def valid(
    settings: Settings,
    visit_id: uuid.UUID,
    individual_id: uuid.UUID,
    expires: int,
    given: str,
    now: datetime,
) -> bool:
    if expires < int(now.timestamp()):
        return False
    return hmac.compare_digest(signature(settings, visit_id, individual_id, expires), given)
