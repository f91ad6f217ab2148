"""Alexa: what Courier asks of Amazon's Alexa APIs (or the sandbox).

- The **Reminders API** keeps a patient's reminders on their Alexa device: ``create_reminder``
  returns Alexa's id for it (the ``alertToken``), which later updates and deletes name.
- The **Proactive Events API** announces something to a user who subscribed (a new message
  from the care team, a medication reminder): ``send_event``.
- Proactive events authenticate with a Login with Amazon (LWA) access token obtained with the
  skill's client credentials and kept until shortly before it expires (:class:`LwaTokenCache`).
  Amazon creates a reminder only with the Alexa *user's* API token, the ``apiAccessToken``
  every skill request carries (:class:`UserApiAccess`); the domain keeps the latest one for
  under an hour and hands it to the reminder calls. Without one, an adapter may need to ask
  Alexa for one (the amazon adapter wakes the skill through the Skill Messaging API) and
  raises ``NotSent(code=AWAITING_USER_TOKEN)``: the sync is tried again once it arrives.
- The **skill endpoint** accepts only genuine Alexa requests: ``verify_skill_request`` checks
  the request's signature by the adapter's rules (Amazon's: the ``SignatureCertChainUrl``
  certificate, fetched once through the adapter's certificate fetcher, and ``Signature-256``
  over the raw body; the sandbox's: its HMAC) and the 150-second timestamp window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from courier.providers.common import ProviderError, RawRequest, SendResult

TIMESTAMP_TOLERANCE_SECONDS = 150
# The headers of a skill request signed as Amazon signs (checked by ``signature.py``).
CERT_URL_HEADER = "signaturecertchainurl"
SIGNATURE_HEADER = "signature-256"
REMINDERS_SCOPE = "alexa::alerts:reminders:skill:readwrite"
PROACTIVE_SCOPE = "alexa::proactive_events"
SKILL_MESSAGING_SCOPE = "alexa:skill_messaging"
AWAITING_USER_TOKEN = "awaiting-user-token"
# Amazon: a request's apiAccessToken is valid for 60 minutes and is not to be kept; Courier
# keeps it (sealed) a little less, only because its worker, not the request, calls the API.
USER_TOKEN_LIFETIME_SECONDS = 55 * 60


class SkillRequestRejected(ProviderError):  # noqa: N818
    """A skill request that is not a genuine, fresh Alexa request; ``code`` says why
    (``bad-signature``, ``bad-certificate-url``, ``stale-timestamp``, ``malformed``)."""


@dataclass(frozen=True)
class AlexaReminder:
    """A reminder as the Reminders API takes it: spoken ``text`` in ``locale``, first due at
    ``scheduled_local`` (a wall-clock time without offset) in ``time_zone`` (IANA), repeating
    by ``recurrence_rules`` (RFC 5545 RRULEs without DTSTART)."""

    text: str
    locale: str
    scheduled_local: datetime
    time_zone: str
    recurrence_rules: Sequence[str] = ()
    push_notification: bool = True

    def request_body(self, request_time: datetime) -> dict[str, Any]:
        """The Reminders API's JSON body (the same for the sandbox and Amazon)."""
        trigger: dict[str, Any] = {
            "type": "SCHEDULED_ABSOLUTE",
            "scheduledTime": self.scheduled_local.replace(tzinfo=None).isoformat(
                timespec="milliseconds"
            ),
            "timeZoneId": self.time_zone,
        }
        if self.recurrence_rules:
            trigger["recurrence"] = {"recurrenceRules": list(self.recurrence_rules)}
        return {
            "requestTime": request_time.isoformat(timespec="milliseconds"),
            "trigger": trigger,
            "alertInfo": {"spokenInfo": {"content": [{"locale": self.locale, "text": self.text}]}},
            "pushNotification": {"status": "ENABLED" if self.push_notification else "DISABLED"},
        }


@dataclass(frozen=True)
class UserApiAccess:
    """An Alexa user's API access: ``context.System.apiAccessToken`` of a verified skill
    request from that user, and ``context.System.apiEndpoint`` (the API host of their region).
    """

    token: str
    endpoint: str

    def __repr__(self) -> str:  # never the token in a log line or a traceback
        return f"UserApiAccess(endpoint={self.endpoint!r})"


@dataclass(frozen=True)
class ProactiveEvent:
    """One proactive event (``AMAZON.MessageAlert.Activated``,
    ``AMAZON.MedicationReminder.Activated`` ...) with the payload its schema requires.
    ``reference_id`` is Courier's id for it (Amazon de-duplicates on it)."""

    name: str
    payload: Mapping[str, Any]
    reference_id: str
    expires_at: datetime
    localized_attributes: Sequence[Mapping[str, str]] = field(default_factory=tuple)


@runtime_checkable
class AlexaProvider(Protocol):
    name: str

    async def create_reminder(
        self, reminder: AlexaReminder, *, user_id: str, access: UserApiAccess | None = None
    ) -> str:
        """Create the reminder for the Alexa user; returns Alexa's reminder id. ``access``:
        the user's latest API token, if Courier holds one."""
        ...

    async def update_reminder(
        self,
        alexa_reminder_id: str,
        reminder: AlexaReminder,
        *,
        user_id: str,
        access: UserApiAccess | None = None,
    ) -> None:
        """Replace the reminder; an id Alexa no longer knows: ``Permanent("not-found")``."""
        ...

    async def delete_reminder(
        self, alexa_reminder_id: str, *, user_id: str, access: UserApiAccess | None = None
    ) -> None:
        """Delete the reminder; one already gone: nothing happens."""
        ...

    async def send_event(self, event: ProactiveEvent, *, user_id: str | None) -> SendResult:
        """Announce ``event`` to one user (``user_id``) or to every subscriber (None)."""
        ...

    async def verify_skill_request(self, request: RawRequest) -> Mapping[str, Any]:
        """The request's JSON envelope if genuine and fresh, else ``SkillRequestRejected``."""
        ...


TokenFetcher = Callable[[str], Awaitable[tuple[str, float]]]


class LwaTokenCache:
    """LWA access tokens per scope, fetched when first needed and kept until ``margin``
    seconds before they expire; one fetch at a time, so a burst of sends asks once.
    ``fetch(scope)`` returns the token and its lifetime in seconds (``expires_in``)."""

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._margin = margin
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[int, asyncio.Lock] = {}  # one per event loop the adapter serves

    async def token(self, scope: str) -> str:
        loop = id(asyncio.get_running_loop())
        async with self._locks.setdefault(loop, asyncio.Lock()):
            held = self._tokens.get(scope)
            if held is not None and self._clock() < held[1]:
                return held[0]
            token, lifetime = await self._fetch(scope)
            self._tokens[scope] = (token, self._clock() + max(0.0, lifetime - self._margin))
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the API refused it: revoked or expired early)."""
        for scope, (held, _) in list(self._tokens.items()):
            if held == token:
                del self._tokens[scope]
