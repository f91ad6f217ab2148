"""The email kind: ``COURIER_EMAIL_PROVIDER`` picks its adapter (``sandbox`` by default)."""

from __future__ import annotations

from courier.providers.common import ProviderKind
from courier.providers.email.base import EmailProvider

EMAIL: ProviderKind[EmailProvider] = ProviderKind("email", setting="email_provider")
