"""The video sandbox: rooms with a lifecycle (created → in-progress → completed), access
tokens of its own (HS256 JWTs signed with the sandbox key: anyone holding that key can verify
them), and participants that a test or a person joins, drops and mutes through the control
surface. Each change is reported to the room's status callback as Twilio Video reports it
(form-encoded ``StatusCallbackEvent``, ``RoomSid``, ``ParticipantIdentity``, ``SequenceNumber``
...), signed with the sandbox key.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field

from courier.config import Settings
from courier.core.time import parse_timestamp, utcnow
from courier.providers.common import (
    InboundEvent,
    Permanent,
    RawRequest,
    SandboxContext,
    check_sandbox_token,
    sandbox_signing_key,
    sandbox_token,
    verify_sandbox_signature,
)
from courier.providers.sandbox_faults import CONTROL_PARAMS, raise_armed_fault, refused
from courier.providers.sandbox_store import SandboxAdapter, SandboxStore
from courier.providers.video.base import (
    MAX_IDENTITY,
    MAX_UNIQUE_NAME,
    Composition,
    CompositionStatus,
    Grant,
    Participant,
    Room,
    RoomStatus,
)
from courier.providers.video.wire import parse_room_callback

TOKEN_ISSUER = "courier-sandbox-video"
# Compositions: how long the sandbox "processes" one, and the bounds of what it makes (a real
# MPEG-4 video, small: 160x120 at 10 frames a second, as long as the room was in progress).
COMPOSE_SECONDS = 1.0
MIN_MEDIA_SECONDS = 1
MAX_MEDIA_SECONDS = 10
MEDIA_TYPE = "video/mp4"
MAX_TOKEN_TTL = timedelta(hours=24)


class TokenRejected(Permanent):
    """An access token the sandbox engine does not accept (forged, expired, other room)."""


class SandboxVideo(SandboxAdapter):
    name = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = SandboxStore(settings, "video")

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
        if max_participants is not None and not 1 <= max_participants <= 50:
            raise Permanent("53107", "max participants is 1 to 50")
        await raise_armed_fault(self.store, unique_name)
        existing = await self._room_named(unique_name)
        if existing is not None:  # Twilio 53113 "room exists": the same room, not a new one
            return _room(existing)
        sid = f"RM{uuid.uuid4().hex}"
        room = {
            "sid": sid,
            "unique-name": unique_name,
            "status": RoomStatus.CREATED.value,
            "max-participants": max_participants,
            "record": record,
            "status-callback-url": status_callback_url,
            "created-at": utcnow().isoformat(),
            "ended-at": None,
            "sequence": 0,
        }
        await self.store.put("rooms", sid, room)
        await self._report(sid, "room-created", {})
        return _room(room)

    async def fetch_room(self, vendor_id: str) -> Room | None:
        found = await self.store.get("rooms", vendor_id)
        return _room(found) if found else None

    async def end_room(self, vendor_id: str) -> Room:
        room = await self._room(vendor_id)
        if room["status"] == RoomStatus.COMPLETED.value:
            return _room(room)
        for held in await self._participants(vendor_id):
            if held["connected"]:
                await self._disconnect(vendor_id, held)
        await self.store.merge(
            "rooms",
            vendor_id,
            {"status": RoomStatus.COMPLETED.value, "ended-at": utcnow().isoformat()},
        )
        await self._report(vendor_id, "room-ended", {})
        return _room(await self._room(vendor_id))

    async def grant(self, room: Room, identity: str, *, ttl: timedelta) -> Grant:
        if not identity or len(identity) > MAX_IDENTITY:
            raise Permanent("53300", f"an identity is 1 to {MAX_IDENTITY} characters")
        if not timedelta(seconds=1) <= ttl <= MAX_TOKEN_TTL:
            raise Permanent("53300", "a token lives 1 second to 24 hours")
        token, expires = sandbox_token(
            self.settings,
            issuer=TOKEN_ISSUER,
            subject=identity,
            ttl=ttl,
            room=room.unique_name,
            room_sid=room.vendor_id,
        )
        return Grant(
            token=token, identity=identity, unique_name=room.unique_name, expires_at=expires
        )

    def check_token(self, token: str) -> dict[str, Any]:
        """The claims of a token this engine issued and that is still valid."""
        return check_sandbox_token(
            self.settings, token, issuer=TOKEN_ISSUER, rejected=TokenRejected
        )

    async def participants(self, vendor_id: str) -> list[Participant]:
        await self._room(vendor_id)
        return [_participant(p) for p in await self._participants(vendor_id)]

    async def set_audio(self, vendor_id: str, identity: str, *, muted: bool) -> None:
        await self._room(vendor_id)
        held = await self.store.get("participants", f"{vendor_id}/{identity}")
        if held is None or not held["connected"]:
            raise Permanent("53204", f"{identity!r} is not connected to the room")
        if held["audio-muted"] != muted:
            await self._set_muted(vendor_id, held, muted)

    # --- the outside world: a client joins, leaves, mutes itself ------------------------------

    async def join(self, token: str) -> Participant:
        claims = self.check_token(token)
        room = await self._room(str(claims["room_sid"]))
        if room["status"] == RoomStatus.COMPLETED.value:
            raise TokenRejected("53118", "the room has ended")
        connected = [p for p in await self._participants(room["sid"]) if p["connected"]]
        identity = str(claims["sub"])
        if any(p["identity"] == identity for p in connected):
            return _participant(next(p for p in connected if p["identity"] == identity))
        if room["max-participants"] and len(connected) >= room["max-participants"]:
            raise Permanent("53105", "the room is full")
        key = f"{room['sid']}/{identity}"
        participant = {
            "sid": f"PA{uuid.uuid4().hex}",
            "room-sid": room["sid"],
            "identity": identity,
            "connected": True,
            "audio-muted": False,
            "connected-at": utcnow().isoformat(),
            "disconnected-at": None,
        }
        if await self.store.get("participants", key) is None:
            await self.store.put("participants", key, participant)
        else:
            await self.store.merge("participants", key, participant)
        if room["status"] == RoomStatus.CREATED.value:
            await self.store.merge("rooms", room["sid"], {"status": RoomStatus.IN_PROGRESS.value})
        await self._report(room["sid"], "participant-connected", _participant_params(participant))
        return _participant(participant)

    async def leave(self, room_ref: str, identity: str) -> Participant:
        room = await self._room_by_ref(room_ref)
        held = await self.store.get("participants", f"{room['sid']}/{identity}")
        if held is None:
            raise Permanent("53204", f"{identity!r} never joined the room")
        if held["connected"]:
            held = await self._disconnect(room["sid"], held)
        return _participant(held)

    async def mute_self(self, room_ref: str, identity: str, muted: bool) -> Participant:
        room = await self._room_by_ref(room_ref)
        await self.set_audio(room["sid"], identity, muted=muted)
        held = await self.store.get("participants", f"{room['sid']}/{identity}")
        assert held is not None
        return _participant(held)

    # --- compositions (VideoCompositions) -----------------------------------------------------

    async def create_composition(self, room_vendor_id: str) -> Composition:
        room = await self._room(room_vendor_id)
        if not room["record"]:
            raise Permanent("53120", "the room was not recorded")
        if room["status"] != RoomStatus.COMPLETED.value:
            raise Permanent("53121", "the room has not ended yet")
        for held in await self.store.all("compositions"):
            if held["room-sid"] == room_vendor_id:  # one composition per room: the same one
                return _composition(held, self._progress(held))
        began = [
            parse_timestamp(p["connected-at"])
            for p in await self._participants(room_vendor_id)
            if p["connected-at"]
        ]
        ended = _when(room["ended-at"]) or utcnow()
        seconds = int((ended - min(began)).total_seconds()) if began else 0
        composition: dict[str, Any] = {
            "sid": f"CJ{uuid.uuid4().hex}",
            "room-sid": room_vendor_id,
            "created-at": utcnow().isoformat(),
            "seconds": max(MIN_MEDIA_SECONDS, min(MAX_MEDIA_SECONDS, seconds)),
            "size": None,
        }
        await self.store.put("compositions", composition["sid"], composition)
        return _composition(composition, 0)

    async def fetch_composition(self, vendor_id: str) -> Composition | None:
        held = await self.store.get("compositions", vendor_id)
        if held is None:
            return None
        progress = self._progress(held)
        if progress >= 100 and held["size"] is None:
            media = await self.composition_media(vendor_id)
            held = {**held, "size": len(media)}
            await self.store.merge("compositions", vendor_id, {"size": len(media)})
        return _composition(held, progress)

    async def composition_media(self, vendor_id: str) -> bytes:
        held = await self.store.get("compositions", vendor_id)
        if held is None:
            raise Permanent("20404", f"no composition {vendor_id}")
        if self._progress(held) < 100:
            raise Permanent("53122", "the composition is still processing")
        return await asyncio.to_thread(render_media, int(held["seconds"]), str(held["room-sid"]))

    @staticmethod
    def _progress(held: dict[str, Any]) -> int:
        elapsed = (utcnow() - parse_timestamp(held["created-at"])).total_seconds()
        return max(0, min(100, int(elapsed * 100 / COMPOSE_SECONDS)))

    # --- webhooks --------------------------------------------------------------------------

    def verify(self, request: RawRequest) -> bool:
        return verify_sandbox_signature(sandbox_signing_key(self.settings), request)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        return parse_room_callback(request)

    # --- inside ----------------------------------------------------------------------------

    async def _room(self, sid: str) -> dict[str, Any]:
        found = await self.store.get("rooms", sid)
        if found is None:
            raise Permanent("20404", f"no room {sid}")
        return found

    async def _room_named(self, unique_name: str) -> dict[str, Any] | None:
        for room in reversed(await self.store.all("rooms")):
            if room["unique-name"] == unique_name and room["status"] != "completed":
                found: dict[str, Any] = room
                return found
        return None

    async def _room_by_ref(self, ref: str) -> dict[str, Any]:
        found = await self.store.get("rooms", ref) or await self._room_named(ref)
        if found is None:
            raise Permanent("20404", f"no open room {ref}")
        return found

    async def _participants(self, room_sid: str) -> list[dict[str, Any]]:
        return [p for p in await self.store.all("participants") if p["room-sid"] == room_sid]

    async def _disconnect(self, room_sid: str, held: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        changes = {"connected": False, "disconnected-at": now.isoformat()}
        await self.store.merge("participants", f"{room_sid}/{held['identity']}", changes)
        updated = {**held, **changes}
        duration = int((now - parse_timestamp(held["connected-at"])).total_seconds())
        await self._report(
            room_sid,
            "participant-disconnected",
            {**_participant_params(updated), "ParticipantDuration": str(duration)},
        )
        return updated

    async def _set_muted(self, room_sid: str, held: dict[str, Any], muted: bool) -> None:
        await self.store.merge(
            "participants", f"{room_sid}/{held['identity']}", {"audio-muted": muted}
        )
        await self._report(
            room_sid,
            "track-disabled" if muted else "track-enabled",
            {**_participant_params({**held, "audio-muted": muted}), "TrackKind": "audio"},
        )

    async def _report(self, room_sid: str, event: str, extra: dict[str, str]) -> None:
        """Post one Twilio-shaped room event to the room's status callback, if it has one."""
        room = await self._room(room_sid)
        sequence = int(room["sequence"]) + 1
        await self.store.merge("rooms", room_sid, {"sequence": sequence})
        url = room["status-callback-url"]
        if not url:
            return
        params = {
            "StatusCallbackEvent": event,
            "RoomSid": room_sid,
            "RoomName": room["unique-name"],
            "RoomStatus": (await self._room(room_sid))["status"],
            "SequenceNumber": str(sequence),
            "Timestamp": utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **extra,
        }
        await self.store.post(url, urlencode(params).encode(), "application/x-www-form-urlencoded")


