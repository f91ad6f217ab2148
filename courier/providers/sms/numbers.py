"""What a carrier tells about a number it provisions, for the sandbox: rate center, region,
LATA, ZIP and coordinates for some area codes, else the region from libphonenumber's geocoder."""

from __future__ import annotations

import hashlib

import phonenumbers

from courier.providers.sms.base import ProvisionedNumber

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


def describe_number(phone: str) -> ProvisionedNumber:
    """A sandbox number as a carrier describes it (with a stable PN... sid)."""
    parsed = phonenumbers.parse(phone, None)
    country = phonenumbers.region_code_for_number(parsed) or "US"
    known = _AREA.get(phone[2:5]) if phone.startswith("+1") else None
    if known is None:
        # Imported here: libphonenumber's geocoder loads ~100 MB of place names.
        from phonenumbers import geocoder

        place = geocoder.description_for_number(parsed, "en")  # "San Francisco, CA"
        city, _, region = place.rpartition(", ")
        known = (city.upper()[:10], region or place, "", "", "", "")
    rate_center, region, lata, postal, latitude, longitude = known
    return ProvisionedNumber(
        number=phone,
        country=country,
        capabilities={"sms": True, "mms": country in ("US", "CA"), "voice": True},
        vendor_id="PN" + hashlib.sha256(phone.encode()).hexdigest()[:32],
        lata=lata or None,
        rate_center=rate_center or None,
        region=region or country,
        postal_code=postal or None,
        latitude=latitude or None,
        longitude=longitude or None,
    )
