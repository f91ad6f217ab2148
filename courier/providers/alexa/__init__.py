"""Alexa (Reminders API, Proactive Events API, skill requests): the ``alexa`` provider kind.

``COURIER_ALEXA_PROVIDER=sandbox`` (default) or ``amazon`` (``amazon.py``: Amazon's APIs with
the skill's LWA client credentials and the users' API tokens; docs/ALEXA.md).
"""

from __future__ import annotations

from courier.config import Settings
from courier.providers.alexa import sandbox
from courier.providers.alexa.base import (
    AlexaProvider,
    AlexaReminder,
    LwaTokenCache,
    ProactiveEvent,
    SkillRequestRejected,
    UserApiAccess,
)
from courier.providers.common import ProviderKind
from courier.providers.sandbox_faults import FaultParams, fail_next

ALEXA: ProviderKind[AlexaProvider] = ProviderKind("alexa", setting="alexa_provider")


@ALEXA.adapter("sandbox")
def _sandbox(settings: Settings) -> AlexaProvider:
    return sandbox.SandboxAlexa(settings)


@ALEXA.adapter("amazon")
def _amazon(settings: Settings) -> AlexaProvider:
    from courier.providers.alexa.amazon import AmazonAlexa

    return AmazonAlexa(settings)


ALEXA.sandbox_action(
    "reminders",
    path="reminders",
    method="GET",
    params=sandbox.UserParams,
    summary="The reminders an Alexa user's device holds.",
)(sandbox.user_reminders)
ALEXA.sandbox_action(
    "events",
    path="events",
    method="GET",
    params=sandbox.UserParams,
    summary="The proactive events announced to an Alexa user.",
)(sandbox.user_events)
ALEXA.sandbox_action(
    "tokens",
    path="tokens",
    method="GET",
    params=sandbox.NoParams,
    summary="How many LWA access tokens were issued and are still valid.",
)(sandbox.lwa_tokens)
ALEXA.sandbox_action(
    "revoke-tokens",
    path="revoke-tokens",
    params=sandbox.NoParams,
    summary="Revoke every LWA token: the next API call must obtain a new one.",
)(sandbox.revoke_tokens)
ALEXA.sandbox_action(
    "fail-next",
    path="failures",
    params=FaultParams,
    summary="Make the next API call (for a user, else any) fail with the given error.",
)(fail_next)

__all__ = [
    "ALEXA",
    "AlexaProvider",
    "AlexaReminder",
    "LwaTokenCache",
    "ProactiveEvent",
    "SkillRequestRejected",
    "UserApiAccess",
]
