from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, field_validator

from courier.core.types import Timestamp
from courier.jsonapi.documents import ReadAttributes, kebab


class AuditEventRead(ReadAttributes):
    occurred_at: Timestamp
    actor_type: str = Field(
        description="master, api-key, individual-token, console-user (a personal console "
        "login) or system"
    )
    actor_id: str = Field(
        description="The API key's id, the individual's id (of an individual token, or the "
        "care-team member a console login belongs to), or 'master'"
    )
    action: str = Field(description="What was done, e.g. created, updated, deleted")
    resource_type: str = Field(description="The JSON:API type of the resource changed")
    resource_id: uuid.UUID | None
    request_id: str | None = Field(description="The X-Request-Id of the request that made it")
    changed_fields: list[str] = Field(
        description="Names of the attributes the change set; their values are never kept"
    )

    @field_validator("changed_fields", mode="before")
    @classmethod
    def _names(cls, stored: Any) -> list[str]:
        # Stored as {"fields": [...]} with Python names; shown with the attribute names of the API.
        names = stored.get("fields", []) if isinstance(stored, dict) else stored or []
        return sorted({kebab(str(name)) for name in names})
