"""Schemathesis hooks of the standing fuzz run (``SCHEMATHESIS_HOOKS=tests.fuzz.hooks``).

The OpenAPI document names, as string formats, the rules a pattern cannot say: an E.164 number
must exist in its country's numbering plan (``phone-e164``, ``phone-e164-us``), a time zone is
an IANA name (``iana-time-zone``), an email address is one email-validator accepts. Positive
test data for those fields is drawn from what libphonenumber, the zone database and
email-validator know to be real, so a "valid" request the server refuses is a real finding;
negative testing still sends arbitrary strings.
"""

from __future__ import annotations

import contextlib
import zoneinfo

import phonenumbers
import schemathesis
from hypothesis import strategies as st

from courier.core.phone import PHONE_FORMAT, PHONE_US_FORMAT
from courier.core.time import check_timezone
from courier.core.types import TIME_ZONE_FORMAT
from courier.domains.people.schemas import check_email


def _numbers(regions: list[str]) -> list[str]:
    out = []
    for region in regions:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                out.append(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return sorted(set(out))


US = _numbers(["US"]) + [f"+1415555{n:04d}" for n in range(2671, 2691)]
WORLD = US + _numbers(["CA", "GB", "DE", "FR", "IN", "AU", "BR", "JP", "MX", "ZA"])

schemathesis.openapi.format(PHONE_FORMAT, st.sampled_from(WORLD))
schemathesis.openapi.format(PHONE_US_FORMAT, st.sampled_from(US))


def _zones() -> list[str]:
    out = []
    for name in sorted(zoneinfo.available_timezones()):
        with contextlib.suppress(ValueError):  # e.g. "localtime", "Factory": not places
            out.append(check_timezone(name))
    return out


schemathesis.openapi.format(TIME_ZONE_FORMAT, st.sampled_from(_zones()))


def _deliverable_shape(address: str) -> bool:
    try:
        check_email(address)
    except ValueError:
        return False
    return True


# `format: email` as Courier reads it (email-validator: RFC 5322 syntax, and no special-use
# domain such as .test or .local, which can never receive mail).
schemathesis.openapi.format("email", st.emails().filter(_deliverable_shape))
