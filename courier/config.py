"""Configuration: environment variables (``COURIER_*``) and an optional file.

Every setting can be given as an environment variable named ``COURIER_<NAME>``; the same names
(lower or upper case, without the prefix) may be written in a ``.env``-style file named by
``COURIER_CONFIG_FILE``. The environment wins over the file.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COURIER_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./courier-data"),
        description="Directory for the embedded SQLite database, uploads and generated secrets.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db. "
            "Unset: a SQLite file (WAL mode) in the data directory."
        ),
    )
    master_key: str | None = Field(
        default=None,
        description="Secret that may create organizations and their API keys over HTTP. "
        "Unset: only `courier admin` can create organizations.",
    )
    token_secret: str | None = Field(
        default=None,
        description="Signing secret for individual access tokens. Unset: generated once and kept "
        "in the data directory (set it explicitly when several replicas serve).",
    )
    token_ttl_seconds: int = Field(
        default=3600, ge=60, le=86400 * 30, description="Lifetime of individual access tokens."
    )
    redis_url: str | None = Field(
        default=None,
        description="redis:// URL. Set: rate-limit counters are shared by all replicas.",
    )
    rate_limit: str = Field(
        default="600/minute",
        description="Request budget per API key or individual token (limits syntax, e.g. "
        "'600/minute', '20/second;600/minute').",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest JSON request body accepted (413 above)."
    )
    log_level: str = Field(default="INFO", description="Python log level of the JSON logs.")
    run_worker: bool = Field(
        default=True,
        description="Run a job worker inside `courier serve` (the embedded default). "
        "Set false when dedicated `courier worker` processes run.",
    )
    auto_migrate: bool = Field(
        default=True, description="Apply pending database migrations when `courier serve` starts."
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow webhook URLs that resolve to private, loopback or link-local "
        "addresses, and plain http (for tests and closed networks only).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        from pydantic_settings import DotEnvSettingsSource

        config_file = os.environ.get("COURIER_CONFIG_FILE")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            if not Path(config_file).is_file():
                raise FileNotFoundError(f"COURIER_CONFIG_FILE {config_file} does not exist")
            sources.append(
                _UnprefixedDotEnv(settings_cls, env_file=config_file),
            )
            sources.append(DotEnvSettingsSource(settings_cls, env_file=config_file))
        return tuple(sources)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'courier.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


class _UnprefixedDotEnv(PydanticBaseSettingsSource):
    """Reads ``name=value`` lines without the ``COURIER_`` prefix from the config file."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: str) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, str] = {}
        for raw in Path(env_file).read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            self._values[key.strip().lower()] = value.strip().strip("'\"")

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


def describe_settings() -> str:
    """Text table of every setting, for ``courier serve --help`` and the README."""
    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default
        lines.append(f"  COURIER_{name.upper():<24} {field.description} (default: {default})")
    return "\n".join(lines)
