"""The console's live stream: ``GET /console/events``, authenticated by the session cookie.

EventSource cannot send an ``Authorization`` header, so the console has its own route over the
``/v1/events/`` machinery (:class:`courier.events.stream.EventStream`): the same reading,
waking, ordering and ``Last-Event-ID`` resumption, for the session's principal (an API key sees
its organization's events). Two things differ:

- the stream re-checks the *session* (not a header) at every read: signing out, the absolute
  lifetime, the inactivity timeout and a revoked key end it within a poll (one indexed
  lookup per read). The stream itself is not activity;
- it sends hints, never payloads: each event becomes ``event: messaging`` (messaging
  resources) or ``event: change`` (anything else) with the resource type as its data, and keeps
  its ``id:`` so that a reconnecting browser resumes without gaps or duplicates. Pages re-fetch
  the fragment a hint concerns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson

from courier.console.sessions import find_session
from courier.events.stream import Cursor, EventStream

MESSAGING_PREFIX = "messaging-"


@dataclass
class ConsoleStream(EventStream):
    cookie: str = ""

    async def _still_authorized(self) -> bool:
        async with self.database.sessionmaker() as session:
            signed = await find_session(session, self.settings, self.cookie, touch=False)
            await session.commit()
        return signed is not None

    async def read(self, cursor: Cursor) -> tuple[list[bytes], bool, bool]:
        """As the API stream reads, and the session is re-checked at every read (every poll
        or wake): signing out, the idle limit and a revoked key end the stream within a
        poll (a second on SQLite), not a minute."""
        messages, more, _keys_changed = await super().read(cursor)
        return messages, more, True

    async def hints(self) -> AsyncIterator[bytes]:
        async for chunk in self.messages():
            yield as_hints(chunk)


def as_hints(chunk: bytes) -> bytes:
    """Replace each event's payload by a hint; comments and ``retry:`` pass unchanged."""
    out: list[bytes] = []
    for block in chunk.split(b"\n\n"):
        if not block:
            continue
        fields: dict[bytes, bytes] = {}
        for line in block.split(b"\n"):
            name, sep, value = line.partition(b": ")
            if sep and name in (b"id", b"event", b"data"):
                fields[name] = value
        if b"id" not in fields or b"data" not in fields:
            out.append(block + b"\n\n")
            continue
        try:
            resource_type = str(orjson.loads(fields[b"data"]).get("resource-type") or "")
        except (orjson.JSONDecodeError, AttributeError):
            resource_type = ""
        kind = b"messaging" if resource_type.startswith(MESSAGING_PREFIX) else b"change"
        safe = "".join(c for c in resource_type if c.isalnum() or c in "-_").encode()
        out.append(b"id: %s\nevent: %s\ndata: %s\n\n" % (fields[b"id"], kind, safe or b"-"))
    return b"".join(out)
