"""Declaring a resource: one :class:`ResourceSpec` per JSON:API type.

The route factory (:mod:`courier.jsonapi.routes`) turns a spec into list/get/create/patch/delete
routes with exact OpenAPI schemas; the spec's :class:`CrudService` holds the domain rules.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, false, func, select

from courier.core.auth import Permission, Principal
from courier.core.errors import not_found
from courier.core.tenancy import scoped, unscoped
from courier.jsonapi.changes import record_change
from courier.jsonapi.context import Context
from courier.jsonapi.documents import ReadAttributes, WriteAttributes
from courier.jsonapi.query import Filter, PageBounds
from courier.jsonapi.query import organization as organization_filter

M = TypeVar("M")


class Op(enum.StrEnum):
    LIST = "list"
    GET = "get"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    DELETE_ALL = "delete-all"


DEFAULT_PERMISSIONS: dict[Op, Permission] = {
    Op.LIST: Permission.READ,
    Op.GET: Permission.READ,
    Op.CREATE: Permission.MANAGE,
    Op.UPDATE: Permission.MANAGE,
    Op.DELETE: Permission.MANAGE,
    Op.DELETE_ALL: Permission.MANAGE,
}

IndividualScope = Callable[[Select[Any], Principal], Select[Any]]


class CrudService(Generic[M]):
    """Default domain rules: plain attribute copies. Domains subclass it to add their checks.

    Services never commit; the request's session commits once after the endpoint.
    """

    spec: ResourceSpec[M]

    def query(self, ctx: Context) -> Select[Any]:
        """Rows the caller may see: the organization's, narrowed for an individual token."""
        model = self.spec.model
        if self.spec.tenant:
            stmt = scoped(select(model), model, ctx.organization_id)
        else:
            stmt = unscoped(select(model), f"{self.spec.type_name} is not a tenant table")
        if ctx.principal.is_individual:
            if self.spec.individual_scope is None:
                stmt = stmt.where(false())
            else:
                stmt = self.spec.individual_scope(stmt, ctx.principal)
        return stmt

    async def load(self, ctx: Context, ident: uuid.UUID, *, for_update: bool = False) -> M:
        stmt = self.query(ctx).where(self.spec.model.id == ident)  # type: ignore[attr-defined]
        if for_update and ctx.session.bind.dialect.name != "sqlite":  # type: ignore[union-attr]
            stmt = stmt.with_for_update()
        row = (await ctx.session.execute(stmt)).scalar_one_or_none()
        if row is None:
            raise not_found(self.spec.singular)
        return row  # type: ignore[no-any-return]

    async def count(self, ctx: Context, stmt: Select[Any], values: Mapping[str, Any]) -> int:
        """How many rows ``stmt`` (the list's statement, filters applied) finds: the list's
        total. ``values`` are the list's parsed parameters. A service that keeps counters
        (e.g. a channel's seq) may answer from them instead of counting rows."""
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        options = stmt.get_execution_options()
        return int((await ctx.session.execute(count.execution_options(**options))).scalar_one())

    async def create(self, ctx: Context, attrs: WriteAttributes) -> M:
        values = attrs.model_dump()
        if self.spec.tenant:
            values["organization_id"] = ctx.organization_id
        obj = self.spec.model(**values)
        ctx.session.add(obj)
        return obj

    async def update(self, ctx: Context, obj: M, attrs: WriteAttributes) -> M:
        for name, value in attrs.given().items():
            setattr(obj, name, value)
        return obj

    async def delete(self, ctx: Context, obj: M) -> None:
        await ctx.session.delete(obj)

    async def delete_all(self, ctx: Context) -> int:
        rows = (await ctx.session.execute(self.query(ctx))).scalars().all()
        for row in rows:
            await self.delete(ctx, row)
        return len(rows)

    async def present(self, ctx: Context, rows: Sequence[M]) -> list[dict[str, Any]]:
        """Attributes of each row as the caller sees them (batch: no query per row)."""
        read = self.spec.read_schema
        return [read.model_validate(row).model_dump(mode="json", by_alias=True) for row in rows]

    def individuals_of(self, obj: M) -> Iterable[uuid.UUID]:
        """The individuals a change of ``obj`` concerns (whose event streams show it)."""
        return ()

    def audit(self, ctx: Context, action: str, obj: M, fields: Sequence[str] = ()) -> None:
        """Record a change of ``obj``: an audit row (field names only) and a domain event
        ``<type>.<action>``, both in the request's transaction."""
        org = getattr(obj, "organization_id", None) or ctx.principal.organization_id
        if org is None:  # the master key acting on an organization itself
            org = obj.id  # type: ignore[attr-defined]
        record_change(
            ctx,
            resource_type=self.spec.type_name,
            verb=action,
            resource_id=obj.id,  # type: ignore[attr-defined]
            organization_id=org,
            fields=fields,
            individual_ids=self.individuals_of(obj),
            audited=self.spec.audited,
            published=self.spec.events,
        )


@dataclass
class ResourceSpec(Generic[M]):
    type_name: str  # JSON:API type and path segment, e.g. "individuals"
    model: type[M]
    read_schema: type[ReadAttributes]
    service: CrudService[M]
    create_schema: type[WriteAttributes] | None = None
    update_schema: type[WriteAttributes] | None = None
    ops: frozenset[Op] = frozenset({Op.LIST, Op.GET})
    filters: Sequence[Filter] = ()
    sorts: dict[str, Any] = field(default_factory=dict)  # name -> column
    default_sort: Sequence[tuple[str, bool]] = ()
    page: PageBounds = field(default_factory=PageBounds)
    extra_params: dict[str, str] = field(default_factory=dict)  # plain params -> description
    permissions: dict[Op, Permission] = field(default_factory=dict)
    individual_scope: IndividualScope | None = None
    # Operations an individual token may perform on the rows individual_scope leaves it, even
    # when the operation's permission is one it lacks (e.g. MANAGE to PATCH its own profile).
    individual_ops: frozenset[Op] = frozenset()
    tenant: bool = True
    audited: bool = True
    events: bool = True  # publish <type>.created|updated|deleted events
    version: str = "v1"
    tag: str = ""
    summaries: dict[Op, str] = field(default_factory=dict)
    singular: str = ""

    def __post_init__(self) -> None:
        self.service.spec = self
        if (
            self.tenant
            and Op.LIST in self.ops
            and not any(f.param == "organization-id" for f in self.filters)
        ):
            # Every tenant list takes the seed's organization-id, the same way.
            self.filters = [*self.filters, organization_filter(self.model.organization_id)]  # type: ignore[attr-defined]
        if not self.singular:
            self.singular = self.type_name.rstrip("s").replace("-", " ")
        if not self.tag:
            self.tag = self.type_name

    @property
    def path(self) -> str:
        return f"/{self.version}/{self.type_name}/"

    def permission(self, op: Op) -> Permission:
        return self.permissions.get(op, DEFAULT_PERMISSIONS[op])


REGISTRY: list[ResourceSpec[Any]] = []


def register(spec: ResourceSpec[M]) -> ResourceSpec[M]:
    if any(s.type_name == spec.type_name and s.version == spec.version for s in REGISTRY):
        raise ValueError(f"resource {spec.type_name} registered twice")
    REGISTRY.append(spec)
    return spec


PresentHook = Callable[[Context, Sequence[Any]], Awaitable[list[dict[str, Any]]]]
