"""The push kind: ``COURIER_PUSH_PROVIDER`` picks its adapter (``sandbox`` by default)."""

from __future__ import annotations

from courier.providers.common import ProviderKind
from courier.providers.push.base import PushProvider

PUSH: ProviderKind[PushProvider] = ProviderKind("push", setting="push_provider")
