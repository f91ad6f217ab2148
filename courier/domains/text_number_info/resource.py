"""``/v1/text-number-info/``: carrier, line type and country of a US number, cached."""

from __future__ import annotations

from courier.core.auth import Permission
from courier.domains.text_number_info.schemas import NumberInfoCreate, NumberInfoRead
from courier.domains.text_number_info.service import NumberInfoService
from courier.jsonapi import query as q
from courier.jsonapi.resource import Op, ResourceSpec, register
from courier.models.text_number_info import TextNumberInfo

text_number_info = register(
    ResourceSpec(
        type_name="text-number-info",
        model=TextNumberInfo,
        read_schema=NumberInfoRead,
        create_schema=NumberInfoCreate,
        service=NumberInfoService(),
        ops=frozenset({Op.LIST, Op.GET, Op.CREATE}),
        filters=[
            q.phone(
                "number",
                TextNumberInfo.number,
                "The number looked up (US, E.164)",
                us_only=True,
                required=True,
            )
        ],
        sorts={"created-at": TextNumberInfo.created_at},
        default_sort=[("created-at", True)],
        permissions={Op.CREATE: Permission.COMMUNICATE},
        summaries={
            Op.LIST: "Carrier/line-type lookups of a number (number required)",
            Op.GET: "Get one lookup",
            Op.CREATE: "Look up a number (reresolve forces a fresh lookup)",
        },
        singular="text number info",
        tag="sms",
    )
)
