"""The tenancy guard refuses unscoped queries on tenant tables, and no code filters by hand.

ARCHITECTURE.md: every query on a tenant table goes through ``courier.core.tenancy.scoped`` (or
``unscoped`` with a reason); a hand-written ``Model.organization_id == ...`` would bypass the
guard's bookkeeping and is refused by the static check below. The other tenant tables of a
scoped statement (joins, subqueries) are narrowed with ``in_organization(Model, org_id)``; a line
that really needs a comparison of its own says why with a ``# tenancy-ok: reason`` comment.
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

import courier
from courier.core.tenancy import TenantScopeError, in_organization, scoped, unscoped
from courier.models.api_key import ApiKey
from courier.models.audit_event import AuditEvent
from courier.models.organization import Organization
from tests.conftest import Org

PACKAGE = Path(courier.__file__).resolve().parent
TENANCY_MODULE = PACKAGE / "core" / "tenancy.py"
ALLOW_MARKER = "tenancy-ok:"


@pytest.fixture
async def session(app: Any) -> AsyncIterator[AsyncSession]:
    async with app.state.database.sessionmaker() as db_session:
        yield db_session
        await db_session.rollback()


# --- the runtime guard -----------------------------------------------------------------------

UNSCOPED_STATEMENTS: dict[str, Callable[[uuid.UUID], Any]] = {
    "select": lambda org_id: select(ApiKey),
    "select with a hand-written filter": lambda org_id: select(ApiKey).where(
        ApiKey.organization_id == org_id
    ),
    "select of one column": lambda org_id: select(ApiKey.name),
    "count": lambda org_id: select(func.count()).select_from(ApiKey),
    "join": lambda org_id: select(Organization).join(
        ApiKey, ApiKey.organization_id == Organization.id
    ),
    "subquery": lambda org_id: select(Organization).where(
        Organization.id.in_(select(AuditEvent.organization_id))
    ),
    "update": lambda org_id: update(ApiKey).values(name="renamed"),
    "delete": lambda org_id: delete(AuditEvent),
}


@pytest.mark.parametrize("kind", list(UNSCOPED_STATEMENTS))
async def test_guard_refuses_unscoped_statements(
    session: AsyncSession, org: Org, kind: str
) -> None:
    stmt = UNSCOPED_STATEMENTS[kind](uuid.UUID(org.id))
    with pytest.raises(TenantScopeError):
        await session.execute(stmt)


async def test_guard_refuses_get_by_primary_key(session: AsyncSession, org: Org) -> None:
    with pytest.raises(TenantScopeError):
        await session.get(ApiKey, uuid.UUID(org.admin_key_id))


async def test_scoped_statements_pass_and_see_one_organization(
    session: AsyncSession, org: Org, other_org: Org
) -> None:
    org_id = uuid.UUID(org.id)
    keys = (await session.execute(scoped(select(ApiKey), ApiKey, org_id))).scalars().all()
    assert {key.organization_id for key in keys} == {org_id}
    assert {str(key.id) for key in keys} >= {org.admin_key_id}

    count = scoped(select(func.count()).select_from(ApiKey), ApiKey, org_id)
    assert (await session.execute(count)).scalar_one() == len(keys)

    renamed = scoped(
        update(ApiKey).where(ApiKey.role == "readonly").values(name="renamed"), ApiKey, org_id
    )
    assert (await session.execute(renamed)).rowcount == 1  # type: ignore[attr-defined]
    other = uuid.UUID(other_org.id)
    untouched = scoped(select(ApiKey.name).where(ApiKey.role == "readonly"), ApiKey, other)
    assert (await session.execute(untouched)).scalar_one() == "readonly key"

    removed = scoped(delete(AuditEvent), AuditEvent, org_id)
    assert (await session.execute(removed)).rowcount > 0  # type: ignore[attr-defined]
    left = scoped(select(func.count()).select_from(AuditEvent), AuditEvent, other)
    assert (await session.execute(left)).scalar_one() > 0


async def test_joined_tenant_tables_are_narrowed_with_in_organization(
    session: AsyncSession, org: Org, other_org: Org
) -> None:
    org_id = uuid.UUID(org.id)
    # Every audit row about a key, joined to that key: both tables narrowed to one organization.
    stmt = scoped(
        select(AuditEvent.id, ApiKey.organization_id).join(
            ApiKey, and_(ApiKey.id == AuditEvent.resource_id, in_organization(ApiKey, org_id))
        ),
        AuditEvent,
        org_id,
    )
    rows = (await session.execute(stmt)).all()
    assert len(rows) == 3  # the fixture's three keys
    assert {row[1] for row in rows} == {org_id}
    # The condition alone does not satisfy the guard: the statement must be scoped.
    with pytest.raises(TenantScopeError):
        await session.execute(select(ApiKey).where(in_organization(ApiKey, org_id)))


async def test_unscoped_statements_pass_with_a_reason(
    session: AsyncSession, org: Org, other_org: Org
) -> None:
    stmt = unscoped(select(ApiKey.organization_id), "test: read across organizations")
    organizations = set((await session.execute(stmt)).scalars().all())
    assert {uuid.UUID(org.id), uuid.UUID(other_org.id)} <= organizations
    with pytest.raises(ValueError):
        unscoped(select(ApiKey), "")


async def test_non_tenant_tables_need_no_scope(session: AsyncSession, org: Org) -> None:
    found = await session.execute(select(Organization).where(Organization.id == uuid.UUID(org.id)))
    assert found.scalar_one().name.startswith("Clinic ")


async def test_rows_loaded_through_a_scoped_query_can_be_changed(
    session: AsyncSession, org: Org
) -> None:
    stmt = scoped(select(ApiKey).where(ApiKey.role == "staff"), ApiKey, uuid.UUID(org.id))
    key = (await session.execute(stmt)).scalar_one()
    key.name = "changed through the unit of work"
    await session.flush()
    await session.refresh(key)  # a column load of a row already scoped: allowed
    assert key.name == "changed through the unit of work"
    assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


# --- the static check ------------------------------------------------------------------------

QUERY_METHODS = frozenset(
    {"where", "filter", "filter_by", "join", "outerjoin", "having", "and_", "or_", "on", "not_"}
)
COLUMN_METHODS = frozenset({"in_", "not_in", "notin_", "is_", "is_not", "isnot", "between"})


def _is_column(node: ast.AST) -> bool:
    """``Model.organization_id`` or ``table.c.organization_id``: a column, not a row's value."""
    if not (isinstance(node, ast.Attribute) and node.attr == "organization_id"):
        return False
    base = node.value
    if isinstance(base, ast.Attribute) and base.attr == "c":
        return True
    name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
    return bool(name) and name[0].isupper()


