"""Twilio Video for the fake Twilio of tests/twilio_fake.py: rooms (create, fetch by sid or
unique name, complete, 53113 for a unique name in progress), participants (list by status,
published tracks, subscribe rules) in Twilio's JSON shapes, and what clients do: join with an
access token (verified with the API key secret, as Twilio does), leave, disable their
microphone; each change is a signed room status callback in Twilio's form encoding."""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

from tests.twilio_fake import FakeTwilio, _error, _page


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeTwilioVideo:
    twilio: FakeTwilio
    api_key_sid: str = field(default_factory=lambda: "SK" + secrets.token_hex(16))
    api_key_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    rooms: dict[str, dict[str, Any]] = field(default_factory=dict)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)  # participant sid → audio
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sequence: dict[str, int] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def install(cls, twilio: FakeTwilio) -> FakeTwilioVideo:
        twilio.video = cls(twilio)
        video: FakeTwilioVideo = twilio.video
        return video

    # --- the REST API ---------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, str], form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if path == "/video/v1/Rooms" and method == "POST":
                return self._create(form)
            match = re.fullmatch(r"/video/v1/Rooms/([^/]+)", path)
            if match:
                room = self._find(match.group(1))
                if room is None:
                    return _error(404, 20404, f"The requested resource {path} was not found")
                if method == "POST" and form.get("Status") == "completed":
                    if room["status"] == "completed":
                        return _error(400, 53118, "Room completed")
                    self._complete(room)
                return 200, room
            match = re.fullmatch(r"/video/v1/Rooms/(RM\w+)/Participants", path)
            if match and method == "GET":
                rows = [
                    p
                    for p in self.participants.values()
                    if p["room_sid"] == match.group(1)
                    and p["status"] == query.get("Status", "connected")
                ]
                return 200, _page("participants", rows, path)
            match = re.fullmatch(
                r"/video/v1/Rooms/(RM\w+)/Participants/(PA\w+)/PublishedTracks", path
            )
            if match and method == "GET":
                track = self.tracks.get(match.group(2))
                return 200, _page("published_tracks", [track] if track else [], path)
            match = re.fullmatch(
                r"/video/v1/Rooms/(RM\w+)/Participants/(PA\w+)/SubscribeRules", path
            )
            if match:
                sid = match.group(2)
                if method == "POST":
                    self.rules[sid] = json.loads(form.get("Rules", "[]"))
                return 200, {
                    "participant_sid": sid,
                    "room_sid": match.group(1),
                    "rules": self.rules.get(sid, [{"type": "include", "all": True}]),
                    "date_created": _now(),
                    "date_updated": _now(),
                }
            return _error(404, 20404, f"The requested resource {path} was not found")

    def _find(self, ref: str) -> dict[str, Any] | None:
        if ref in self.rooms:
            return self.rooms[ref]
        return next(
            (
                r
                for r in self.rooms.values()
                if r["unique_name"] == ref and r["status"] == "in-progress"
            ),
            None,
        )

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        name = form.get("UniqueName") or secrets.token_hex(8)
        if self._find(name) is not None:
            return _error(400, 53113, "Room exists")
        sid = "RM" + secrets.token_hex(16)
        room = {
            "sid": sid,
            "account_sid": self.twilio.account_sid,
            "unique_name": name,
            "status": "in-progress",
            "type": form.get("Type", "group"),
            "max_participants": int(form.get("MaxParticipants", "50")),
            "record_participants_on_connect": form.get("RecordParticipantsOnConnect") == "true",
            "status_callback": form.get("StatusCallback"),
            "status_callback_method": form.get("StatusCallbackMethod", "POST"),
            "date_created": _now(),
            "date_updated": _now(),
            "end_time": None,
            "duration": None,
            "url": f"https://video.twilio.com/v1/Rooms/{sid}",
            "links": {},
        }
        self.rooms[sid] = room
        self._report(room, "room-created", {})
        return 201, room

    def _complete(self, room: dict[str, Any]) -> None:
        for participant in list(self.participants.values()):
            if participant["room_sid"] == room["sid"] and participant["status"] == "connected":
                self._disconnect(participant)
        room.update(status="completed", end_time=_now(), date_updated=_now())
        self._report(room, "room-ended", {})

    # --- clients --------------------------------------------------------------------------

    def join(self, token: str) -> dict[str, Any]:
        """A client connects with an access token; raises ValueError as Twilio refuses."""
        with self.lock:
            try:
                claims = jwt.decode(token, self.api_key_secret, algorithms=["HS256"])
            except jwt.InvalidTokenError as error:
                raise ValueError("20101 the access token is not valid") from error
            if (
                claims.get("iss") != self.api_key_sid
                or claims.get("sub") != self.twilio.account_sid
            ):
                raise ValueError("20101 the access token is not valid")
            grants = claims.get("grants", {})
            room = self._find(grants.get("video", {}).get("room", ""))
            if room is None:
                raise ValueError("53106 room not found or ended")
            identity = grants["identity"]
            connected = self._connected(room["sid"])
            if len(connected) >= room["max_participants"]:
                raise ValueError("53105 the room is full")
            sid = "PA" + secrets.token_hex(16)
            participant = {
                "sid": sid,
                "room_sid": room["sid"],
                "account_sid": self.twilio.account_sid,
                "status": "connected",
                "identity": identity,
                "date_created": _now(),
                "date_updated": _now(),
                "start_time": _now(),
                "end_time": None,
                "duration": None,
                "url": f"https://video.twilio.com/v1/Rooms/{room['sid']}/Participants/{sid}",
                "links": {},
            }
            self.participants[sid] = participant
            self.tracks[sid] = {
                "sid": "MT" + secrets.token_hex(16),
                "participant_sid": sid,
                "room_sid": room["sid"],
                "name": "microphone",
                "kind": "audio",
                "enabled": True,
                "date_created": _now(),
                "date_updated": _now(),
                "url": "https://video.twilio.com/v1/tracks",
            }
            self._report(room, "participant-connected", self._params(participant))
            return participant

    def leave(self, room_sid: str, identity: str) -> None:
        with self.lock:
            for participant in self._connected(room_sid):
                if participant["identity"] == identity:
                    self._disconnect(participant)

    def microphone(self, room_sid: str, identity: str, *, enabled: bool) -> None:
        with self.lock:
            participant = next(p for p in self._connected(room_sid) if p["identity"] == identity)
            track = self.tracks[participant["sid"]]
            track["enabled"] = enabled
            self._report(
                self.rooms[room_sid],
                "track-enabled" if enabled else "track-disabled",
                {**self._params(participant), "TrackKind": "audio", "TrackSid": track["sid"]},
            )

    def _connected(self, room_sid: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.participants.values()
            if p["room_sid"] == room_sid and p["status"] == "connected"
        ]

    def _disconnect(self, participant: dict[str, Any]) -> None:
        participant.update(status="disconnected", end_time=_now(), date_updated=_now())
        self._report(
            self.rooms[participant["room_sid"]],
            "participant-disconnected",
            self._params(participant),
        )

    def _params(self, participant: dict[str, Any]) -> dict[str, str]:
        return {
            "ParticipantSid": participant["sid"],
            "ParticipantIdentity": participant["identity"],
            "ParticipantStatus": participant["status"],
        }

    def _report(self, room: dict[str, Any], event: str, extra: dict[str, str]) -> None:
        """Twilio's room status callback: form-encoded, signed with the auth token."""
        self.sequence[room["sid"]] = self.sequence.get(room["sid"], -1) + 1
        url = room["status_callback"]
        if not url:
            return
        params = {
            "AccountSid": self.twilio.account_sid,
            "RoomSid": room["sid"],
            "RoomName": room["unique_name"],
            "RoomStatus": room["status"],
            "RoomType": room["type"],
            "StatusCallbackEvent": event,
            "SequenceNumber": str(self.sequence[room["sid"]]),
            "Timestamp": _now(),
            **extra,
        }
        self.twilio.signed_post(url, params)