def _room(data: dict[str, Any]) -> Room:
    return Room(
        vendor_id=data["sid"],
        unique_name=data["unique-name"],
        status=RoomStatus(data["status"]),
        max_participants=data["max-participants"],
        record=bool(data["record"]),
        created_at=_when(data["created-at"]),
        ended_at=_when(data["ended-at"]),
    )


def _composition(data: dict[str, Any], progress: int) -> Composition:
    done = progress >= 100 and data["size"] is not None
    return Composition(
        vendor_id=data["sid"],
        room_vendor_id=data["room-sid"],
        status=CompositionStatus.COMPLETED
        if done
        else (CompositionStatus.PROCESSING if progress > 0 else CompositionStatus.ENQUEUED),
        progress=100 if done else min(progress, 99),
        size=data["size"] if done else None,
        duration=int(data["seconds"]) if done else None,
        content_type=MEDIA_TYPE if done else None,
    )


def render_media(seconds: int, seed: str) -> bytes:
    """A real, small MPEG-4 video of ``seconds`` (a coloured frame with a moving bar), made
    with PyAV (FFmpeg): what a player or ``av.open`` decodes."""
    import av  # FFmpeg's libraries (and numpy): loaded when the sandbox composes, not at import
    import numpy as np

    width, height, rate = 160, 120, 10
    shade = int(seed.encode().hex()[-2:] or "0", 16) if seed else 0
    output = io.BytesIO()
    with av.open(output, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(seconds * rate):
            image = np.zeros((height, width, 3), dtype=np.uint8)
            image[:, :, 2] = shade
            left = (index * 4) % (width - 12)
            image[:, left : left + 12, 1] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return output.getvalue()


def _participant(data: dict[str, Any]) -> Participant:
    return Participant(
        vendor_id=data["sid"],
        identity=data["identity"],
        connected=bool(data["connected"]),
        audio_muted=bool(data["audio-muted"]),
        connected_at=_when(data["connected-at"]),
        disconnected_at=_when(data["disconnected-at"]),
    )


def _participant_params(data: dict[str, Any]) -> dict[str, str]:
    return {
        "ParticipantSid": data["sid"],
        "ParticipantIdentity": data["identity"],
        "ParticipantStatus": "connected" if data["connected"] else "disconnected",
        "ParticipantAudioMuted": "true" if data["audio-muted"] else "false",
    }


def _when(text: str | None) -> datetime | None:
    return parse_timestamp(text) if text else None


# --- controls (served as /sandbox/video/..., `courier sandbox video ...`) ----------------------


class JoinParams(BaseModel):
    model_config = CONTROL_PARAMS
    token: str = Field(min_length=1, max_length=4096, description="An access token (grant).")


class ParticipantParams(BaseModel):
    model_config = CONTROL_PARAMS
    room: str = Field(min_length=1, max_length=128, description="The room's sid or unique name.")
    identity: str = Field(min_length=1, max_length=MAX_IDENTITY)


class AudioParams(ParticipantParams):
    muted: bool = Field(description="true: the participant mutes their microphone.")


class RoomParams(BaseModel):
    model_config = CONTROL_PARAMS
    room: str = Field(min_length=1, max_length=128, description="The room's sid or unique name.")


def _participant_json(participant: Participant) -> dict[str, Any]:
    return {
        "sid": participant.vendor_id,
        "identity": participant.identity,
        "connected": participant.connected,
        "audio-muted": participant.audio_muted,
    }


async def join_room(ctx: SandboxContext, params: JoinParams) -> dict[str, Any]:
    """A client joins with an access token, as the app would (the token is verified)."""
    adapter: SandboxVideo = ctx.adapter
    return _participant_json(await refused(adapter.join(params.token)))


async def leave_room(ctx: SandboxContext, params: ParticipantParams) -> dict[str, Any]:
    adapter: SandboxVideo = ctx.adapter
    return _participant_json(await refused(adapter.leave(params.room, params.identity)))


async def participant_audio(ctx: SandboxContext, params: AudioParams) -> dict[str, Any]:
    adapter: SandboxVideo = ctx.adapter
    return _participant_json(
        await refused(adapter.mute_self(params.room, params.identity, params.muted))
    )


async def show_room(ctx: SandboxContext, params: RoomParams) -> dict[str, Any]:
    """The room's state and everybody who has been in it."""
    adapter: SandboxVideo = ctx.adapter
    room = await refused(adapter._room_by_ref(params.room))
    return {
        "sid": room["sid"],
        "unique-name": room["unique-name"],
        "status": room["status"],
        "participants": [_participant_json(p) for p in await adapter.participants(room["sid"])],
    }
