"""The two steps of every upload, written once.

1. **Start** (``do_start_upload``): the kind's ``owner`` hook finds what the upload hangs on
   (404/409), the claimed type is checked (415), the parent's limits (409), and a pending row
   is made with an upload key valid ``attachment_upload_ttl_seconds``; the cleanup of its
   window is scheduled. The answer says where to upload (``answers.upload_started``).
2. **Process** (``process``): the uploaded bytes are inspected (``processing``): real type,
   allowlist, size (of one file, and with the parent's other files), a thumbnail for images.
   The row becomes ``ready``, or ``rejected`` with its file deleted; a refusal is recorded and
   then answered (not raised), so the request's session commits the rejection.

Each step says what it changed (a :class:`~courier.jsonapi.changes.Change`); ``start`` and
``process`` record it through the change path (``record_changes``: audit row and event).

A domain's service subclasses :class:`UploadService` with its kind and adds what is its own
(who sees what, the attributes it presents, removing).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select
from starlette.responses import Response

from courier.core.errors import conflict
from courier.core.handlers import JsonResponse, render_error
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.jsonapi.changes import Change, Changed, record_changes
from courier.jsonapi.context import Context
from courier.jsonapi.resource import CrudService
from courier.jsonapi.routes import render_one
from courier.models.upload import UploadColumns, UploadStatus
from courier.providers.storage import storage_for
from courier.uploads.answers import upload_started
from courier.uploads.inspection import Inspection
from courier.uploads.jobs import schedule_cleanup
from courier.uploads.kind import UploadKind, UploadRequest
from courier.uploads.limits import TOO_LARGE, ParentLimits, allowed_types, check_claimed_type
from courier.uploads.processing import Processed, process_object

M = TypeVar("M", bound=UploadColumns)


class UploadService(CrudService[M]):
    """The rules every upload resource shares; ``kind`` is its declaration."""

    def __init__(self, kind: UploadKind[M]) -> None:
        self.kind = kind

    def individuals_of(self, obj: M) -> Sequence[uuid.UUID]:
        """The individual the upload was made for, where the kind records one."""
        individual: uuid.UUID | None = getattr(obj, "individual_id", None)
        return (individual,) if individual else ()

    # --- step 1 --------------------------------------------------------------------------------

    async def start(self, ctx: Context, attrs: UploadRequest) -> Response:
        """A pending upload, and where to upload its file (201)."""
        started = await self.do_start_upload(ctx, attrs)
        record_changes(ctx, started.changes)
        return await upload_started(ctx, started.obj)

    async def do_start_upload(self, ctx: Context, attrs: UploadRequest) -> Changed[M]:
        kind, settings = self.kind, ctx.settings
        columns = await kind.owner(ctx, attrs)
        check_claimed_type(settings, attrs.content_type)
        if kind.limits is not None:
            await self._check_count(ctx, kind.limits(settings), columns[kind.parent.key])
        now = utcnow()
        ident = uuid.uuid4()
        values: dict[str, Any] = {
            "id": ident,
            "organization_id": ctx.organization_id,
            "created_by": ctx.principal.actor_id,
            "filename": attrs.filename,
            "claimed_content_type": attrs.content_type,
            "status": UploadStatus.PENDING.value,
            "upload_key": kind.keys.upload(ctx.organization_id, ident),
            "upload_expires_at": now + timedelta(seconds=settings.attachment_upload_ttl_seconds),
            "created_at": now,
            "last_modified_at": now,
        }
        if kind.removable:
            values["removed"] = False
        row = kind.model(**values, **columns)
        ctx.session.add(row)
        await ctx.session.flush()
        await schedule_cleanup(
            ctx.session, kind, settings, ctx.organization_id, row.upload_expires_at
        )
        return self.changed(ctx, "created", row, attrs.model_fields_set)

    # --- step 2 --------------------------------------------------------------------------------

    async def process(self, ctx: Context, row: M) -> Response:
        """The answer to ``process-upload`` of ``row`` (loaded for update): the upload as it
        is when already ready; else its verdict (201 ready; a refusal recorded and answered)."""
        if row.status == UploadStatus.READY.value and not self.kind.is_removed(row):
            return JsonResponse(await render_one(ctx, self.spec, row), status_code=201)
        self.check_processable(row)
        processed = await self.inspect_upload(ctx, row)
        if processed is None:
            raise conflict(
                "no file has been uploaded for this attachment yet: upload it to upload-url first",
                "upload-missing",
            )
        refusal = processed.inspection.refusal
        if refusal is not None:
            record_changes(ctx, [self.do_reject(ctx, row, processed)])
            return render_error(ctx.request, refusal.error())
        record_changes(ctx, [self.do_mark_ready(ctx, row, processed)])
        return JsonResponse(await render_one(ctx, self.spec, row), status_code=201)

    def check_processable(self, row: M) -> None:
        """A pending, not removed upload (a ready one is answered as it is, by the caller)."""
        if self.kind.is_removed(row):
            raise conflict("the attachment was removed", "removed")
        if row.status == UploadStatus.REJECTED.value:
            raise conflict(
                "the attachment was rejected when it was processed; start a new upload",
                "attachment-rejected",
            )

    async def inspect_upload(self, ctx: Context, row: M) -> Processed | None:
        """Process the uploaded object within the limits (None: nothing uploaded yet)."""
        kind, settings = self.kind, ctx.settings
        max_size = settings.attachment_max_bytes
        limits = kind.limits(settings) if kind.limits is not None else None
        if limits is not None:
            room = limits.max_total_bytes - await self._ready_bytes(ctx, row)
            max_size = min(max_size, max(room, 0))
        org, ident = row.organization_id, row.id
        processed = await process_object(
            storage_for(settings, base_url=str(ctx.request.base_url)),
            upload_key=row.upload_key,
            stored_key=kind.keys.file(org, ident),
            thumbnail_key_for=lambda media_type: kind.keys.thumbnail(org, ident, media_type),
            allowed=allowed_types(settings),
            max_size=max_size,
        )
        refusal = processed.inspection.refusal if processed is not None else None
        if (
            limits is not None
            and processed is not None
            and refusal is not None
            and refusal.code == TOO_LARGE
            and processed.size <= settings.attachment_max_bytes
        ):
            # It fits alone, not with the parent's other files: say so.
            processed = Processed(Inspection(None, limits.too_large), processed.size)
        return processed

    def do_mark_ready(self, ctx: Context, row: M, processed: Processed) -> Change:
        assert processed.stored_key is not None
        now = utcnow()
        row.status = UploadStatus.READY.value
        row.content_type = processed.inspection.content_type
        row.content_size = processed.size
        row.storage_key = processed.stored_key
        row.thumbnail_key = processed.stored_thumbnail
        row.processed_at = now
        row.last_modified_at = now
        if now > row.upload_expires_at:
            row.upload_key = None  # its window has closed: no upload can follow
        return self.change(ctx, "updated", row, self.kind.ready_fields)

    def do_reject(self, ctx: Context, row: M, processed: Processed) -> Change:
        """Record why the file was refused (processing has deleted it)."""
        assert processed.inspection.refusal is not None
        now = utcnow()
        row.status = UploadStatus.REJECTED.value
        row.rejection = processed.inspection.refusal.code
        row.content_type = processed.inspection.content_type
        row.content_size = processed.size
        row.processed_at = now
        row.last_modified_at = now
        if now > row.upload_expires_at:
            row.upload_key = None
        return self.change(ctx, "updated", row, self.kind.rejected_fields)

    # --- the parent's limits -------------------------------------------------------------------

    def _of_parent(self, parent_id: uuid.UUID) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [self.kind.parent == parent_id]
        if self.kind.removable:
            conditions.append(self.kind.model.removed.is_(False))  # type: ignore[attr-defined]
        return conditions

    async def _check_count(self, ctx: Context, limits: ParentLimits, parent_id: uuid.UUID) -> None:
        """Refuse one upload more than the parent may carry (rejected ones do not count)."""
        model = self.kind.model
        stmt = scoped(
            select(func.count())
            .select_from(model)
            .where(*self._of_parent(parent_id), model.status != UploadStatus.REJECTED.value),
            model,
            ctx.organization_id,
        )
        if int((await ctx.session.execute(stmt)).scalar_one()) >= limits.max_count:
            raise limits.too_many.error()

    async def _ready_bytes(self, ctx: Context, row: M) -> int:
        """The bytes of the parent's other ready files."""
        model = self.kind.model
        stmt = scoped(
            select(func.coalesce(func.sum(model.content_size), 0)).where(
                *self._of_parent(getattr(row, self.kind.parent.key)),
                model.status == UploadStatus.READY.value,
            ),
            model,
            ctx.organization_id,
        )
        return int((await ctx.session.execute(stmt)).scalar_one())
