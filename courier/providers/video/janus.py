"""The ``janus`` video adapter: a self-hosted Janus WebRTC server's VideoRoom plugin, over
Janus' HTTP API (``COURIER_JANUS_URL``, loopback by default).

Every operation opens a short-lived Janus session (``create``, ``attach`` to
``janus.plugin.videoroom``, the plugin requests, ``destroy``): nothing has to be kept alive
between jobs or shared between Courier's processes, and a Janus restart costs nothing but
the rooms it held. All of a room's state lives in Janus:

- A room is created with a random string id (``courier-<epoch ms>-<hex>``; the plugin must
  run with ``string_ids = true``), the visit's unique name as its description, private when
  ``COURIER_JANUS_ADMIN_KEY`` is set, ``publishers`` = max participants, and a room
  ``secret`` and ``pin`` derived (HMAC) from ``COURIER_JANUS_ROOM_KEY``: every Courier
  process can moderate, grant and destroy it.
- ``grant`` adds a per-participant token to the room's ``allowed`` list (Janus refuses a
  ``join`` without one) and returns it with the room id, pin and the participant id the app
  joins with (``<identity>.<mac>``), in :attr:`Grant.extra`. Janus tokens do not expire:
  they die with the room (``end_room`` destroys it); ``expires_at`` is when Courier stops
  handing them out.
- ``participants`` reads ``listparticipants`` (who is connected now) and the ``allowed``
  list (everybody granted, and the audio moderation markers Courier keeps there, since
  Janus 1.1 reports no moderation state).
- ``set_audio`` is VideoRoom's ``moderate`` on the participant's audio streams (their mids
  are read from the ``publishers`` list a short-lived control participant sees on joining).

Participant events reach Courier through Janus' HTTP event handler (``sampleevh``), which
posts the plugin's events to ``<public url>/providers/video/janus`` with HTTP basic
credentials ``janus:<COURIER_JANUS_EVENTS_SECRET>``; ``verify`` checks them and ``parse``
turns ``joined``, ``leaving``/``kicked``, ``moderated``, ``created`` and ``destroyed`` into
the same events the sandbox reports (``participant-connected`` ...). A room's status callback
URL is therefore not used: Janus has one event backend (see docs/VIDEO_ENGINES.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from courier.config import Settings
from courier.core import outbound
from courier.core.time import utcnow
from courier.providers.common import (
    Ambiguous,
    InboundEvent,
    NotSent,
    Permanent,
    RawRequest,
)
from courier.providers.video.base import (
    MAX_IDENTITY,
    MAX_UNIQUE_NAME,
    Grant,
    Participant,
    Room,
    RoomStatus,
)

PLUGIN = "janus.plugin.videoroom"
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_TOKEN_TTL = timedelta(hours=24)
DEFAULT_PUBLISHERS = 50
EVENTS_USER = "janus"
CONTROL = "courier-control"
MUTED = "muted"
NO_SUCH_ROOM = "426"
ROOM_PREFIX = "courier-"

# Janus' VideoRoom events (event handler ``data.event`` / ``data.videoroom``) → Courier's types
# and the Twilio-shaped StatusCallbackEvent the sandbox reports.
EVENTS: dict[str, tuple[str, str]] = {
    "created": ("room-created", "room-created"),
    "destroyed": ("room-ended", "room-ended"),
    "joined": ("participant-connected", "participant-connected"),
    "leaving": ("participant-disconnected", "participant-disconnected"),
    "kicked": ("participant-disconnected", "participant-disconnected"),
}


class JanusVideo:
    """The janus adapter of the video kind."""

    name = "janus"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.janus_url.rstrip("/")
        self._key = _room_key(settings)

    # --- derived secrets -----------------------------------------------------------------

    def _mac(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def room_secret(self, room_id: str) -> str:
        return self._mac("secret", room_id)[:32]

    def room_pin(self, room_id: str) -> str:
        return str(int(self._mac("pin", room_id)[:12], 16) % 10**8).zfill(8)

    def participant_id(self, room_id: str, identity: str) -> str:
        return f"{identity}.{self._mac('id', room_id, identity)[:16]}"

    def token(self, room_id: str, identity: str) -> str:
        return f"{_b64(identity)}.{self._mac('token', room_id, identity)[:32]}"

    def _muted_marker(self, room_id: str, identity: str) -> str:
        return f"{MUTED}.{_b64(identity)}.{self._mac(MUTED, room_id, identity)[:32]}"

    def identity_of(self, room_id: str, participant_id: str) -> str | None:
        """The identity a participant id carries, when Courier made that id for this room."""
        identity, _, _mac = participant_id.rpartition(".")
        if identity and hmac.compare_digest(participant_id, self.participant_id(room_id, identity)):
            return identity
        return None

    def _token_identity(self, room_id: str, token: str) -> str | None:
        encoded, _, _mac = token.partition(".")
        identity = _unb64(encoded)
        if identity is not None and hmac.compare_digest(token, self.token(room_id, identity)):
            return identity
        return None

    def _marker_identity(self, room_id: str, marker: str) -> str | None:
        prefix, _, rest = marker.partition(".")
        identity = _unb64(rest.partition(".")[0]) if prefix == MUTED else None
        if identity is not None and hmac.compare_digest(
            marker, self._muted_marker(room_id, identity)
        ):
            return identity
        return None

    # --- rooms -----------------------------------------------------------------------------

    async def create_room(
        self,
        unique_name: str,
        *,
        max_participants: int | None = None,
        record: bool = False,
        status_callback_url: str | None = None,
    ) -> Room:
        """``status_callback_url`` is not used: Janus posts every room's events to the one
        backend of its event handler (``/providers/video/janus``)."""
        if not unique_name or len(unique_name) > MAX_UNIQUE_NAME:
            raise Permanent("53105", f"a room's unique name is 1 to {MAX_UNIQUE_NAME} characters")
        if max_participants is not None and not 1 <= max_participants <= DEFAULT_PUBLISHERS:
            raise Permanent("53107", f"max participants is 1 to {DEFAULT_PUBLISHERS}")
        async with self._handle() as janus:
            existing = [
                r
                for r in await _rooms(janus, self.settings.janus_admin_key)
                if r.get("description") == unique_name
            ]
            if existing:
                return _room(existing[0], unique_name)
            room_id = f"{ROOM_PREFIX}{int(utcnow().timestamp() * 1000)}-{secrets.token_hex(6)}"
            request: dict[str, Any] = {
                "request": "create",
                "room": room_id,
                "description": unique_name,
                "secret": self.room_secret(room_id),
                "pin": self.room_pin(room_id),
                # Private (unlisted but to holders of the admin key) when there is one.
                "is_private": bool(self.settings.janus_admin_key),
                "allowed": [self.token(room_id, CONTROL)],
                "publishers": max_participants or DEFAULT_PUBLISHERS,
                "record": record,
                "permanent": False,
            }
            if self.settings.janus_admin_key:
                request["admin_key"] = self.settings.janus_admin_key
            await janus.plugin(request, written=True)
            for found in await _rooms(janus, self.settings.janus_admin_key):
                if found.get("room") == room_id:
                    return _room(found, unique_name)
        raise Ambiguous(f"Janus created room {room_id} but does not list it")

    async def fetch_room(self, vendor_id: str) -> Room | None:
        async with self._handle() as janus:
            for found in await _rooms(janus, self.settings.janus_admin_key):
                if found.get("room") == vendor_id:
                    return _room(found, str(found.get("description") or ""))
        return None

    async def end_room(self, vendor_id: str) -> Room:
        """Kick everybody (each reported ``participant-disconnected``), then destroy the room
        (``room-ended``). Janus forgets a destroyed room: ending it again returns a completed
        room that only knows its id."""
        async with self._handle() as janus:
            found = next(
                (
                    r
                    for r in await _rooms(janus, self.settings.janus_admin_key)
                    if r.get("room") == vendor_id
                ),
                None,
            )
            if found is None:
                return Room(
                    vendor_id=vendor_id,
                    unique_name="",
                    status=RoomStatus.COMPLETED,
                    created_at=_created_at(vendor_id),
                    ended_at=utcnow(),
                )
            secret = self.room_secret(vendor_id)
            for held in await self._listed(janus, vendor_id):
                if self.identity_of(vendor_id, str(held["id"])) is None:
                    continue  # Courier's own control participant, gone by itself
                await janus.plugin(
                    {"request": "kick", "room": vendor_id, "secret": secret, "id": held["id"]},
                    written=True,
                    missing_ok=True,
                )
            await janus.plugin(
                {"request": "destroy", "room": vendor_id, "secret": secret},
                written=True,
                missing_ok=True,
            )
        ended = _room(found, str(found.get("description") or ""))
        return Room(
            vendor_id=ended.vendor_id,
            unique_name=ended.unique_name,
            status=RoomStatus.COMPLETED,
            max_participants=ended.max_participants,
            record=ended.record,
            created_at=ended.created_at,
            ended_at=utcnow(),
        )

    async def grant(self, room: Room, identity: str, *, ttl: timedelta) -> Grant:
        if not identity or len(identity) > MAX_IDENTITY or identity == CONTROL:
            raise Permanent("53300", f"an identity is 1 to {MAX_IDENTITY} characters")
        if not timedelta(seconds=1) <= ttl <= MAX_TOKEN_TTL:
            raise Permanent("53300", "a token lives 1 second to 24 hours")
        token = self.token(room.vendor_id, identity)
        async with self._handle() as janus:
            await self._allowed(janus, room.vendor_id, "add", [token])
        return Grant(
            token=token,
            identity=identity,
            unique_name=room.unique_name,
            expires_at=utcnow() + ttl,
            extra={
                "room": room.vendor_id,
                "pin": self.room_pin(room.vendor_id),
                "participant-id": self.participant_id(room.vendor_id, identity),
                "display": identity,
                "plugin": PLUGIN,
                **(
                    {"server": self.settings.janus_client_url}
                    if self.settings.janus_client_url
                    else {}
                ),
            },
        )

    async def participants(self, vendor_id: str) -> list[Participant]:
        """Who is connected now (``listparticipants``) and everybody else granted a token,
        not connected; audio muted where Courier moderated it."""
        async with self._handle() as janus:
            try:
                listed = await self._listed(janus, vendor_id)
                allowed = await self._allowed(janus, vendor_id, "add", [])
            except Permanent as exc:
                if exc.code == NO_SUCH_ROOM:
                    return []  # ended (destroyed): Janus remembers nobody
                raise
        muted = {self._marker_identity(vendor_id, t) for t in allowed} - {None}
        out: dict[str, Participant] = {}
        for held in listed:
            identity = self.identity_of(vendor_id, str(held["id"]))
            if identity is not None:
                out[identity] = Participant(
                    vendor_id=str(held["id"]),
                    identity=identity,
                    connected=True,
                    audio_muted=identity in muted,
                )
        for token in allowed:
            identity = self._token_identity(vendor_id, token)
            if identity is not None and identity != CONTROL and identity not in out:
                out[identity] = Participant(
                    vendor_id=self.participant_id(vendor_id, identity),
                    identity=identity,
                    connected=False,
                )
        return sorted(out.values(), key=lambda p: p.identity)

    async def set_audio(self, vendor_id: str, identity: str, *, muted: bool) -> None:
        participant_id = self.participant_id(vendor_id, identity)
        async with self._handle() as janus:
            listed = {str(p["id"]) for p in await self._listed(janus, vendor_id)}
            if participant_id not in listed:
                raise Permanent("53204", f"{identity!r} is not connected to the room")
            mids = await self._audio_mids(vendor_id, participant_id)
            if not mids:
                raise Permanent("53204", f"{identity!r} publishes no audio")
            secret = self.room_secret(vendor_id)
            for mid in mids:
                await janus.plugin(
                    {
                        "request": "moderate",
                        "room": vendor_id,
                        "secret": secret,
                        "id": participant_id,
                        "mid": mid,
                        "mute": muted,
                    },
                    written=True,
                )
            marker = self._muted_marker(vendor_id, identity)
            await self._allowed(janus, vendor_id, "add" if muted else "remove", [marker])

    async def _audio_mids(self, room_id: str, participant_id: str) -> list[str]:
        """The mids of a publisher's audio streams: a control participant joins (in a session
        of its own, so the asynchronous answer is its own) and reads the ``publishers``."""
        async with self._handle() as control:
            control_id = self.participant_id(room_id, CONTROL) + "." + secrets.token_hex(4)
            await control.plugin(
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": room_id,
                    "id": control_id,
                    "display": CONTROL,
                    "pin": self.room_pin(room_id),
                    "token": self.token(room_id, CONTROL),
                },
                written=False,
                asynchronous=True,
            )
            joined = await control.next_event()
        data = joined.get("plugindata", {}).get("data", {})
        if "error_code" in data:
            raise Permanent(str(data["error_code"]), str(data.get("error", "join refused")))
        for publisher in data.get("publishers", []):
            if str(publisher.get("id")) == participant_id:
                return [
                    str(s["mid"])
                    for s in publisher.get("streams", [])
                    if s.get("type") == "audio" and not s.get("disabled")
                ]
        return []

    async def _listed(self, janus: _Handle, room_id: str) -> list[dict[str, Any]]:
        data = await janus.plugin({"request": "listparticipants", "room": room_id}, written=False)
        listed: list[dict[str, Any]] = data.get("participants", [])
        return listed

    async def _allowed(
        self, janus: _Handle, room_id: str, action: str, tokens: list[str]
    ) -> list[str]:
        data = await janus.plugin(
            {
                "request": "allowed",
                "room": room_id,
                "secret": self.room_secret(room_id),
                "action": action,
                "allowed": tokens,
            },
            written=bool(tokens),
        )
        return [str(t) for t in data.get("allowed", [])]

    @asynccontextmanager
    async def _handle(self) -> AsyncIterator[_Handle]:
        async with outbound.client(
            trust_env=False, timeout=REQUEST_TIMEOUT_SECONDS, follow_redirects=False
        ) as http:
            handle = _Handle(http, self.url, self.settings.janus_api_secret)
            await handle.open()
            try:
                yield handle
            finally:
                await handle.close()

    # --- Janus' event handler -------------------------------------------------------------

    def verify(self, request: RawRequest) -> bool:
        """HTTP basic credentials ``janus:<COURIER_JANUS_EVENTS_SECRET>`` (sampleevh's
        ``backend_user``/``backend_pwd``)."""
        secret = self.settings.janus_events_secret
        given = request.header("authorization") or ""
        if not secret or not given.startswith("Basic "):
            return False
        expected = base64.b64encode(f"{EVENTS_USER}:{secret}".encode()).decode()
        return hmac.compare_digest(given.removeprefix("Basic ").strip(), expected)

    def parse(self, request: RawRequest) -> list[InboundEvent]:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return []
        found: list[InboundEvent] = []
        for item in body if isinstance(body, list) else [body]:
            event = self._event(item) if isinstance(item, dict) else None
            if event is not None:
                found.append(event)
        return found

    def _event(self, item: dict[str, Any]) -> InboundEvent | None:
        plugin_event = item.get("event")
        if item.get("type") != 64 or not isinstance(plugin_event, dict):
            return None
        if plugin_event.get("plugin") != PLUGIN or not isinstance(plugin_event.get("data"), dict):
            return None
        data: dict[str, Any] = plugin_event["data"]
        room_id = str(data.get("room", ""))
        name = str(data.get("event") or "")
        if data.get("videoroom") == "moderated":
            muted = data.get("moderation") == "muted"
            kind, vendor_event = "participant-audio", "track-disabled" if muted else "track-enabled"
            name = "moderated"
        elif name in EVENTS:
            kind, vendor_event = EVENTS[name]
        else:
            return None
        if not room_id:
            return None
        raw: dict[str, Any] = {"StatusCallbackEvent": vendor_event, "RoomSid": room_id}
        stamp = item.get("timestamp")
        occurred = (
            datetime.fromtimestamp(int(stamp) / 1_000_000, tz=UTC)
            if isinstance(stamp, int)
            else None
        )
        if occurred is not None:
            raw["Timestamp"] = occurred.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        participant = str(data.get("id", ""))
        if kind.startswith("participant-"):
            identity = self.identity_of(room_id, participant)
            if identity is None or identity == CONTROL:
                return None  # Courier's control participant, or an id Courier never made
            if name == "joined" and (
                self._token_identity(room_id, str(data.get("token", ""))) != identity
            ):
                return None  # joined with somebody else's token: not who the id says
            raw.update(
                ParticipantSid=participant,
                ParticipantIdentity=identity,
                ParticipantStatus="disconnected"
                if kind == "participant-disconnected"
                else "connected",
            )
            if kind == "participant-audio":
                raw.update(
                    ParticipantAudioMuted="true" if data.get("moderation") == "muted" else "false",
                    TrackKind="audio",
                    TrackSid=str(data.get("mid", "")),
                )
        raw["janus"] = data
        return InboundEvent(
            dedupe_key=f"{room_id}:{stamp}:{name}:{participant}:{data.get('mid', '')}",
            vendor_id=room_id,
            delivery_id=None,
            status=None,
            vendor_code=None,
            occurred_at=occurred,
            raw=raw,
            type=kind,
            vendor_status=vendor_event,
        )


class _Handle:
    """One short-lived Janus session with a handle attached to the VideoRoom plugin."""

    def __init__(self, http: httpx.AsyncClient, url: str, api_secret: str | None) -> None:
        self.http = http
        self.url = url
        self.api_secret = api_secret
        self.session: int | None = None
        self.handle: int | None = None

    async def _post(self, path: str, message: dict[str, Any], *, written: bool) -> dict[str, Any]:
        body = {**message, "transaction": uuid.uuid4().hex}
        if self.api_secret:
            body["apisecret"] = self.api_secret
        try:
            response = await self.http.post(self.url + path, content=orjson.dumps(body))
        except httpx.ConnectError as exc:
            raise NotSent(f"Janus unreachable: {exc}") from exc
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if written and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise Ambiguous(f"no answer from Janus after the request: {exc!r}") from exc
            raise NotSent(f"Janus did not answer: {exc!r}") from exc
        return _answer(response)

    async def open(self) -> None:
        created = await self._post("", {"janus": "create"}, written=False)
        self.session = int(created["data"]["id"])
        attached = await self._post(
            f"/{self.session}", {"janus": "attach", "plugin": PLUGIN}, written=False
        )
        self.handle = int(attached["data"]["id"])

    async def close(self) -> None:
        if self.session is not None:
            with contextlib.suppress(NotSent, Ambiguous, Permanent):  # else Janus times it out
                await self._post(f"/{self.session}", {"janus": "destroy"}, written=False)
            self.session = None

    async def plugin(
        self,
        body: dict[str, Any],
        *,
        written: bool,
        missing_ok: bool = False,
        asynchronous: bool = False,
    ) -> dict[str, Any]:
        """A VideoRoom request; its ``plugindata.data`` (synchronous requests), raising the
        plugin's error code as :class:`Permanent` (``missing_ok``: not for a gone room or
        participant)."""
        answer = await self._post(
            f"/{self.session}/{self.handle}", {"janus": "message", "body": body}, written=written
        )
        if asynchronous:
            return answer
        data: dict[str, Any] = answer.get("plugindata", {}).get("data", {})
        code = data.get("error_code")
        if code is not None:
            if missing_ok and code in (426, 428):  # no such room, no such participant
                return data
            raise Permanent(str(code), f"Janus VideoRoom: {data.get('error', '')}")
        return data

    async def next_event(self) -> dict[str, Any]:
        """The session's next asynchronous event (long poll)."""
        params = {"maxev": "1", "rid": uuid.uuid4().hex}
        if self.api_secret:
            params["apisecret"] = self.api_secret
        for _ in range(3):
            try:
                response = await self.http.get(f"{self.url}/{self.session}", params=params)
            except httpx.HTTPError as exc:
                raise NotSent(f"Janus did not answer: {exc!r}") from exc
            answer = _answer(response)
            if answer.get("janus") == "event":
                return answer
        raise NotSent("Janus sent no event")


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 500:
        raise NotSent(f"Janus answered HTTP {response.status_code}")
    try:
        answer: dict[str, Any] = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise Permanent("janus", f"Janus answered something else than JSON: {exc}") from exc
    if answer.get("janus") == "error":
        error = answer.get("error", {})
        code = int(error.get("code", 0))
        if code == 458:  # no such session (timed out): certainly not done
            raise NotSent(f"Janus: {error.get('reason')}", code=str(code))
        raise Permanent(str(code), f"Janus: {error.get('reason', '')}")
    return answer


