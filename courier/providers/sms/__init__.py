"""SMS providers: ``base.py`` (the Protocol), ``sandbox.py`` (the default twin)."""

from courier.providers.sms import sandbox as sandbox
from courier.providers.sms.base import NumberLookup, ProvisionedNumber, SmsMessage, SmsProvider
from courier.providers.sms.kind import SMS

SMS.adapter_in("twilio", "courier.providers.sms.twilio:TwilioSms")  # imported when first built

__all__ = ["SMS", "NumberLookup", "ProvisionedNumber", "SmsMessage", "SmsProvider"]
