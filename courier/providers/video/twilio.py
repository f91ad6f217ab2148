"""The ``twilio`` video adapter: Twilio Video rooms through the official ``twilio`` library's
REST client (over the sms adapter's httpx transport, so ``COURIER_TWILIO_API_BASE_URL`` reaches
a local twin in tests), access tokens with ``AccessToken`` + ``VideoGrant``.

Settings: ``COURIER_TWILIO_ACCOUNT_SID`` / ``COURIER_TWILIO_AUTH_TOKEN`` (REST calls, webhook
signatures; shared with sms) and ``COURIER_TWILIO_API_KEY_SID`` / ``_SECRET`` (an API key:
the access tokens are HS256 JWTs signed with its secret, so that secret verifies them).

Rooms are ``group`` rooms created under the visit's unique name; Twilio answers 53113 when a
room of that name is in progress, and the adapter then returns that room. Ending a room is
``Status=completed``. Room and participant status callbacks are Twilio's form-encoded room
events, verified with ``X-Twilio-Signature`` and parsed into the same events the sandbox
reports (``track-enabled``/``track-disabled`` of an *audio* track: ``participant-audio``).

Muting: Twilio's REST API cannot disable a track a client publishes (only the client can).
``set_audio`` uses what Twilio allows, the Track Subscriptions API: every *other* connected
participant's subscribe rules exclude (or stop excluding) the participant's audio, so nobody
hears them. Twilio reports no event for that (``participant-audio`` comes only when the client
itself disables its microphone), participants who connect afterwards are not covered until
``set_audio`` runs again, and ``participants()`` reports ``audio_muted`` when the participant's
audio is disabled by its client or excluded by Courier's rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from twilio.jwt.access_token import AccessToken  # type: ignore[import-untyped]
from twilio.jwt.access_token.grants import VideoGrant  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from courier.config import Settings
from courier.providers.common import InboundEvent, Permanent, RawRequest
from courier.providers.sms.twilio import HttpxTwilioClient, TwilioSms
from courier.providers.twilio_signature import verify_twilio
from courier.providers.video.base import (
    MAX_IDENTITY,
    MAX_UNIQUE_NAME,
    Grant,
    Participant,
    Room,
    RoomStatus,
)
from courier.providers.video.wire import parse_room_callback

T = TypeVar("T")
MAX_TOKEN_TTL = timedelta(hours=24)
ROOM_EXISTS = "53113"
ROOM_COMPLETED = "53118"

STATUSES = {
    "in-progress": RoomStatus.IN_PROGRESS,
    "completed": RoomStatus.COMPLETED,
    "failed": RoomStatus.FAILED,
}


class TwilioVideo:
    """The twilio adapter of the video kind."""

    name = "twilio"

    def __init__(self, settings: Settings, *, http: HttpxTwilioClient | None = None) -> None:
        self.settings = settings
        # The sms adapter's credentials, transport and error classification, reused.
        self._rest = TwilioSms(settings, http=http)

    def client(self) -> Client:
        return self._rest.client()

    async def _call(self, action: Callable[[], Awaitable[T]], *, written: bool) -> T:
        return await self._rest._call(action, written=written)

    # --- rooms -----------------------------------------------------------------------------

    async def create_room(
        self,
        unique_name: str,
        *,
        max_participants: int | None = None,
        record: bool = False,
        status_callback_url: str | None = None,
    ) -> Room:
        if not unique_name or len(unique_name) > MAX_UNIQUE_NAME:
            raise Permanent("53105", f"a room's unique name is 1 to {MAX_UNIQUE_NAME} characters")
        client = self.client()
        options: dict[str, Any] = {"unique_name": unique_name, "type": "group"}
        if max_participants is not None:
            options["max_participants"] = max_participants
        if record:
            options["record_participants_on_connect"] = True
        if status_callback_url:
            options.update(status_callback=status_callback_url, status_callback_method="POST")
        try:
            created = await self._call(
                lambda: client.video.v1.rooms.create_async(**options), written=True
            )
        except Permanent as exc:
            if exc.code != ROOM_EXISTS:
                raise
            created = await self._call(
                lambda: client.video.v1.rooms(unique_name).fetch_async(), written=False
            )
        return _room(created)

    async def fetch_room(self, vendor_id: str) -> Room | None:
        client = self.client()
        try:
            found = await self._call(
                lambda: client.video.v1.rooms(vendor_id).fetch_async(), written=False
            )
        except Permanent as exc:
            if exc.code == "20404":
                return None
            raise
        return _room(found)

    async def end_room(self, vendor_id: str) -> Room:
        client = self.client()
        try:
            ended = await self._call(
                lambda: client.video.v1.rooms(vendor_id).update_async(status="completed"),
                written=True,
            )
        except Permanent as exc:
            if exc.code != ROOM_COMPLETED:
                raise
            ended = await self._call(
                lambda: client.video.v1.rooms(vendor_id).fetch_async(), written=False
            )
        return _room(ended)

    async def grant(self, room: Room, identity: str, *, ttl: timedelta) -> Grant:
        """An ``AccessToken`` with a ``VideoGrant`` for the room, signed (HS256) with the API
        key secret: minted locally, no request to Twilio."""
        if not identity or len(identity) > MAX_IDENTITY:
            raise Permanent("53300", f"an identity is 1 to {MAX_IDENTITY} characters")
        if not timedelta(seconds=1) <= ttl <= MAX_TOKEN_TTL:
            raise Permanent("53300", "a token lives 1 second to 24 hours")
        account = self.settings.twilio_account_sid
        key, secret = self.settings.twilio_api_key_sid, self.settings.twilio_api_key_secret
        if not account or not key or not secret:
            raise Permanent(
                "20003",
                "no Twilio API key: set COURIER_TWILIO_ACCOUNT_SID, COURIER_TWILIO_API_KEY_SID "
                "and COURIER_TWILIO_API_KEY_SECRET",
            )
        now = datetime.now(UTC)
        seconds = int(ttl.total_seconds())
        token = AccessToken(
            account, key, secret, identity=identity, ttl=seconds, nbf=int(now.timestamp())
        )
        token.add_grant(VideoGrant(room=room.unique_name))
        return Grant(
            token=str(token.to_jwt()),
            identity=identity,
            unique_name=room.unique_name,
            expires_at=now + timedelta(seconds=seconds),
            extra={"room-sid": room.vendor_id},
        )

    async def participants(self, vendor_id: str) -> list[Participant]:
        client = self.client()
        room = client.video.v1.rooms(vendor_id)
        found: dict[str, Any] = {}
        for status in ("disconnected", "connected"):
            listed = await self._call(
                partial(room.participants.list_async, status=status), written=False
            )
            for item in listed:
                found[str(item.identity)] = item
        connected = [p for p in found.values() if p.status == "connected"]
        excluded = await self._excluded_audio(vendor_id, connected)
        out = []
        for identity, item in sorted(found.items()):
            muted = False
            if item.status == "connected":
                tracks = await self._call(
                    room.participants(item.sid).published_tracks.list_async,
                    written=False,
                )
                audio = [t for t in tracks if t.kind == "audio"]
                muted = str(item.sid) in excluded or (
                    bool(audio) and not any(t.enabled for t in audio)
                )
            out.append(
                Participant(
                    vendor_id=str(item.sid),
                    identity=identity,
                    connected=item.status == "connected",
                    audio_muted=muted,
                    connected_at=item.start_time,
                    disconnected_at=item.end_time,
                )
            )
        return out

    async def set_audio(self, vendor_id: str, identity: str, *, muted: bool) -> None:
        client = self.client()
        room = client.video.v1.rooms(vendor_id)
        connected = await self._call(
            lambda: room.participants.list_async(status="connected"), written=False
        )
        target = next((p for p in connected if p.identity == identity), None)
        if target is None:
            raise Permanent("53204", f"{identity!r} is not connected to the room")
        for other in connected:
            if other.sid == target.sid:
                continue
            rules = await self._rules(vendor_id, str(other.sid))
            kept = [r for r in rules if not _excludes_audio_of(r, str(target.sid))]
            if muted:
                kept.append({"type": "exclude", "publisher": str(target.sid), "kind": "audio"})
            if not kept or all(r.get("type") == "exclude" for r in kept):
                kept.insert(0, {"type": "include", "all": True})
            await self._call(
                partial(room.participants(other.sid).subscribe_rules.update_async, rules=kept),
                written=True,
            )

    async def _rules(self, vendor_id: str, participant_sid: str) -> list[dict[str, Any]]:
        client = self.client()
        fetched = await self._call(
            lambda: (
                client.video.v1.rooms(vendor_id)
                .participants(participant_sid)
                .subscribe_rules.fetch_async()
            ),
            written=False,
        )
        return [dict(r) for r in (fetched.rules or [])]

    async def _excluded_audio(self, vendor_id: str, connected: list[Any]) -> set[str]:
        """The participants whose audio Courier's rules keep from every other one."""
        if len(connected) < 2:
            return set()
        excluded: set[str] | None = None
        for item in connected:
            rules = await self._rules(vendor_id, str(item.sid))
            mine = {
                str(r.get("publisher"))
                for r in rules
                if r.get("type") == "exclude" and r.get("kind") == "audio"
            }
            others = {str(p.sid) for p in connected if p.sid != item.sid}
            mine &= others
            excluded = mine if excluded is None else excluded | mine
        return excluded or set()

    # --- status callbacks -----------------------------------------------------------------

    def verify(self, request: RawRequest) -> bool:
        return verify_twilio(self.settings.twilio_auth_token or "", request)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        return parse_room_callback(request)

    async def close(self) -> None:
        await self._rest.close()


def _excludes_audio_of(rule: dict[str, Any], participant_sid: str) -> bool:
    return (
        rule.get("type") == "exclude"
        and rule.get("publisher") == participant_sid
        and rule.get("kind") == "audio"
    )


def _room(found: Any) -> Room:
    return Room(
        vendor_id=str(found.sid),
        unique_name=str(found.unique_name),
        status=STATUSES.get(str(found.status), RoomStatus.IN_PROGRESS),
        max_participants=found.max_participants,
        record=bool(found.record_participants_on_connect),
        created_at=found.date_created,
        ended_at=found.end_time,
    )
