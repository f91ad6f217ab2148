"""Where the sandbox providers keep the outside world: the ``sandbox_records`` table.

The embedded default runs the API and the worker in one process, but ``courier worker`` and
``courier sandbox`` run in others: a number provisioned by a job, a message a phone received,
a failure armed from the CLI must be seen by all of them, so nothing lives only in memory.
Records are (kind, collection, key) → a small JSON object; no transaction is held while a
sandbox calls back into Courier.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from sqlalchemy import and_, delete, or_, select

from courier.config import Settings
from courier.core import outbound
from courier.core.bulk import insert_rows
from courier.core.db import Database
from courier.core.time import utcnow
from courier.models.delivery import SandboxRecord
from courier.providers.common import (
    SANDBOX_SIGNATURE_HEADER,
    providers_for,
    public_base,
    sandbox_signature,
    sandbox_signing_key,
)

log = logging.getLogger("courier.providers.sandbox")

CLOSE_GRACE_SECONDS = 2.0


class SandboxStore:
    """The records of one sandbox kind, through the sandboxes' database engine (one per
    process and settings: :meth:`~courier.providers.common.Providers.sandbox_database`)."""

    def __init__(self, settings: Settings, kind: str) -> None:
        self.settings = settings
        self.kind = kind
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def database(self) -> Database:
        return providers_for(self.settings).sandbox_database()

    async def put(self, collection: str, key: str, data: dict[str, Any]) -> None:
        now = utcnow()
        async with self.database.sessionmaker() as session:
            session.add(
                SandboxRecord(
                    id=uuid.uuid4(),
                    kind=self.kind,
                    collection=collection,
                    key=key,
                    data=data,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.commit()

    async def put_many(self, collection: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        """:meth:`put` for many ``(key, data)`` records in one statement and one transaction:
        all of them are written, or none."""
        if not items:
            return
        now = utcnow()
        table: Any = SandboxRecord.__table__
        rows = [
            {
                "id": uuid.uuid4(),
                "kind": self.kind,
                "collection": collection,
                "key": key,
                "data": data,
                "created_at": now,
                "updated_at": now,
            }
            for key, data in items
        ]
        async with self.database.sessionmaker() as session:
            # One statement whatever the count (PostgreSQL: ``INSERT ... SELECT FROM unnest``),
            # not one INSERT per record.
            await insert_rows(await session.connection(), table, rows)
            await session.commit()

    async def get(self, collection: str, key: str) -> dict[str, Any] | None:
        found = await self.all(collection, key)
        return found[-1] if found else None

    async def all(self, collection: str, key: str | None = None) -> list[dict[str, Any]]:
        """The records of ``collection`` (with ``key``), oldest first."""
        stmt = select(SandboxRecord.data).where(
            SandboxRecord.kind == self.kind, SandboxRecord.collection == collection
        )
        if key is not None:
            stmt = stmt.where(SandboxRecord.key == key)
        async with self.database.sessionmaker() as session:
            rows = (await session.execute(stmt.order_by(SandboxRecord.created_at))).scalars()
            found = [dict(row) for row in rows]
            await session.commit()
        return found

    async def find(self, collection: str, field: str, value: str) -> list[dict[str, Any]]:
        """The records of ``collection`` whose ``data[field]`` is ``value``, oldest first
        (a lookup by something other than the key, e.g. a push by its delivery id)."""
        stmt = select(SandboxRecord.data).where(
            SandboxRecord.kind == self.kind,
            SandboxRecord.collection == collection,
            SandboxRecord.data[field].as_string() == value,
        )
        async with self.database.sessionmaker() as session:
            rows = (await session.execute(stmt.order_by(SandboxRecord.created_at))).scalars()
            found = [dict(row) for row in rows]
            await session.commit()
        return found

    async def any_of(self, wanted: list[tuple[str, str]]) -> bool:
        """Whether any record ``(collection, key)`` of ``wanted`` exists: one statement, so a
        send can skip the lookups of armed behaviours when none is armed (the common case)."""
        stmt = (
            select(SandboxRecord.id)
            .where(
                SandboxRecord.kind == self.kind,
                or_(
                    *(
                        and_(SandboxRecord.collection == collection, SandboxRecord.key == key)
                        for collection, key in wanted
                    )
                ),
            )
            .limit(1)
        )
        async with self.database.sessionmaker() as session:
            found = (await session.execute(stmt)).first() is not None
            await session.commit()
        return found

    async def present(self, wanted: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which records ``(collection, key)`` of ``wanted`` exist, in one statement (a batch
        of sends looks up their armed behaviours at once)."""
        if not wanted:
            return set()
        stmt = (
            select(SandboxRecord.collection, SandboxRecord.key)
            .where(
                SandboxRecord.kind == self.kind,
                SandboxRecord.collection.in_({collection for collection, _key in wanted}),
                SandboxRecord.key.in_({key for _collection, key in wanted}),
            )
            .distinct()
        )
        async with self.database.sessionmaker() as session:
            found = {(row.collection, row.key) for row in await session.execute(stmt)}
            await session.commit()
        return found & set(wanted)

    async def merge(self, collection: str, key: str, changes: dict[str, Any]) -> None:
        """Update the fields of the record(s) ``key`` of ``collection``."""
        async with self.database.sessionmaker() as session:
            stmt = select(SandboxRecord).where(
                SandboxRecord.kind == self.kind,
                SandboxRecord.collection == collection,
                SandboxRecord.key == key,
            )
            for record in (await session.execute(stmt)).scalars():
                record.data = {**record.data, **changes}
                record.updated_at = utcnow()
            await session.commit()

    async def take(self, collection: str, key: str) -> dict[str, Any] | None:
        """Remove and return the oldest record ``key`` (armed one-shot behaviours): exactly one
        sender takes it, whichever process it runs in."""
        async with self.database.sessionmaker() as session:
            stmt = (
                select(SandboxRecord)
                .where(
                    SandboxRecord.kind == self.kind,
                    SandboxRecord.collection == collection,
                    SandboxRecord.key == key,
                )
                .order_by(SandboxRecord.created_at)
                .limit(1)
            )
            record = (await session.execute(stmt)).scalars().first()
            if record is None:
                await session.commit()
                return None
            taken = (
                await session.execute(
                    delete(SandboxRecord)
                    .where(SandboxRecord.id == record.id)
                    .execution_options(synchronize_session=False)
                )
            ).rowcount  # type: ignore[attr-defined]
            await session.commit()
            return dict(record.data) if taken else None

    async def remove(self, collection: str, key: str) -> int:
        async with self.database.sessionmaker() as session:
            removed = (
                await session.execute(
                    delete(SandboxRecord).where(
                        SandboxRecord.kind == self.kind,
                        SandboxRecord.collection == collection,
                        SandboxRecord.key == key,
                    )
                )
            ).rowcount  # type: ignore[attr-defined]
            await session.commit()
        return int(removed)

    # --- calling back into Courier ---------------------------------------------------------

    def allowed(self, url: str) -> bool:
        """A sandbox calls only this Courier (its public base), never another host."""
        return url.startswith(public_base(self.settings) + "/")

    async def post(
        self, url: str, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> int:
        """POST a signed webhook to ``url``; the HTTP status (0 when it could not be sent)."""
        if not self.allowed(url):
            raise ValueError(f"the sandbox only calls {public_base(self.settings)}")
        headers = {
            "Content-Type": content_type,
            SANDBOX_SIGNATURE_HEADER: sandbox_signature(
                sandbox_signing_key(self.settings), url, body
            ),
            "User-Agent": f"courier-sandbox-{self.kind}",
            **(extra or {}),
        }
        import httpx  # on first use (the client is built on first use too)

        try:
            async with outbound.client(timeout=10.0) as client:
                response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("sandbox webhook not delivered", extra={"error": type(exc).__name__})
            return 0
        return response.status_code

    def later(self, work: Any) -> None:
        """Run ``work`` (a coroutine) in the background of this process, keeping a reference."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until the background work started so far is done (tests, the CLI)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace_seconds: float = CLOSE_GRACE_SECONDS) -> None:
        """At shutdown: let the callbacks in flight finish for a moment, then cancel the rest
        (as a vendor's, a sandbox's callback may be lost when Courier stops; the sandbox
        records say what happened)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        while self._tasks:  # callbacks may start others (a reply after a status)
            remaining = deadline - loop.time()
            if remaining > 0:
                await asyncio.wait(list(self._tasks), timeout=remaining)
                continue
            pending = list(self._tasks)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class SandboxAdapter:
    """What every sandbox adapter shares: its :class:`SandboxStore` (``self.store``), closed
    with the process's adapters."""

    store: SandboxStore

    async def close(self) -> None:
        await self.store.close()


__all__ = ["SandboxAdapter", "SandboxStore"]
