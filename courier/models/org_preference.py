from __future__ import annotations

from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, JSONType, TenantMixin, TimestampMixin


class OrgPreference(IdMixin, TenantMixin, TimestampMixin, Base):
    """A preference an organization set explicitly; unset ones take their default.

    The id is derived from the organization and the name (uuid5), so a preference keeps one id
    whether it is still a default or was set, and a concurrent second insert of the same name
    collides on the primary key as well as on the unique name.
    """

    __tablename__ = "org_preferences"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSONType)
