"""Phone numbers in E.164, checked against the real numbering plan (libphonenumber)."""

from __future__ import annotations

import phonenumbers


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
