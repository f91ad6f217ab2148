"""Attributes of number lookups on the wire."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from courier.core.types import PhoneE164US, Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes


class NumberInfoRead(ReadAttributes):
    carrier_name: str | None
    created_at: Timestamp
    error: str | None
    last_modified_at: Timestamp
    mobile_country_code: str | None
    mobile_network_code: str | None
    number: str
    status: Literal["pending", "resolved", "failed"]
    type: str = Field(default="", description="Line type: mobile, landline, voip, toll-free")
    country: str | None


class NumberInfoCreate(WriteAttributes):
    number: PhoneE164US
    reresolve: StrictBool = Field(default=False, description="Look up again, ignoring the cache")
