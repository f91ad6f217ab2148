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

from sqlalchemy import Select

from courier.core.auth import Permission
from courier.core.errors import not_found
from courier.core.time import now_ms
from courier.jsonapi.actions import ActionSpec, EmptyBody
from courier.jsonapi.changes import Change, Changed, change, record_changes
from courier.jsonapi.context import Context
from courier.jsonapi.documents import ReadAttributes, WriteAttributes
from courier.jsonapi.paging import Page, count_rows
from courier.jsonapi.query import Filter, ListQuery, PageBounds, Param
from courier.jsonapi.query import organization as organization_filter
from courier.jsonapi.render import render_rows
from courier.jsonapi.repository import IndividualScope, Repository

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


class CrudService(Generic[M]):
    """Default domain rules: plain attribute copies. Domains subclass it to add their checks.

    Services never commit; the request's session commits once after the endpoint.
    """

    spec: ResourceSpec[M]
    # The list's page holds Core rows of ``list_query`` (columns, each with ``id``) rather
    # than loaded objects: ``present`` then renders rows.
    list_rows: bool = False

    @property
    def repository(self) -> Repository[M]:
        return self.spec.repository  # type: ignore[return-value]

    def query(self, ctx: Context) -> Select[Any]:
        """Rows the caller may see (the repository's ``readable``); services that narrow
        further (e.g. to the ``individual-id`` parameter) override this."""
        return self.repository.readable(ctx)

    def list_query(self, ctx: Context) -> Select[Any]:
        """What the list pages through (its filters and sorts applied): ``query``, or with
        ``list_rows`` a Core select of columns."""
        return self.query(ctx)

    async def load(self, ctx: Context, ident: uuid.UUID, *, for_update: bool = False) -> M:
        found = await self.repository.get(ctx, ident, for_update=for_update, stmt=self.query(ctx))
        if found is None:
            raise not_found(self.spec.singular)
        return found

    async def list_page(self, ctx: Context, query: ListQuery) -> Page | None:
        """The list's page and total when the service pages these parameters itself (e.g.
        with statements built once for its hot list); None: the generic path (``list_query``,
        the filters, ``count``, :func:`courier.jsonapi.paging.paginate`). A page answered here
        must hold the rows the generic path would, in its order, with its total."""
        return None

    async def count(self, ctx: Context, stmt: Select[Any], values: Mapping[str, Any]) -> int:
        """How many rows ``stmt`` (the list's statement, filters applied) finds: the list's
        total. ``values`` are the list's parsed parameters. A service that keeps counters
        (e.g. a channel's seq) may answer from them instead of counting rows."""
        return await count_rows(ctx.session, stmt)

    async def create(self, ctx: Context, attrs: WriteAttributes) -> M | Changed[M]:
        """Make the object. Return it (the factory records ``<type>.created`` with the given
        fields), or a :class:`Changed` saying exactly what changed."""
        values = attrs.model_dump()
        if self.spec.tenant:
            values["organization_id"] = ctx.organization_id
        obj = self.spec.model(**values)
        ctx.session.add(obj)
        return obj

    async def update(self, ctx: Context, obj: M, attrs: WriteAttributes) -> M | Changed[M]:
        for name, value in attrs.given().items():
            setattr(obj, name, value)
        return obj

    async def delete(self, ctx: Context, obj: M) -> Changed[M] | None:
        await ctx.session.delete(obj)
        return None

    async def delete_all(self, ctx: Context) -> int:
        rows = (await ctx.session.execute(self.query(ctx))).scalars().all()
        for row in rows:
            await self.delete(ctx, row)
        return len(rows)

    async def present(self, ctx: Context, rows: Sequence[M]) -> list[dict[str, Any]]:
        """Attributes of each row as the caller sees them (batch: no query per row)."""
        return render_rows(self.spec.read_schema, rows)

    def individuals_of(self, obj: M) -> Iterable[uuid.UUID]:
        """The individuals a change of ``obj`` concerns (whose event streams show it)."""
        return ()

    def change(
        self,
        ctx: Context,
        verb: str,
        obj: M,
        fields: Iterable[str] = (),
        *,
        data: Mapping[str, Any] | None = None,
    ) -> Change:
        """``<type>.<verb>`` of ``obj`` for the individuals it concerns (``individuals_of``)."""
        org = getattr(obj, "organization_id", None) or ctx.principal.organization_id
        if org is None:  # the master key acting on an organization itself
            org = obj.id  # type: ignore[attr-defined]
        return change(
            self.spec.type_name,
            obj.id,  # type: ignore[attr-defined]
            verb,
            fields=fields,
            audience=self.individuals_of(obj),
            organization_id=org,
            data=data,
            audited=self.spec.audited,
            published=self.spec.events,
        )

    def changed(self, ctx: Context, verb: str, obj: M, fields: Iterable[str] = ()) -> Changed[M]:
        """``obj`` with its one change: the usual return of a service function."""
        return Changed(obj, [self.change(ctx, verb, obj, fields)])

    def audit(self, ctx: Context, action: str, obj: M, fields: Sequence[str] = ()) -> None:
        """Record one change of ``obj`` now. Kept for services not yet returning
        :class:`Changed`; the factory calls it for a service that returns a bare object."""
        record_changes(ctx, [self.change(ctx, action, obj, fields)])


