"""Every table, imported from one place so Alembic and the tenancy guard see them all.

Domain models live in this package, one file per table; each module is imported here
automatically, so adding a table is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil

from courier.models.base import Base

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Base"]
