"""The sms kind: ``COURIER_SMS_PROVIDER`` picks its adapter (``sandbox`` by default)."""

from __future__ import annotations

from courier.providers.common import ProviderKind
from courier.providers.sms.base import SmsProvider

SMS: ProviderKind[SmsProvider] = ProviderKind("sms", setting="sms_provider")
