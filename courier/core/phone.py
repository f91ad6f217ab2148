"""Phone numbers in E.164, checked against the real numbering plan (libphonenumber)."""

from __future__ import annotations

from typing import Any

import phonenumbers

# The JSON Schema of an E.164 number: the shape as a pattern, and a format naming the rule a
# pattern cannot say (the number must exist in its country's numbering plan, as libphonenumber
# knows it). A client generating test data registers a strategy for these formats.
PHONE_FORMAT = "phone-e164"
PHONE_US_FORMAT = "phone-e164-us"
E164_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": PHONE_FORMAT,
    "pattern": r"^\+[1-9]\d{1,14}$",
    "example": "+14155552671",
}
E164_US_SCHEMA: dict[str, Any] = {
    "type": "string",
    "format": PHONE_US_FORMAT,
    "pattern": r"^\+1\d{10}$",
    "example": "+14155552671",
}


def check_e164(value: str, *, us_only: bool = False) -> str:
    if not isinstance(value, str) or not value.startswith("+"):
        raise ValueError("must be an E.164 phone number such as +14155552671")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("must be an E.164 phone number such as +14155552671") from exc
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if formatted != value or not phonenumbers.is_valid_number(number):
        raise ValueError("must be an E.164 phone number such as +14155552671")
    if us_only and phonenumbers.region_code_for_number(number) != "US":
        raise ValueError("must be a US phone number in E.164, such as +14155552671")
    return formatted
