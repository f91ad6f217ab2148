"""Push notifications (APNs, FCM, Web Push): the ``push`` provider kind.

``COURIER_PUSH_PROVIDER``: ``sandbox`` (default); ``vendors`` (each platform to its service);
or one platform's adapter alone: ``apns``, ``fcm``, ``webpush`` (docs/PUSH.md).
"""

from __future__ import annotations

from courier.config import Settings
from courier.providers.push import sandbox
from courier.providers.push.base import (
    PLATFORMS,
    Platform,
    PushCredentials,
    PushDevice,
    PushMessage,
    PushProvider,
)
from courier.providers.push.kind import PUSH
from courier.providers.sandbox_faults import FaultParams, fail_next

# The vendors' adapters are imported when first built (their client libraries are heavy).
PUSH.adapter_in("apns", "courier.providers.push.apns:ApnsPush")
PUSH.adapter_in("fcm", "courier.providers.push.fcm:FcmPush")
PUSH.adapter_in("webpush", "courier.providers.push.webpush:WebPush")
PUSH.adapter_in("vendors", "courier.providers.push.vendors:VendorPush")


@PUSH.adapter("sandbox")
def _sandbox(settings: Settings) -> PushProvider:
    return sandbox.SandboxPush(settings)


PUSH.sandbox_action(
    "screen",
    path="screen",
    method="GET",
    params=sandbox.TokenParams,
    summary="What the phone with this device token has shown (title, body, badge, data).",
)(sandbox.phone_screen)
PUSH.sandbox_action(
    "gone",
    path="gone",
    params=sandbox.TokenParams,
    summary="Uninstall the app: later sends to this token raise RecipientGone.",
)(sandbox.token_gone)
PUSH.sandbox_action(
    "fail-next",
    path="failures",
    params=FaultParams,
    summary="Make the next send (to a token, else any) fail with the given error and code.",
)(fail_next)

__all__ = [
    "PLATFORMS",
    "PUSH",
    "Platform",
    "PushCredentials",
    "PushDevice",
    "PushMessage",
    "PushProvider",
]
