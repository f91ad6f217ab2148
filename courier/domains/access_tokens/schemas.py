"""The ``access-tokens`` documents: a request names an individual, a response carries a token."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from courier.core.types import Timestamp, WholeNumber
from courier.jsonapi.documents import ReadAttributes, WriteAttributes


class AccessTokenCreate(WriteAttributes):
    individual_id: uuid.UUID = Field(description="The individual the token acts as")
    ttl_seconds: WholeNumber | None = Field(
        default=None,
        description="Lifetime in seconds, at most the server's COURIER_TOKEN_TTL_SECONDS "
        "(its default; 3600 unless configured)",
        json_schema_extra={"minimum": 1, "maximum": 3600},
    )


class AccessTokenData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(examples=["access-tokens"])
    attributes: AccessTokenCreate


class AccessTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: AccessTokenData
    meta: dict[str, Any] = Field(default_factory=dict)


class AccessTokenRead(ReadAttributes):
    token: str = Field(description="The bearer token: shown only in this response")
    individual_id: uuid.UUID
    expires_at: Timestamp