def _mentions_organization_id(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "organization_id"


def _is_other_column(node: ast.AST) -> bool:
    """``Organization.id``: a column of a model that is compared with some organization's id."""
    if not isinstance(node, ast.Attribute) or node.attr == "organization_id":
        return False
    name = getattr(node.value, "id", "")
    return bool(name) and name[0].isupper()


def _call_name(node: ast.Call) -> str:
    func_node = node.func
    if isinstance(func_node, ast.Attribute):
        return func_node.attr
    return getattr(func_node, "id", "")


class _TenantFilterFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.lines: list[int] = []
        self._query_depth = 0

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if name == "filter_by" and any(k.arg == "organization_id" for k in node.keywords):
            self.lines.append(node.lineno)
        if (
            name in COLUMN_METHODS
            and isinstance(node.func, ast.Attribute)
            and _is_column(node.func.value)
        ):
            self.lines.append(node.lineno)
        inside = name in QUERY_METHODS
        self._query_depth += inside
        self.generic_visit(node)
        self._query_depth -= inside

    def visit_Compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        # In a query, `model.organization_id == x` is a tenant filter even when `model` is a
        # variable; `Organization.id == principal.organization_id` is not (organizations are
        # the tenants themselves).
        in_query_filter = (
            self._query_depth > 0
            and any(_mentions_organization_id(o) for o in operands)
            and not any(_is_other_column(o) for o in operands)
        )
        if in_query_filter or any(_is_column(o) for o in operands):
            self.lines.append(node.lineno)
        self.generic_visit(node)


def hand_written_tenant_filters(source: str) -> list[int]:
    """Lines of ``source`` that compare ``organization_id`` in a query, unless marked ok."""
    finder = _TenantFilterFinder()
    finder.visit(ast.parse(source))
    lines = source.splitlines()
    return sorted({n for n in finder.lines if ALLOW_MARKER not in lines[n - 1]})


def _modules() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.resolve() != TENANCY_MODULE:
            yield path


def test_no_hand_written_tenant_filters_in_the_package() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in _modules()
        for line in hand_written_tenant_filters(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], (
        "filter tenant tables with courier.core.tenancy.scoped() (in_organization() for joined "
        "tables), not by hand: " + ", ".join(offenders)
    )


@pytest.mark.parametrize(
    "source",
    [
        "stmt = select(ApiKey).where(ApiKey.organization_id == org_id)",
        "stmt = select(ApiKey).where(org_id == ApiKey.organization_id)",
        "stmt = select(ApiKey).where(ApiKey.organization_id != org_id)",
        "stmt = select(ApiKey).where(ApiKey.organization_id.in_(ids))",
        "stmt = select(ApiKey).filter_by(organization_id=org_id)",
        "stmt = select(t).where(t.c.organization_id == org_id)",
        "stmt = select(m.Job).where(and_(m.Job.organization_id == org_id, m.Job.id == x))",
        "stmt = select(ApiKey).where(model.organization_id == ctx.organization_id)",
        "stmt = select(A).join(B, A.organization_id == B.organization_id)",
        "condition = ApiKey.organization_id == org_id",
    ],
)
def test_static_check_finds_hand_written_filters(source: str) -> None:
    assert hand_written_tenant_filters(source) == [1]


@pytest.mark.parametrize(
    "source",
    [
        "stmt = scoped(select(ApiKey), ApiKey, org_id)",
        "key = ApiKey(organization_id=org_id, name='x')",
        "values['organization_id'] = ctx.organization_id",
        "if key.organization_id != ctx.organization_id:\n    raise not_found()",
        "same = row.organization_id == other.organization_id",
        "stmt = select(Organization).where(Organization.id == org_id)",
        "stmt = stmt.where(Organization.id == ctx.principal.organization_id)",
        "stmt = select(A).join(B, A.organization_id == B.organization_id)  # tenancy-ok: join",
        "flt = q.uuid_eq('organization-id', ApiKey.organization_id)",
        "stmt = scoped(select(A).join(B, and_(B.a_id == A.id, in_organization(B, org))), A, org)",
    ],
)
def test_static_check_allows_other_uses(source: str) -> None:
    assert hand_written_tenant_filters(source) == []
