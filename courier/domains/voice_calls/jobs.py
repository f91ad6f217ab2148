"""What the workers need of voice calls: the sender of the call legs' deliveries and the hooks
that follow their reports (``calls``); the legs are sent by the delivery machinery's own
``deliveries.send`` job and their reports applied by ``providers.apply-inbound``."""

from __future__ import annotations

from courier.domains.voice_calls import calls as _calls  # sender and delivery hooks

__all__ = ["_calls"]
