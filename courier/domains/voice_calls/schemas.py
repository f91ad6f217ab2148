"""Voice conferences, dial logs and surveys on the wire (docs/VOICE_CALLS.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from courier.core.types import Extended, Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes, kebab, not_nullable

CONFERENCE_TYPE = "voice-conferences"
DIAL_LOG_TYPE = "voice-dial-logs"
SURVEY_TYPE = "voice-surveys"

STATES = ("created", "running", "completed", "failed")
CALL_STATUSES = (
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "no-answer",
    "failed",
    "canceled",
)

STATE_DESCRIPTION = (
    "created (legs being dialled), running (a leg answered), completed (every leg ended after "
    "one answered) or failed (no leg answered, or placing the calls failed)"
)


class ConferenceRead(ReadAttributes):
    created_at: Timestamp
    created_by: uuid.UUID | None
    last_modified_at: Timestamp
    organization_id: uuid.UUID
    individual_id: uuid.UUID = Field(description="The individual dialled (their phone)")
    provider_id: uuid.UUID | None = Field(
        description="The care-team member (an individual) dialled into the same conference"
    )
    state: str = Field(description=STATE_DESCRIPTION, json_schema_extra={"enum": list(STATES)})
    started_at: Timestamp | None = Field(description="When the first leg answered")
    ended_at: Timestamp | None = Field(description="When the last leg ended")
    extended: dict[str, Any] = Field(description="Free-form data, copied onto each leg")


class ConferenceCreate(WriteAttributes):
    individual_id: uuid.UUID = Field(description="The individual to dial (needs a phone)")
    provider_id: uuid.UUID | None = Field(
        default=None,
        description="The care-team member (an individual with a phone) dialled too; default: "
        "the caller when it is an individual token of a provider, else nobody (the care team "
        "joins by browser with get-credentials)",
        json_schema_extra=not_nullable,
    )
    extended: Extended | None = Field(
        default=None,
        description="Free-form data (a JSON object up to 64 KiB), copied onto each leg",
        json_schema_extra=not_nullable,
    )


class CredentialsRead(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, serialize_by_alias=True)

    access_token: str = Field(description="A voice access token (JWT) for the conference")
    identity: str = Field(description="The client identity the token names")
    room: str = Field(description="The conference room the token is meant for")
    expires_at: Timestamp


class DialLogRead(ReadAttributes):
    created_at: Timestamp
    last_modified_at: Timestamp
    organization_id: uuid.UUID
    conference_id: uuid.UUID | None = Field(description="The conference this leg joins")
    survey_id: uuid.UUID | None = Field(description="The survey this call asks")
    individual_id: uuid.UUID = Field(description="Who was called")
    role: str = Field(
        description="individual, provider (a conference's legs) or survey",
        json_schema_extra={"enum": ["individual", "provider", "survey"]},
    )
    status: str = Field(
        description="The call's status as the provider reports it",
        json_schema_extra={"enum": list(CALL_STATUSES)},
    )
    direction: str = Field(description="outbound-api: Courier placed the call")
    call_sid: str | None = Field(description="The provider's call id")
    to_number: str
    from_number: str | None = Field(description="The organization's number it was placed from")
    call_duration: int | None = Field(description="Seconds from answer to hang-up")
    cost: str | None = Field(
        description="What the provider charged (a decimal, from its callback's Price), null "
        "when it did not say"
    )
    cost_unit: str | None = Field(description="The currency of cost (e.g. USD)")
    error_code: str | None
    answered_at: Timestamp | None
    ended_at: Timestamp | None
    extended: dict[str, Any]


class SurveyAnswer(BaseModel):
    model_config = ConfigDict(alias_generator=kebab, populate_by_name=True, serialize_by_alias=True)

    question: str = Field(description="The question's name")
    answer: Any = Field(description="The valid answer (a choice, number, keys or words); null")
    valid: bool = Field(description="False when every try was invalid or silent")
    given: str | None = Field(description="What was pressed or said last")
    attempts: int


class SurveyRead(ReadAttributes):
    created_at: Timestamp
    created_by: uuid.UUID | None
    last_modified_at: Timestamp
    organization_id: uuid.UUID
    individual_id: uuid.UUID
    spec: dict[str, Any]
    state: str = Field(
        description="created (being dialled), running (answered), completed (every question "
        "asked) or failed (not answered, or hung up before the end: result keeps the answers "
        "given)",
        json_schema_extra={"enum": list(STATES)},
    )
    result: list[SurveyAnswer] = Field(description="One entry per question asked, in order")
    failure: str | None = Field(description="Why it failed: hung-up, busy, no-answer, failed")
    started_at: Timestamp | None
    ended_at: Timestamp | None
    extended: dict[str, Any] = Field(description="Free-form data, copied onto the call's leg")


_TEXT = {"type": "string", "minLength": 1, "maxLength": 1000}
_WHOLE = {"type": "integer", "minimum": 0, "maximum": 1000000000}
SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The questions asked, in order (docs/VOICE_CALLS.md). Also checked beyond "
    "this schema, each problem a 422 naming it: min <= max, unique names, choices exclude "
    "min/max, min/max/digits for dtmf only, every dtmf choice `digits` keys long.",
    "required": ["questions"],
    "additionalProperties": False,
    "properties": {
        "greeting": _TEXT,
        "goodbye": _TEXT,
        "questions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 20,
            "items": {
                "type": "object",
                "required": ["prompt", "answer"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
                    "prompt": _TEXT,
                    "answer": {"type": "string", "enum": ["dtmf", "speech"]},
                    "choices": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 20,
                        "items": {"type": "string", "minLength": 1, "maxLength": 100},
                    },
                    "min": _WHOLE,
                    "max": _WHOLE,
                    "digits": {"type": "integer", "minimum": 1, "maximum": 20},
                    "retries": {"type": "integer", "minimum": 0, "maximum": 5, "default": 1},
                    "timeout": {"type": "integer", "minimum": 1, "maximum": 60, "default": 5},
                },
            },
        },
    },
}


class SurveyCreate(WriteAttributes):
    individual_id: uuid.UUID = Field(description="The individual to call (needs a phone)")
    spec: Annotated[dict[str, Any], WithJsonSchema(SPEC_SCHEMA)] = Field(
        description="The questions: {questions: [{name, prompt, answer: dtmf|speech, choices, "
        "min, max, digits, retries, timeout}], greeting, goodbye} (docs/VOICE_CALLS.md)"
    )
    extended: Extended | None = Field(
        default=None,
        description="Free-form data (a JSON object up to 64 KiB), copied onto the call's leg",
        json_schema_extra=not_nullable,
    )