async def _rooms(janus: _Handle, admin_key: str | None) -> list[dict[str, Any]]:
    """Courier's rooms (private ones too, with the admin key)."""
    request = {"request": "list", **({"admin_key": admin_key} if admin_key else {})}
    data = await janus.plugin(request, written=False)
    rooms: list[dict[str, Any]] = [r for r in data.get("list", []) if isinstance(r, dict)]
    if any(isinstance(room.get("room"), int) for room in rooms):
        raise Permanent(
            "janus",
            "the Janus VideoRoom plugin uses numeric ids: set string_ids = true in "
            "janus.plugin.videoroom.jcfg",
        )
    return [r for r in rooms if str(r.get("room", "")).startswith(ROOM_PREFIX)]


def _room(found: dict[str, Any], unique_name: str) -> Room:
    room_id = str(found["room"])
    return Room(
        vendor_id=room_id,
        unique_name=unique_name,
        status=RoomStatus.IN_PROGRESS
        if int(found.get("num_participants") or 0) > 0
        else RoomStatus.CREATED,
        max_participants=found.get("max_publishers"),
        record=bool(found.get("record")),
        created_at=_created_at(room_id),
    )


def _created_at(room_id: str) -> datetime | None:
    parts = room_id.split("-")
    if len(parts) == 3 and parts[1].isdigit():
        return datetime.fromtimestamp(int(parts[1]) / 1000, tz=UTC)
    return None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _room_key(settings: Settings) -> bytes:
    if settings.janus_room_key:
        return settings.janus_room_key.encode()
    from courier.core.auth import token_secret

    return hmac.new(token_secret(settings).encode(), b"courier-janus", hashlib.sha256).digest()
