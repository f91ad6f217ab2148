"""Number lookups: resolved once by a job (the sandbox from libphonenumber's metadata, Twilio
through Lookup v2) and cached per organization; ``reresolve`` looks up again."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from courier.domains.text_number_info import repository as repo
from courier.domains.text_number_info.schemas import NumberInfoCreate
from courier.jobs import enqueue
from courier.jsonapi.context import Context
from courier.jsonapi.documents import WriteAttributes
from courier.jsonapi.render import render_rows
from courier.jsonapi.resource import CrudService
from courier.models.text_number_info import TextNumberInfo

LOOKUP_JOB = "text-number-info.resolve"


class NumberInfoService(CrudService[TextNumberInfo]):
    async def create(self, ctx: Context, attrs: WriteAttributes) -> TextNumberInfo:
        assert isinstance(attrs, NumberInfoCreate)
        row = await repo.by_number(ctx.session, ctx.organization_id, attrs.number)
        if row is not None and row.status != "failed" and not attrs.reresolve:
            return row  # cached (or already being resolved)
        if row is None:
            row = TextNumberInfo(
                id=uuid.uuid4(), organization_id=ctx.organization_id, number=attrs.number
            )
            ctx.session.add(row)
        row.status, row.error = "pending", None
        await ctx.session.flush()
        await enqueue(
            ctx.session, LOOKUP_JOB, {"info_id": row.id}, organization_id=ctx.organization_id
        )
        return row

    async def present(self, ctx: Context, rows: Sequence[TextNumberInfo]) -> list[dict[str, Any]]:
        out = render_rows(self.spec.read_schema, rows)
        for row, attributes in zip(rows, out, strict=True):
            del attributes["type"]  # the line type, last on the wire (as it always was)
            attributes["type"] = row.line_type
        return out
