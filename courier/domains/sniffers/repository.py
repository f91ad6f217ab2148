"""The SQL of sniffers: the logs a sniffer recorded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from courier.jsonapi.context import Context
from courier.jsonapi.repository import Repository
from courier.models.sniffer import Sniffer, SnifferLog

logs = Repository(SnifferLog, what="sniffer log")


def logs_of(ctx: Context, sniffer: Sniffer) -> Select[Any]:
    """The requests ``sniffer`` recorded (the organization's rows only)."""
    return logs.statement(ctx).where(SnifferLog.sniffer_id == sniffer.id)


def newest_first() -> list[Any]:
    return [SnifferLog.created_at.desc(), SnifferLog.id.desc()]
