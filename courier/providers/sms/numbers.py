"""Numbers and lookups of the sms kind: what provisioning, claiming and Lookup return, and the
sandbox's carrier-like answers built from libphonenumber's metadata.

Every sms adapter offers, besides sending (``base.py``)::

    async def provision_number(self, account: SmsAccount, area_code: str, sms_url: str)
        -> ProvisionedNumber          # buy a number in that area code, texts to it -> sms_url
    async def claim_number(self, account: SmsAccount, phone: str, sms_url: str)
        -> ProvisionedNumber          # a number already in the account
    async def lookup(self, account: SmsAccount, phone: str) -> NumberLookup

Errors are the kind's usual ones (``NotSent``, ``Ambiguous``, ``Permanent``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType, carrier, geocoder

from courier.providers.common import Permanent


@dataclass(frozen=True)
class SmsAccount:
    """Whose provider account to act in: None fields mean the installation's settings."""

    account_id: str | None = None
    auth_token: str | None = None


@dataclass(frozen=True)
class ProvisionedNumber:
    phone_number: str
    vendor_id: str
    capability_sms: bool
    capability_mms: bool
    capability_voice: bool
    lata: str | None = None
    rate_center: str | None = None
    region: str | None = None
    postal_code: str | None = None
    latitude: str | None = None
    longitude: str | None = None


@dataclass(frozen=True)
class NumberLookup:
    number: str
    line_type: str  # mobile, landline, voip, toll-free, unknown ...
    carrier_name: str | None
    country: str | None
    mobile_country_code: str | None
    mobile_network_code: str | None


# --- the sandbox's answers ---------------------------------------------------------------------

# Rate center, region, LATA, ZIP and coordinates of some area codes, for realistic sandbox
# numbers; elsewhere the region comes from libphonenumber's geocoder and the rest is unknown.
_AREA: dict[str, tuple[str, str, str, str, str, str]] = {
    "206": ("SEATTLE", "WA", "674", "98101", "47.6062", "-122.3321"),
    "212": ("NWYRCYZN01", "NY", "132", "10001", "40.7128", "-74.0060"),
    "213": ("LSAN DA 01", "CA", "730", "90012", "34.0522", "-118.2437"),
    "303": ("DENVER", "CO", "656", "80202", "39.7392", "-104.9903"),
    "305": ("MIAMI", "FL", "460", "33130", "25.7617", "-80.1918"),
    "312": ("CHICAGO", "IL", "358", "60601", "41.8781", "-87.6298"),
    "415": ("SNFC CNTRL", "CA", "722", "94103", "37.7749", "-122.4194"),
    "512": ("AUSTIN", "TX", "558", "78701", "30.2672", "-97.7431"),
    "617": ("BOSTON", "MA", "128", "02108", "42.3601", "-71.0589"),
    "646": ("NWYRCYZN01", "NY", "132", "10011", "40.7128", "-74.0060"),
    "702": ("LAS VEGAS", "NV", "721", "89101", "36.1699", "-115.1398"),
    "718": ("NWYRCYZN03", "NY", "132", "11201", "40.6782", "-73.9442"),
}

# Documented sandbox line types (docs/SMS.md): numbers ending in these four digits.
SANDBOX_LANDLINE_SUFFIX = "0199"
SANDBOX_VOIP_SUFFIX = "0198"
SANDBOX_LOOKUP_FAIL_SUFFIX = "0197"


def sandbox_number(area_code: str, taken: set[str], seed: str) -> ProvisionedNumber:
    """A valid, unused number in ``area_code`` with the capabilities of a US long code."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    for _ in range(500):
        exchange = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
        if exchange[1:] == "11" or exchange == "555":
            continue
        candidate = f"+1{area_code}{exchange}{rng.randint(0, 9999):04d}"
        parsed = phonenumbers.parse(candidate, None)
        if candidate in taken or not phonenumbers.is_valid_number(parsed):
            continue
        return _describe(candidate, "PN" + hashlib.sha256(candidate.encode()).hexdigest()[:32])
    raise Permanent("21422", f"no sandbox numbers are available in area code {area_code}")


def sandbox_claim(phone: str) -> ProvisionedNumber:
    return _describe(phone, "PN" + hashlib.sha256(phone.encode()).hexdigest()[:32])


def _describe(phone: str, vendor_id: str) -> ProvisionedNumber:
    parsed = phonenumbers.parse(phone, None)
    known = _AREA.get(phone[2:5]) if phone.startswith("+1") else None
    if known is None:
        place = geocoder.description_for_number(parsed, "en")  # "San Francisco, CA"
        city, _, region = place.rpartition(", ")
        known = (city.upper()[:10], region or place, "", "", "", "")
    rate_center, region, lata, postal, latitude, longitude = known
    return ProvisionedNumber(
        phone_number=phone,
        vendor_id=vendor_id,
        capability_sms=True,
        capability_mms=True,
        capability_voice=True,
        lata=lata or None,
        rate_center=rate_center or None,
        region=region or phonenumbers.region_code_for_number(parsed),
        postal_code=postal or None,
        latitude=latitude or None,
        longitude=longitude or None,
    )


_LINE_TYPES = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.SHARED_COST: "shared-cost",
}


def sandbox_lookup(phone: str) -> NumberLookup:
    """Line type, carrier and country from libphonenumber's metadata; magic suffixes choose
    landline, voip or a failed lookup."""
    if phone.endswith(SANDBOX_LOOKUP_FAIL_SUFFIX):
        raise Permanent("60600", "the sandbox carrier does not know this number")
    parsed = phonenumbers.parse(phone, None)
    country = phonenumbers.region_code_for_number(parsed)
    line_type = _LINE_TYPES.get(phonenumbers.number_type(parsed), "unknown")
    if phone.endswith(SANDBOX_LANDLINE_SUFFIX):
        line_type = "landline"
    elif phone.endswith(SANDBOX_VOIP_SUFFIX):
        line_type = "voip"
    name = carrier.name_for_number(parsed, "en") or (
        "Sandbox Wireless" if line_type == "mobile" else "Sandbox Telecom"
    )
    mcc = {"US": "310", "CA": "302", "GB": "234"}.get(country or "")
    return NumberLookup(
        number=phone,
        line_type=line_type,
        carrier_name=name,
        country=country,
        mobile_country_code=mcc if line_type == "mobile" else None,
        mobile_network_code="260" if mcc and line_type == "mobile" else None,
    )
