from __future__ import annotations

import uuid

from pydantic import Field

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

MAX_DAYS = 7


class SnifferRead(ReadAttributes):
    created_time: Timestamp
    user_id: uuid.UUID | None = Field(
        description="The user whose individual access tokens' requests are recorded"
    )
    api_key_id: uuid.UUID | None = Field(description="The API key whose requests are recorded")
    valid_until: Timestamp = Field(description="Recording stops at this time")
    active: bool = Field(description="Recording now (valid-until not yet passed)")


class SnifferCreate(WriteAttributes):
    user_id: uuid.UUID | None = Field(
        default=None,
        description="Record every request made with an individual access token of this user's "
        "primary individual",
    )
    api_key_id: uuid.UUID | None = Field(
        default=None, description="Record every request made with this API key itself"
    )
    valid_until: Timestamp = Field(
        description=f"When recording stops: in the future, at most {MAX_DAYS} days ahead"
    )


class SnifferLogRead(ReadAttributes):
    body: str = Field(description="The request body (secrets redacted, at most 8 KiB)")
    content_type: str | None = Field(alias="content_type", description="Of the request body")
    created_time: Timestamp = Field(description="When the request arrived")
    message: str = Field(description="One line: method, path, status and duration")
    method: str
    path: str
    query_string: str = Field(description="Secret-named parameters redacted")
    request_id: str | None = Field(description="The X-Request-Id of the request")
    response: str = Field(description="The response body (secrets redacted, at most 8 KiB)")
    response_content_type: str | None
    status_code: int
    trace_id: str | None = Field(description="From the W3C traceparent header, if any")
    user_agent: str | None
    duration_ms: int = Field(description="Time to the end of the response, in milliseconds")
