"""All SQL of push devices and their logs (tenant-scoped)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from courier.core.auth import Principal
from courier.core.tenancy import scoped
from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.delivery import Delivery
from courier.models.push_device import UserDevice

PUSH_CHANNEL = "push"  # the provider kind's name on a delivery


def own_devices(stmt: Select[Any], principal: Principal) -> Select[Any]:
    """An individual token sees only its own devices."""
    return stmt.where(UserDevice.individual_id == principal.individual_id)


class DeviceRepository(Repository[UserDevice]):
    def __init__(self) -> None:
        super().__init__(UserDevice, what="user device", individual_scope=own_devices)

    async def by_token(self, ctx: Context, app_name: str, token: str) -> UserDevice | None:
        """The organization's device with this token in this app, whoever owns it (locked
        until the request commits)."""
        stmt = self.statement(ctx).where(UserDevice.app_name == app_name, UserDevice.token == token)
        if ctx.session.get_bind().dialect.name != "sqlite":
            stmt = stmt.with_for_update()
        found: UserDevice | None = (await ctx.session.execute(stmt)).scalar_one_or_none()
        return found


def pushes_to(ctx: Context, device: UserDevice) -> Select[Any]:
    """The push deliveries whose recipient is the device (the provider layer's records)."""
    return scoped(
        select(Delivery).where(
            Delivery.channel == PUSH_CHANNEL, Delivery.recipient == str(device.id)
        ),
        Delivery,
        ctx.organization_id,
    )


def newest_first() -> list[Any]:
    return [Delivery.created_at.desc(), Delivery.id.desc()]


async def device_for_update(
    session: AsyncSession, organization_id: uuid.UUID, device_id: uuid.UUID
) -> UserDevice | None:
    """The device, locked (jobs: no caller to scope by but the organization)."""
    stmt = scoped(select(UserDevice).where(UserDevice.id == device_id), UserDevice, organization_id)
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    found: UserDevice | None = (await session.execute(stmt)).scalar_one_or_none()
    return found


devices = DeviceRepository()


async def devices_of_individual(
    session: AsyncSession, organization_id: uuid.UUID, individual_id: uuid.UUID
) -> list[UserDevice]:
    stmt = scoped(
        select(UserDevice).where(UserDevice.individual_id == individual_id),
        UserDevice,
        organization_id,
    )
    return list((await session.execute(stmt)).scalars().all())
