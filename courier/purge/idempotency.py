"""Purging an individual from the idempotency store.

A stored response is replayed for 24 hours and may hold the person's data (the response that
created or changed them). Deleted: the keys of their own access tokens, and every stored
response that names their id. A client retrying such a request afterwards runs it again, which
is what it would see once the 24 hours had passed.
"""

from __future__ import annotations

import uuid

from sqlalchemy import LargeBinary, bindparam, delete, or_, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from courier.models.idempotency_key import IdempotencyKey
from courier.purge import ArchiveWriter, purge_hook


@purge_hook("individual", name="idempotency-keys")
async def purge_idempotency_keys(
    session: AsyncSession,
    organization_id: uuid.UUID,
    individual_id: uuid.UUID,
    archive: ArchiveWriter | None,
) -> dict[str, int]:
    # Not a tenant table (the master key has keys too): ids are unique across organizations,
    # so matching on the individual's id cannot touch another organization's rows.
    dialect = session.get_bind().dialect.name
    contains = (
        "position(:needle in idempotency_keys.response_body) > 0"
        if dialect == "postgresql"
        else "instr(idempotency_keys.response_body, :needle) > 0"
    )
    condition = or_(
        IdempotencyKey.scope == f"individual:{individual_id}",
        text(contains).bindparams(
            bindparam("needle", str(individual_id).encode("ascii"), type_=LargeBinary)
        ),
    )
    # Stored responses are not archived: they are copies of rows the other hooks archive.
    result = await session.execute(
        delete(IdempotencyKey).where(condition).execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return {"idempotency_keys": int(result.rowcount or 0)}
