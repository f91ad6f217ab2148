"""How upload resources are listed: ready files, and pending ones when asked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.jsonapi import query as q
from courier.jsonapi.context import Context
from courier.models.upload import UploadColumns, UploadStatus


def include_pending(model: type[UploadColumns]) -> q.Filter:
    """``filter[include-pending]``: lists show ready uploads, and pending ones with ``true``
    (rejected ones never)."""

    def apply(stmt: Select[Any], include: bool, _ctx: Context) -> Select[Any]:
        shown = [UploadStatus.READY.value]
        if include:
            shown.append(UploadStatus.PENDING.value)
        return stmt.where(model.status.in_(shown))

    return q.Filter(
        "filter[include-pending]",
        q.parse_bool,
        apply,
        "Also list attachments whose upload is not processed yet (default false)",
        schema={"type": "boolean", "default": False},
        default=False,
    )
