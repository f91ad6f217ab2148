"""Attributes of messaging plugins and the body of their expand action."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema

from courier.core.types import Timestamp
from courier.domains.messaging_plugins.types import type_names
from courier.jsonapi.actions import ActionBody
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

PLUGIN_TYPE = "messaging-plugins"
NAME_PATTERN = r"^[a-z0-9]{4,15}$"
_NAME = re.compile(NAME_PATTERN)


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be 4 to 15 lower-case letters or digits (^[a-z0-9]{4,15}$)")
    return value


PluginName = Annotated[
    str,
    AfterValidator(_name),
    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN, "minLength": 4, "maxLength": 15}),
]
PluginTypeName = Annotated[str, Field(max_length=64, json_schema_extra={"enum": type_names()})]
Args = Annotated[
    dict[str, Any], Field(description="The arguments of the plugin's type (see docs/PLUGINS.md)")
]


class PluginRead(ReadAttributes):
    args: dict[str, Any]
    created_at: Timestamp
    created_by: uuid.UUID | None = Field(description="The API key that created the plugin")
    enabled: bool
    last_modified_at: Timestamp
    last_modified_by: uuid.UUID | None = Field(description="The API key that last changed it")
    name: str
    organization_id: uuid.UUID
    type: str


class PluginCreate(WriteAttributes):
    name: PluginName
    type: PluginTypeName
    args: Args = Field(default_factory=dict)
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class PluginUpdate(WriteAttributes):
    name: PluginName | None = None
    type: PluginTypeName | None = None
    args: Args | None = None


class ExpandBody(ActionBody):
    """The channel to expand the plugin for, and (with an API key) on whose behalf."""

    channel_id: uuid.UUID
    individual_id: uuid.UUID | None = Field(
        default=None,
        description="The individual composing the message (an individual token: itself)",
    )


class ExpandRead(BaseModel):
    message: str
