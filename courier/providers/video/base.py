"""Video rooms: what Courier asks of any video engine (Twilio Video, Janus, sandbox).

A visit has one room, created under a unique name of Courier's (the visit's id), so creating
it twice is harmless: an engine that answers "room exists" (Twilio 53113) returns the existing
room. Participants join with an access token Courier grants for one identity and one room;
the engine reports who connected, disconnected and (un)muted through the generic inbound path
(``verify`` + ``parse``: events of ``type`` ``room-created``, ``room-ended``,
``participant-connected``, ``participant-disconnected``, ``participant-audio``).

Rooms have their own lifecycle (:class:`RoomStatus`), not the delivery state machine: only
the invitations to a visit are deliveries.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from courier.providers.common import InboundEvent, RawRequest

MAX_UNIQUE_NAME = 128
MAX_IDENTITY = 128


class RoomStatus(enum.StrEnum):
    CREATED = "created"  # nobody has joined yet
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"  # ended; nobody can join any more
    FAILED = "failed"


@dataclass(frozen=True)
class Room:
    vendor_id: str
    unique_name: str
    status: RoomStatus
    max_participants: int | None = None
    record: bool = False
    created_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Participant:
    vendor_id: str
    identity: str
    connected: bool
    audio_muted: bool = False
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None


@dataclass(frozen=True)
class Grant:
    """An access token for ``identity`` to join the room ``unique_name`` until
    ``expires_at``; ``token`` is what the client app passes to the engine's SDK."""

    token: str
    identity: str
    unique_name: str
    expires_at: datetime
    extra: dict[str, str] = field(default_factory=dict)  # e.g. Janus' room id and pin


@runtime_checkable
class VideoProvider(Protocol):
    """A video engine. Calls to it happen in jobs, except ``grant`` where the engine mints
    tokens locally (Twilio: a JWT signed with the API key secret), which a request may do."""

    name: str

    async def create_room(
        self,
        unique_name: str,
        *,
        max_participants: int | None = None,
        record: bool = False,
        status_callback_url: str | None = None,
    ) -> Room:
        """Create the room, or return the one already created under ``unique_name`` (not
        yet ended). ``status_callback_url`` receives its room and participant events."""
        ...

    async def fetch_room(self, vendor_id: str) -> Room | None: ...

    async def end_room(self, vendor_id: str) -> Room:
        """End the room (disconnecting everybody); ending an ended room returns it."""
        ...

    async def grant(self, room: Room, identity: str, *, ttl: timedelta) -> Grant:
        """A token with which ``identity`` may join ``room`` for ``ttl``."""
        ...

    async def participants(self, vendor_id: str) -> list[Participant]:
        """Everybody who has been in the room, connected or not."""
        ...

    async def set_audio(self, vendor_id: str, identity: str, *, muted: bool) -> None:
        """Mute or unmute a participant's microphone (the engine applies it and reports a
        ``participant-audio`` event)."""
        ...

    def verify(self, request: RawRequest) -> bool: ...

    def parse(self, request: RawRequest) -> list[InboundEvent]: ...


# --- compositions (recordings of a room): an optional capability ----------------------------


class CompositionStatus(enum.StrEnum):
    ENQUEUED = "enqueued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class Composition:
    """One media file an engine composes from a recorded room's tracks."""

    vendor_id: str
    room_vendor_id: str
    status: CompositionStatus
    progress: int = 0  # percent, 0..100
    size: int | None = None  # bytes, once completed
    duration: int | None = None  # seconds, once completed
    content_type: str | None = None  # e.g. video/mp4, once completed
    error: str | None = None


@runtime_checkable
class VideoCompositions(Protocol):
    """An engine that composes recorded rooms into one media file (Twilio Compositions; the
    sandbox). Separate from :class:`VideoProvider` so that engines without recordings (Janus
    without its recorder) still are video providers: Courier checks
    ``isinstance(adapter, VideoCompositions)`` before asking. Called from jobs only."""

    async def create_composition(self, room_vendor_id: str) -> Composition:
        """Start composing the (ended, recorded) room; returns at once (enqueued/processing)."""
        ...

    async def fetch_composition(self, vendor_id: str) -> Composition | None:
        """Its progress; None when the engine knows no such composition."""
        ...

    async def composition_media(self, vendor_id: str) -> bytes:
        """The completed composition's media file."""
        ...
