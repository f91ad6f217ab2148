"""courier.core.bulk: many rows written (insert_rows) and updated (update_rows) in one statement,
the same compiled statement whatever the number of rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, select, update
from sqlalchemy.engine.interfaces import CacheStats

from courier.core.bulk import insert_rows, update_rows
from courier.core.tenancy import scoped
from courier.models.delivery import Delivery
from tests.conftest import Org

TABLE: Any = Delivery.__table__
NOW = datetime(2027, 1, 5, 12, 0, tzinfo=UTC)


@contextmanager
def statements(app: Any) -> Iterator[list[tuple[str, bool, Any]]]:
    """(SQL, executemany, compiled cache hit) of each statement the engine runs in the block."""
    ran: list[tuple[str, bool, Any]] = []
    engine = app.state.database.engine.sync_engine

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if "deliveries" in sql:
            ran.append((sql, many, context.cache_hit is CacheStats.CACHE_HIT))

    event.listen(engine, "after_cursor_execute", record)
    try:
        yield ran
    finally:
        event.remove(engine, "after_cursor_execute", record)


def delivery(org: uuid.UUID, attempt: uuid.UUID) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "organization_id": org,
        "channel": "apn",
        "resource_type": "bulk-test",
        "resource_id": uuid.uuid4(),
        "recipient": "device",
        "provider": "apn:sandbox",
        "attempt_id": attempt,
        "attempts": 1,
        "state": "sending",
        "rank": 2,
        "conflict": False,
        "created_at": NOW,
        "updated_at": NOW,
    }


async def test_update_rows_sets_each_rows_values_in_one_cached_statement(
    app: Any, org: Org
) -> None:
    organization = uuid.UUID(org.id)
    attempt, other = uuid.uuid4(), uuid.uuid4()
    rows = [delivery(organization, attempt) for _ in range(6)]
    stranger = delivery(organization, other)  # not this batch's attempt: left as it is
    async with app.state.database.engine.begin() as connection:
        await insert_rows(connection, TABLE, [*rows, stranger])

    def values(row: dict[str, Any]) -> dict[str, Any]:
        n = rows.index(row) if row in rows else 99
        return {"id": row["id"], "vendor_id": f"vendor-{n}", "sent_at": NOW + timedelta(seconds=n)}

    later = NOW + timedelta(minutes=1)
    with statements(app) as ran:
        for part in (rows[:2], rows[2:5], [stranger, *rows[5:]]):
            async with app.state.database.engine.begin() as connection:
                stmt = (
                    scoped(update(TABLE), Delivery, organization)
                    .where(TABLE.c.attempt_id == attempt)
                    .values(state="sent", updated_at=later)
                )
                await update_rows(connection, stmt, "id", [values(row) for row in part])

    # One statement per call whatever the batch (2, 3 and 2 rows), compiled once: the later
    # calls find it in the compiled cache.
    assert len(ran) == 3
    assert len({sql for sql, _many, _hit in ran}) == 1
    assert [hit for _sql, _many, hit in ran][1:] == [True, True]
    async with app.state.database.engine.connect() as connection:
        found = {
            row.id: row
            for row in await connection.execute(
                select(TABLE.c.id, TABLE.c.state, TABLE.c.vendor_id, TABLE.c.sent_at).where(
                    TABLE.c.resource_type == "bulk-test",
                    TABLE.c.organization_id == organization,  # tenancy-ok: Core, test
                )
            )
        }
    for n, row in enumerate(rows):
        got = found[row["id"]]
        assert (got.state, got.vendor_id) == ("sent", f"vendor-{n}")
        sent_at = got.sent_at if got.sent_at.tzinfo else got.sent_at.replace(tzinfo=UTC)
        assert sent_at == NOW + timedelta(seconds=n)
    untouched = found[stranger["id"]]
    assert (untouched.state, untouched.vendor_id, untouched.sent_at) == ("sending", None, None)
    async with app.state.database.engine.begin() as connection:  # other tests wait for sends
        await connection.execute(
            delete(TABLE).where(
                TABLE.c.resource_type == "bulk-test",
                TABLE.c.organization_id == organization,  # tenancy-ok: Core, test
            )
        )


async def test_update_rows_with_no_rows_runs_nothing(app: Any, org: Org) -> None:
    with statements(app) as ran:
        async with app.state.database.engine.begin() as connection:
            stmt = scoped(update(TABLE), Delivery, uuid.UUID(org.id)).values(state="sent")
            await update_rows(connection, stmt, "id", [])
    assert ran == []
