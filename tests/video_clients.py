"""The outside world of each video engine, for the kind's contract test
(tests/test_provider_video.py): the client apps that join rooms with the tokens Courier
granted, leave them and (where the engine lets them) mute their own microphone, and where the
engine's events arrive.

- ``sandbox``: the sandbox's control surface, over HTTP.
- ``twilio``: the fake Twilio's Video twin (tests/twilio_video_fake.py), which verifies the
  access tokens with the API key secret and posts signed room callbacks.
- ``janus``: a private Janus (tests/janus_support.py) and real WebRTC peers (aiortc) that
  join with the token, pin and participant id, and publish a synthetic audio track.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from courier.providers.common import InboundEvent, RawRequest
from courier.providers.video.base import Grant, Room, VideoProvider
from tests.janus_support import Peer
from tests.provider_kinds_support import Receiver, World
from tests.twilio_fake import FakeTwilio
from tests.twilio_video_fake import FakeTwilioVideo


class Refused(Exception):  # noqa: N818
    """The engine refused a client (the message says why: full, not valid, ended)."""


@dataclass
class Clients:
    """What every engine's world offers the contract test."""

    receiver: Receiver
    hook: str = "/providers/video/status"
    rooms_start_in_progress: bool = False  # Twilio's rooms are in progress from creation
    reports_moderation: bool = True  # set_audio produces participant-audio events
    clients_mute_themselves: bool = True
    events_in_time_order: bool = False  # events may arrive in batches out of order

    async def join(self, grant: Grant) -> None:
        raise NotImplementedError

    async def leave(self, room: Room, identity: str) -> None:
        raise NotImplementedError

    async def mute_self(self, room: Room, identity: str, muted: bool) -> None:
        raise NotImplementedError

    async def fail_next(self, unique_name: str) -> bool:
        """Make the next room creation fail with code 20429; False: the engine cannot."""
        return False

    def forged(self, raw: RawRequest) -> RawRequest:
        """``raw`` as a forger would send it."""
        body = raw.body.replace(b"room-created", b"room-ended")
        form = tuple(parse_qsl(body.decode(), keep_blank_values=True)) if raw.form else ()
        return RawRequest(raw.method, raw.url, raw.headers, body, form)

    async def events(
        self, video: VideoProvider, room_sid: str, *, at_least: int = 0
    ) -> list[tuple[str, str]]:
        """The (type, identity) of every verified event about the room, in order; waits up
        to 10 s for ``at_least`` of them (an engine may post them asynchronously)."""
        found: list[InboundEvent] = []
        for _ in range(100):
            found = []
            for request in self.receiver.at(self.hook):
                if room_sid.encode() not in request.body:
                    continue  # another engine's room (the receiver serves them all)
                raw = request.raw()
                assert video.verify(raw), "every callback is authenticated"
                found += [e for e in video.parse(raw) if e.vendor_id == room_sid]
            if len(found) >= at_least:
                break
            await asyncio.sleep(0.1)
        if self.events_in_time_order:
            found.sort(key=lambda e: e.occurred_at or 0)
        return [(e.type, str(e.raw.get("ParticipantIdentity", ""))) for e in found]

    async def close(self) -> None:
        return None


@dataclass
class SandboxClients(Clients):
    world: World | None = None

    async def _act(self, path: str, **params: Any) -> Any:
        assert self.world is not None
        response = await self.world.control("video", path, **params)
        if response.status_code == 400:
            raise Refused(response.text)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    async def join(self, grant: Grant) -> None:
        joined = await self._act("join", token=grant.token)
        assert joined["identity"] == grant.identity and joined["connected"] is True

    async def leave(self, room: Room, identity: str) -> None:
        await self._act("leave", room=room.unique_name, identity=identity)

    async def mute_self(self, room: Room, identity: str, muted: bool) -> None:
        await self._act("audio", room=room.unique_name, identity=identity, muted=muted)

    async def fail_next(self, unique_name: str) -> bool:
        await self._act("failures", error="not-sent", code="20429", target=unique_name)
        return True


@dataclass
class TwilioClients(Clients):
    fake: FakeTwilio | None = None
    rooms: FakeTwilioVideo | None = None
    rooms_start_in_progress: bool = True
    reports_moderation: bool = False  # subscribe rules: Twilio sends no callback

    async def join(self, grant: Grant) -> None:
        assert self.rooms is not None
        try:
            await asyncio.to_thread(self.rooms.join, grant.token)
        except ValueError as error:
            raise Refused(str(error)) from error

    async def leave(self, room: Room, identity: str) -> None:
        assert self.rooms is not None
        await asyncio.to_thread(self.rooms.leave, room.vendor_id, identity)

    async def mute_self(self, room: Room, identity: str, muted: bool) -> None:
        assert self.rooms is not None
        await asyncio.to_thread(self.rooms.microphone, room.vendor_id, identity, enabled=not muted)

    async def fail_next(self, unique_name: str) -> bool:
        assert self.fake is not None
        self.fake.fail_next.append((429, 20429))
        return True


@dataclass
class JanusClients(Clients):
    url: str = ""
    hook: str = "/providers/video/janus"
    clients_mute_themselves: bool = False  # Janus 1.1 reports no self-mute
    events_in_time_order: bool = True
    peers: dict[tuple[str, str], Peer] = field(default_factory=dict)

    async def join(self, grant: Grant) -> None:
        peer = Peer(self.url, grant)
        joined = await peer.join()
        code = joined.get("error_code")
        if code is None:
            published = await peer.publish_audio()
            code = published.get("error_code")
            if code is None:
                self.peers[(grant.extra["room"], grant.identity)] = peer
                return
        await peer.leave()
        reason = {432: "the room is full", 433: "the token is not valid", 426: "the room ended"}
        raise Refused(f"{reason.get(code, 'refused')} (Janus {code}: {joined.get('error')})")

    async def leave(self, room: Room, identity: str) -> None:
        await self.peers.pop((room.vendor_id, identity)).leave()

    def forged(self, raw: RawRequest) -> RawRequest:
        """Janus' events are authenticated by the event handler's credentials: a forger
        does not have them."""
        headers = {**raw.headers, "authorization": "Basic amFudXM6Z3Vlc3M="}  # janus:guess
        return RawRequest(raw.method, raw.url, headers, raw.body)

    async def close(self) -> None:
        for peer in self.peers.values():
            await peer.leave()
        self.peers.clear()
