"""Attributes of messaging operations and the args of each operation type."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, WriteAttributes

OPERATION_TYPE = "messaging-operations"
MOVE_GROUP = "move-group"
OPERATION_TYPES: tuple[str, ...] = (MOVE_GROUP,)
STATUSES: tuple[str, ...] = ("queued", "running", "completed", "failed")
MAX_CHANNELS = 1000

Status = Literal["queued", "running", "completed", "failed"]


def _unique(values: list[uuid.UUID]) -> list[uuid.UUID]:
    return list(dict.fromkeys(values))


class OperationRead(ReadAttributes):
    args: dict[str, Any] | None = Field(
        description="The operation's args: with include-args=true, and in the response to the "
        "POST that started it; null otherwise"
    )
    created_at: Timestamp
    created_by: uuid.UUID | None = Field(description="The API key that started the operation")
    last_modified_at: Timestamp
    logs: dict[str, Any] = Field(
        description='{"steps": [{"at", "channel-id", "result", ...}], "error"?: ...}'
    )
    organization_id: uuid.UUID
    status: Status
    type: str


class OperationCreate(WriteAttributes):
    type: Literal["move-group"]
    args: dict[str, Any] = Field(
        description='move-group: {"from-individual-group-id", "to-individual-group-id", '
        '"channel-ids"?} (without channel-ids: every channel of the source group)'
    )
    organization_id: uuid.UUID | None = Field(
        default=None, description="The caller's organization (the default)"
    )


class MoveGroupArgs(BaseModel):
    """Move channels from one individual group to another; their subscribers follow."""

    model_config = ConfigDict(
        alias_generator=lambda name: name.replace("_", "-"), populate_by_name=True, extra="forbid"
    )

    from_individual_group_id: uuid.UUID
    to_individual_group_id: uuid.UUID
    channel_ids: (
        Annotated[
            list[uuid.UUID],
            Field(min_length=1, max_length=MAX_CHANNELS),
            AfterValidator(_unique),
        ]
        | None
    ) = None

    def stored(self) -> dict[str, Any]:
        """The args as stored and shown (kebab-case names, ids as strings)."""
        args: dict[str, Any] = {
            "from-individual-group-id": str(self.from_individual_group_id),
            "to-individual-group-id": str(self.to_individual_group_id),
        }
        if self.channel_ids is not None:
            args["channel-ids"] = [str(ident) for ident in self.channel_ids]
        return args
