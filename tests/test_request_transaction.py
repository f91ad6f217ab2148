"""A request's one transaction (courier.jsonapi.context.request_session): committed once the
endpoint has returned, rolled back when it raised, a constraint broken at the commit a 409, and
the request's turn at the database given back in every case."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from fastapi import APIRouter, Depends
from sqlalchemy import func, insert, select

from courier.core.auth import Permission
from courier.core.db import before_commit
from courier.core.errors import invalid_attribute
from courier.jsonapi.context import Context, context_dependency
from courier.models.organization import Organization
from tests.conftest import Org


def _test_router() -> APIRouter:
    router = APIRouter()
    manage = Depends(context_dependency(Permission.MANAGE))

    @router.post("/v1/test-transactions/written/")
    async def written(name: str, ctx: Context = manage) -> dict[str, str]:
        ctx.session.add(Organization(name=name))
        return {"done": name}

    @router.post("/v1/test-transactions/written-then-refused/")
    async def refused(name: str, ctx: Context = manage) -> dict[str, str]:
        ctx.session.add(Organization(name=name))
        await ctx.session.flush()
        raise invalid_attribute("name", "refused after the write")

    @router.post("/v1/test-transactions/conflicting/")
    async def conflicting(name: str, taken: str, ctx: Context = manage) -> dict[str, str]:
        ctx.session.add(Organization(name=name))

        async def clash() -> None:  # breaks the primary key as the transaction commits
            values = {"id": uuid.UUID(taken), "name": name, "timezone": "UTC"}
            await ctx.session.execute(insert(Organization).values(values))

        before_commit(ctx.session, clash)
        return {"done": name}

    return router


async def _named(app: Any, name: str) -> int:
    async with app.state.database.sessionmaker() as session:
        found = select(func.count()).where(Organization.name == name)
        return int((await session.execute(found)).scalar_one())


async def test_commit_rollback_conflict_and_the_turn_given_back(app: Any, org: Org) -> None:
    app.include_router(_test_router())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:

        async def call(path: str, **params: str) -> httpx.Response:
            # A turn never given back would make the next request wait for ever (SQLite).
            async with asyncio.timeout(30):
                return await http.post(path, params=params, headers=org.admin)

        kept, refused, clashed = (f"tx-{kind}-{uuid.uuid4().hex[:8]}" for kind in "krc")
        response = await call("/v1/test-transactions/written-then-refused/", name=refused)
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["source"]["pointer"].endswith("/name")
        response = await call("/v1/test-transactions/conflicting/", name=clashed, taken=org.id)
        assert response.status_code == 409, response.text
        assert response.json()["errors"][0]["code"] == "integrity-conflict"
        response = await call("/v1/test-transactions/written/", name=kept)
        assert response.status_code == 200, response.text
        assert response.json() == {"done": kept}
        assert (
            await _named(app, kept),
            await _named(app, refused),
            await _named(app, clashed),
        ) == (
            1,
            0,
            0,
        )
        # Several at once: each commits its own, none waits on a turn left taken.
        names = [f"tx-many-{n}-{uuid.uuid4().hex[:6]}" for n in range(8)]
        answers = await asyncio.gather(
            *(call("/v1/test-transactions/written/", name=n) for n in names)
        )
        assert [a.status_code for a in answers] == [200] * 8
        assert [await _named(app, n) for n in names] == [1] * 8
