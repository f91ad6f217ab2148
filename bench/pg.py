"""PostgreSQL housekeeping shared by the benchmarks: a statement on the server's admin
connection (``CREATE DATABASE`` / ``DROP DATABASE``)."""

from __future__ import annotations

from sqlalchemy.engine import make_url


async def pg_admin(base: str, statement: str) -> None:
    """Run ``statement`` on the server and database ``base`` (a SQLAlchemy URL) names, outside
    any transaction (as ``CREATE DATABASE`` needs)."""
    import asyncpg  # type: ignore[import-untyped]

    url = make_url(base)
    connection = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
