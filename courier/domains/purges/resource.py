"""``POST /v1/purge-data/`` and ``GET /v1/purge-data/{id}/`` (type ``system-purges``).

Admin only; never with an individual token (no individual scope).
"""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.purges.schemas import PurgeCreate, PurgeRead
from courier.domains.purges.service import TYPE_NAME, PurgeService
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.system_purge import SystemPurge

purges = register(
    ResourceSpec(
        type_name=TYPE_NAME,
        segment="purge-data",
        model=SystemPurge,
        read_schema=PurgeRead,
        create_schema=PurgeCreate,
        service=PurgeService(),
        ops=frozenset({Op.GET, Op.CREATE}),
        permissions={Op.GET: Permission.MANAGE, Op.CREATE: Permission.MANAGE},
        tag="operations",
        summaries={
            Op.CREATE: "Purge (or archive) all data of an entity, e.g. an individual",
            Op.GET: "Get one purge: its progress, and its receipt once completed",
        },
        singular="purge",
    )
)
