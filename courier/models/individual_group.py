from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from courier.models.base import Base, IdMixin, TenantMixin, TimestampMixin


class IndividualGroup(IdMixin, TenantMixin, TimestampMixin, Base):
    """A care team or cohort: members, leaders among them, and an optional parent group."""

    __tablename__ = "individual_groups"

    name: Mapped[str] = mapped_column(String(255), index=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("individual_groups.id", ondelete="SET NULL"), index=True
    )
    last_sync_time: Mapped[datetime | None]


class IndividualGroupMember(TenantMixin, Base):
    """An individual's membership of a group."""

    __tablename__ = "individual_group_members"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individual_groups.id", ondelete="CASCADE"), primary_key=True
    )
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class IndividualGroupLeader(TenantMixin, Base):
    """A member who leads the group (every leader is also a member)."""

    __tablename__ = "individual_group_leaders"

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individual_groups.id", ondelete="CASCADE"), primary_key=True
    )
    individual_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("individuals.id", ondelete="CASCADE"), primary_key=True, index=True
    )
