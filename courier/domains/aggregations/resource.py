from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.aggregations.schemas import AggregationCreate, AggregationRead
from courier.domains.aggregations.service import AggregationService
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.aggregation_request import AggregationRequest

# Staff and admins (COMMUNICATE: the aggregates are of messaging); not individual tokens.
aggregation_requests = register(
    ResourceSpec(
        type_name="aggregation-requests",
        model=AggregationRequest,
        read_schema=AggregationRead,
        create_schema=AggregationCreate,
        service=AggregationService(),
        ops=frozenset({Op.GET, Op.CREATE}),
        permissions={Op.GET: Permission.COMMUNICATE, Op.CREATE: Permission.COMMUNICATE},
        tag="operations",
        summaries={
            Op.CREATE: "Aggregate columns per individual (asynchronous): message-count, "
            "unread-count, last-contact-time, channel-count",
            Op.GET: "Get one aggregation request: its state, and its results once completed",
        },
        singular="aggregation request",
    )
)
