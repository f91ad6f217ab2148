from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from courier.core.types import Timestamp
from courier.domains.org_preferences.service import PREFERENCES
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

TYPE_NAME = "org-preferences"
VALUE_TYPE: Literal["json"] = "json"
_NAME_CHOICES: list[JsonValue] = [*sorted(PREFERENCES)]

_VALUE_JS_SCHEMA: dict[str, Any] = {
    "description": "The typed value: a string for default-channel-title, "
    "email-unsubscribe-url, initial-sms-message, locale and sms-message-link; a boolean for "
    "alexa-read-message-text, group-provider-ack and sms-phi-safe; an integer for "
    "console-idle-timeout-seconds (60 to 43200)",
    "anyOf": [{"type": "string"}, {"type": "boolean"}, {"type": "integer"}],
}


class OrgPreferenceRead(ReadAttributes):
    name: str = Field(json_schema_extra={"enum": _NAME_CHOICES})
    type: Literal["json"] = Field(
        default=VALUE_TYPE,
        description="How the value is carried: value-js holds it as typed JSON",
    )
    value: str = Field(description="The value as text ('true'/'false' for a boolean)")
    value_js: bool | int | str = Field(json_schema_extra=_VALUE_JS_SCHEMA)
    organization_id: uuid.UUID
    created_at: Timestamp = Field(
        description="When the current value was set; for a default, when the organization was "
        "created"
    )
    explicit: bool = Field(description="False while the organization uses the default")


class OrgPreferenceSet(WriteAttributes):
    name: str = Field(json_schema_extra={"enum": _NAME_CHOICES})
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's own organization (the only one it may name)"
    )
    type: str = Field(default=VALUE_TYPE, json_schema_extra={"enum": [VALUE_TYPE]})
    value: str | None = Field(
        default=None, description="The value as text; give this or value-js (or both, agreeing)"
    )
    value_js: Any = Field(default=None, json_schema_extra=_VALUE_JS_SCHEMA)

    @field_validator("name")
    @classmethod
    def _known_name(cls, name: str) -> str:
        if name not in PREFERENCES:
            raise ValueError("must be one of " + ", ".join(sorted(PREFERENCES)))
        return name

    @field_validator("type")
    @classmethod
    def _json_type(cls, value: str) -> str:
        if value != VALUE_TYPE:
            raise ValueError(f"must be {VALUE_TYPE}")
        return value


class OrgPreferenceSetData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(examples=[TYPE_NAME])
    attributes: OrgPreferenceSet


class OrgPreferenceSetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: OrgPreferenceSetData
    meta: dict[str, Any] = Field(default_factory=dict)