def touch(ctx: Context, obj: Any) -> None:
    """Stamp ``obj``'s last modification (``last-modified-at``/``-by``): now, by the caller."""
    obj.last_modified_at = now_ms()
    obj.last_modified_by = ctx.principal.key_id


class SwitchableService(CrudService[M]):
    """A resource with an ``enabled`` flag switched by ``enable``/``disable`` actions
    (declare them with ``ActionSpec("enable", service.do_enable, body=EmptyBody)``).

    Both are idempotent: switching to the state the object is in changes nothing, and is
    neither audited nor announced."""

    async def do_enable(self, ctx: Context, obj: M, body: EmptyBody | None) -> Changed[M]:
        return self._switch(ctx, obj, True)

    async def do_disable(self, ctx: Context, obj: M, body: EmptyBody | None) -> Changed[M]:
        return self._switch(ctx, obj, False)

    def _switch(self, ctx: Context, obj: M, enabled: bool) -> Changed[M]:
        if getattr(obj, "enabled") == enabled:  # noqa: B009  (M is any model with the flag)
            return Changed(obj)
        setattr(obj, "enabled", enabled)  # noqa: B010
        touch(ctx, obj)
        return self.changed(ctx, "updated", obj, ["enabled"])


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
    # plain params the endpoint reads itself -> description (or a Param with its schema)
    extra_params: dict[str, str | Param] = field(default_factory=dict)
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
    actions: Sequence[ActionSpec] = ()
    # The path segment when the seed's path differs from the type (``purge-data`` serves
    # ``system-purges``); default: the type name. Operation ids use it too.
    segment: str = ""
    repository: Repository[M] | None = None  # default: Repository(model, tenant, scope)

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
        if not self.segment:
            self.segment = self.type_name
        if self.repository is None:
            self.repository = Repository(
                self.model,
                what=self.singular,
                tenant=self.tenant,
                individual_scope=self.individual_scope,
            )
        # One declaration of what an individual may see, on the spec or its repository.
        if self.individual_scope is None:
            self.individual_scope = self.repository.individual_scope
        elif self.repository.individual_scope is None:
            self.repository.individual_scope = self.individual_scope

    @property
    def path(self) -> str:
        return f"/{self.version}/{self.segment}/"

    def permission(self, op: Op) -> Permission:
        return self.permissions.get(op, DEFAULT_PERMISSIONS[op])


REGISTRY: list[ResourceSpec[Any]] = []


def add_actions(spec: ResourceSpec[M], *actions: ActionSpec) -> None:
    """Declare actions of a resource from another domain (e.g. the inbox's repair action on
    ``individuals``); the routes are built once every domain is loaded."""
    spec.actions = [*spec.actions, *actions]


def register(spec: ResourceSpec[M]) -> ResourceSpec[M]:
    if any(s.type_name == spec.type_name and s.version == spec.version for s in REGISTRY):
        raise ValueError(f"resource {spec.type_name} registered twice")
    REGISTRY.append(spec)
    return spec


PresentHook = Callable[[Context, Sequence[Any]], Awaitable[list[dict[str, Any]]]]
