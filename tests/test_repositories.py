"""Issue 9, point 4: each domain's SQL lives once, in its ``repository.py``. A static check:
``select(``, ``update(``, ``delete(`` and ``insert(`` (imported from SQLAlchemy, its dialects
included) are not called in any module of ``courier/domains/*`` but its ``repository.py``:
services, endpoints, jobs, purge hooks, renderers, middleware all call the repository's
named, tenant-scoped functions."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import httpx

import courier
from tests.conftest import Org, doc
from tests.factories import make_individual_id

DOMAINS = Path(courier.__file__).resolve().parent / "domains"
STATEMENTS = frozenset({"select", "update", "delete", "insert"})
# Every module of every domain is checked but this one (by file name).
CHECKED_EVERYWHERE_BUT = ("repository.py",)


def statement_calls(path: Path) -> list[int]:
    """The lines of ``path`` that call SQLAlchemy's statement constructors."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()  # select, or what it was imported as
    modules: set[str] = set()  # e.g. ``postgresql`` of ``from sqlalchemy.dialects import ...``
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in STATEMENTS:
                    names.add(alias.asname or alias.name)
                elif node.module == "sqlalchemy.dialects":
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sqlalchemy"):
                    modules.add((alias.asname or alias.name).split(".")[0])
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        by_name = isinstance(func, ast.Name) and func.id in names
        by_module = (
            isinstance(func, ast.Attribute)
            and func.attr in STATEMENTS
            and isinstance(func.value, ast.Name)
            and func.value.id in modules
        )
        if by_name or by_module:
            lines.append(node.lineno)
    return sorted(lines)


def checked_modules() -> list[Path]:
    return [
        path for path in sorted(DOMAINS.rglob("*.py")) if path.name not in CHECKED_EVERYWHERE_BUT
    ]


def building_statements() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in checked_modules():
        lines = statement_calls(path)
        if lines:
            found[path.relative_to(DOMAINS).as_posix()] = lines
    return found


def test_domains_leave_sql_to_the_repository() -> None:
    found = building_statements()
    assert not found, (
        "SQL belongs in the domain's repository.py (tenant-scoped named functions the other "
        f"modules call); statements built at: {found}"
    )


def test_the_check_covers_every_kind_of_module() -> None:
    checked = {path.relative_to(DOMAINS).as_posix() for path in checked_modules()}
    # services and endpoints, and the rest: renderers, jobs, hooks, middleware
    for module in (
        "announcers/service.py",
        "inbox/endpoints.py",
        "messaging/posting.py",
        "messaging/sms.py",
        "inbox/views.py",
        "announcers/triggers.py",
        "sniffers/recorder.py",
        "texts/purge.py",
        "alexa/jobs.py",
        "aggregations/columns.py",
    ):
        assert module in checked
    assert not any(name.endswith("/repository.py") for name in checked)


def test_the_check_sees_statements(tmp_path: Path) -> None:
    sample = tmp_path / "service.py"
    sample.write_text(
        "from sqlalchemy import select as sel, update\n"
        "from sqlalchemy.dialects import postgresql\n"
        "import sqlalchemy as sa\n"
        "a = sel(1)\nb = update(t)\nc = postgresql.insert(t)\nd = sa.delete(t)\n"
        "e = {}.update(x=1)\n",
        encoding="utf-8",
    )
    assert statement_calls(sample) == [4, 5, 6, 7]


# --- one require_individuals, each caller's errors as before ---------------------------------


async def test_unknown_individuals_named_as_each_endpoint_did(
    client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    mine = await make_individual_id(client, org)
    first, second = str(uuid.uuid4()), await make_individual_id(client, other_org)

    # A channel names the first unknown id and how many more.
    channel = await client.post(
        "/v1/messaging-channels/",
        headers=org.staff,
        json=doc("messaging-channels", {"individual-ids": [mine, first, second]}),
    )
    assert channel.status_code == 404
    assert channel.json()["errors"] == [
        {
            "code": "not-found",
            "detail": f"individual-ids names no individual of this organization: {first}"
            " (and 1 more)",
            "source": {"pointer": "/data/attributes/individual-ids"},
            "status": "404",
            "title": "Not Found",
        }
    ]

    # An aggregation request: one error per unknown entry, each at its own entry.
    entries = [
        {"column": "unread-count", "individual-id": ident} for ident in (first, mine, second)
    ]
    aggregation = await client.post(
        "/v1/aggregation-requests/",
        headers=org.staff,
        json=doc("aggregation-requests", {"entries": entries}),
    )
    assert aggregation.status_code == 404
    body = aggregation.json()
    assert body["message"] == [
        "entries[0].individual-id names no individual of this organization",
        "entries[2].individual-id names no individual of this organization",
    ]
    assert [e["source"]["pointer"] for e in body["errors"]] == [
        "/data/attributes/entries/0/individual-id",
        "/data/attributes/entries/2/individual-id",
    ]

    # A group: the first unknown member only.
    group = await client.post(
        "/v1/individual-groups/",
        headers=org.admin,
        json=doc("individual-groups", {"name": "Ward", "individual-ids": [mine, second, first]}),
    )
    assert group.status_code == 404
    (error,) = group.json()["errors"]
    assert error["detail"] == f"individual-ids names no individual of this organization: {second}"
    assert error["source"] == {"pointer": "/data/attributes/individual-ids"}
