"""Video rooms (visits): the ``video`` provider kind.

``COURIER_VIDEO_PROVIDER=sandbox`` (default), ``twilio`` (Twilio Video) or ``janus`` (a
self-hosted Janus WebRTC server); docs/VIDEO_ENGINES.md.
"""

from __future__ import annotations

from courier.config import Settings
from courier.providers.common import ProviderKind
from courier.providers.sandbox_faults import FaultParams, fail_next
from courier.providers.video import sandbox
from courier.providers.video.base import Grant, Participant, Room, RoomStatus, VideoProvider

VIDEO: ProviderKind[VideoProvider] = ProviderKind("video", setting="video_provider")


@VIDEO.adapter("sandbox")
def _sandbox(settings: Settings) -> VideoProvider:
    return sandbox.SandboxVideo(settings)


# The engines' modules (and the twilio client) are imported when first built.
VIDEO.adapter_in("twilio", "courier.providers.video.twilio:TwilioVideo")
VIDEO.adapter_in("janus", "courier.providers.video.janus:JanusVideo")


VIDEO.sandbox_action(
    "join",
    path="join",
    params=sandbox.JoinParams,
    summary="A client joins a room with an access token (participant-connected).",
)(sandbox.join_room)
VIDEO.sandbox_action(
    "leave",
    path="leave",
    params=sandbox.ParticipantParams,
    summary="A participant leaves the room (participant-disconnected).",
)(sandbox.leave_room)
VIDEO.sandbox_action(
    "audio",
    path="audio",
    params=sandbox.AudioParams,
    summary="A participant mutes or unmutes their own microphone (participant-audio).",
)(sandbox.participant_audio)
VIDEO.sandbox_action(
    "room",
    path="room",
    method="GET",
    params=sandbox.RoomParams,
    summary="A room's state and its participants.",
)(sandbox.show_room)
VIDEO.sandbox_action(
    "fail-next",
    path="failures",
    params=FaultParams,
    summary="Make the next room creation (of a unique name, else any) fail.",
)(fail_next)

__all__ = ["VIDEO", "Grant", "Participant", "Room", "RoomStatus", "VideoProvider"]
