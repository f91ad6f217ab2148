"""Apply the Alembic migrations shipped inside the package (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import courier
from courier.config import Settings

PACKAGE_DIR = Path(courier.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(PACKAGE_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(settings: Settings, revision: str = "heads") -> None:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.resolved_database_url), revision)


if __name__ == "__main__":  # ``courier serve`` migrates in a process of its own
    from courier.core.observability import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    upgrade(settings)
