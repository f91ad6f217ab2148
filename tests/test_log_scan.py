"""No log line, at any level, carries patient data: bodies, query values, bound parameters or
a driver's error text. Markers are seeded in every field of an individual, in filters, in
invalid input and in a failing statement; every captured record is rendered by the production
formatter (courier.core.observability.JsonFormatter) and scanned for them."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request
from sqlalchemy import text

from courier.app import create_app
from courier.core.observability import DATA_LOGGERS, JsonFormatter, configure_logging
from tests.conftest import Org, create_org, doc, make_settings

MARK = "zqx" + uuid.uuid4().hex[:12]
PHONE = f"+1415555{random.randint(1000, 9999)}"
BIRTH_DATE = "1931-07-13"


def marked(field: str) -> str:
    return f"{MARK}-{field}"


@pytest.fixture
async def logged_app(
    database_url: str, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[httpx.AsyncClient]:
    # The production configuration at its most verbose (COURIER_LOG_LEVEL=DEBUG), set before
    # the engine exists (it decides then whether to log statements); pytest's capturing
    # handler listens beside the production one.
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    levels = {name: logging.getLogger(name).level for name in (*DATA_LOGGERS, "sqlalchemy")}
    configure_logging("DEBUG")
    root.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    app = create_app(make_settings(database_url, data_dir))

    async def failing_statement(request: Request) -> None:
        """A statement the database refuses, with a marker among its bound values (on
        PostgreSQL the driver's message quotes the value; the statement's carries all)."""
        database = request.app.state.database
        async with database.sessionmaker() as session:
            if database.is_sqlite:
                row = {"id": str(uuid.uuid4()), "name": marked("statement")}
                await session.execute(
                    text("INSERT INTO organizations (id, name) VALUES (:id, :name)"), row
                )
                await session.execute(
                    text("INSERT INTO organizations (id, name) VALUES (:id, :name)"), row
                )
            else:
                await session.execute(text("SELECT CAST(:v AS integer)"), {"v": marked("cast")})

    app.add_api_route("/v1/test-failing-statement/", failing_statement, methods=["POST"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://courier.test") as http:
            try:
                yield http
            finally:
                root.handlers[:], _ = saved
                root.setLevel(saved[1])
                for name, level in levels.items():
                    logging.getLogger(name).setLevel(level)


async def seed(http: httpx.AsyncClient, org: Org) -> dict[str, Any]:
    attributes = {
        "first-name": marked("first"),
        "last-name": marked("last"),
        "preferred-name": marked("preferred"),
        "birth-date": BIRTH_DATE,
        "email": f"{marked('email')}@example.com",
        "phone": PHONE,
        "locale": "en-US",
        "extended": {"mrn": marked("extended"), marked("key"): [marked("nested")]},
    }
    created = await http.post(
        "/v1/individuals/", json=doc("individuals", attributes), headers=org.admin
    )
    assert created.status_code == 201, created.text
    ident = created.json()["data"]["id"]
    updated = await http.patch(
        f"/v1/individuals/{ident}/",
        json=doc("individuals", {"last-name": marked("patched")}, ident),
        headers=org.admin,
    )
    assert updated.status_code == 200, updated.text
    listed = await http.get(
        "/v1/individuals/", params={"filter[name]": marked("filter")}, headers=org.admin
    )
    assert listed.status_code in (200, 400), listed.text
    return created.json()["data"]


async def test_no_marker_reaches_a_log_line(
    logged_app: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    http = logged_app
    org = await create_org(http)
    individual = await seed(http, org)
    assert individual["attributes"]["first-name"] == marked("first")  # the data went in

    # Invalid input of every kind, each carrying a marker.
    refused = [
        await http.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": marked("bad"), "phone": marked("phone")}),
            headers=org.admin,
        ),
        await http.post(
            "/v1/individuals/",
            json=doc("individuals", {"first-name": marked("x"), "birth-date": marked("date")}),
            headers=org.admin,
        ),
        await http.post(
            "/v1/individuals/",
            content=b'{"data": {"attributes": {"first-name": "' + MARK.encode() + b'"',
            headers={**org.admin, "Content-Type": "application/json"},
        ),
        await http.get(f"/v1/individuals/?sort={marked('sort')}", headers=org.admin),
        await http.get(f"/v1/individuals/?page[offset]={marked('offset')}", headers=org.admin),
        await http.get(f"/v1/individuals/{marked('path')}/", headers=org.admin),
        await http.get(
            "/v1/audit-events/",
            params={"filter[cmp-occurred-at]": f">{marked('time')}"},
            headers=org.admin,
        ),
    ]
    assert all(400 <= r.status_code < 500 for r in refused), [r.text for r in refused]

    failed = await http.post("/v1/test-failing-statement/", json={"marker": marked("body")})
    assert failed.status_code == 500
    assert MARK not in failed.text

    formatter = JsonFormatter()
    rendered = [formatter.format(record) for record in caplog.records]
    assert any("unhandled error" in line for line in rendered), "the failure was logged"
    failure = next(line for line in rendered if "unhandled error" in line)
    assert "Traceback" in failure  # where it happened is still there, for the operator
    leaks = [line for line in rendered if MARK.lower() in line.lower()]
    leaks += [line for line in rendered if PHONE in line or BIRTH_DATE in line]
    assert leaks == []
