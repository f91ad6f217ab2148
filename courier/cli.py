"""The ``courier`` command: serve, worker, migrate, openapi, admin."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from courier.config import Settings, describe_settings

CONFIG_HELP = "configuration (environment variables, or the same names in COURIER_CONFIG_FILE):\n"


# Young objects collected after this many allocations instead of 700: a request makes
# thousands of short-lived ORM rows, pydantic models and dicts.
GC_YOUNG_THRESHOLD = 10_000

# glibc's malloc arenas a server worker may have: its main thread's and one shared by the other
# threads (on SQLite every pooled connection is a thread of its own; glibc's default is up to
# 8 per core, one per thread here). Each arena keeps the memory its thread freed (SQLite's page
# cache, statement results): 5 to 7 arenas of ~1.7 MB under mixed load on SQLite, ~5 MB more
# RSS than the two (issue 17, memory). The connections' threads take turns at SQLite anyway.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Have glibc's malloc use at most ``arenas`` arenas from now on (before the threads that
    would make more): whether it could (False without glibc, e.g. musl or macOS)."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except AttributeError:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def app_factory() -> Any:
    """Entry point for uvicorn workers (``courier.cli:app_factory``)."""
    import gc

    from courier.app import create_app
    from courier.core.openapi import BUILT_ELSEWHERE

    limit_malloc_arenas()
    app = create_app(Settings())
    setattr(app.state, BUILT_ELSEWHERE, True)  # (its settings are the environment's)
    # What exists once the application is built (modules, routes, schemas, mappers: some
    # 200,000 objects) lives as long as the process. Frozen, the collector stops walking it on
    # every full collection, which took a fifth of a channel list's CPU time.
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
    return app


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from courier.core.observability import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    if settings.auto_migrate and not args.no_migrate:
        # In a process of its own: with --workers 1 this very process serves, and Alembic
        # (~10 MB of modules) with every revision script it loads would stay in its memory.
        migrated = subprocess.run([sys.executable, "-m", "courier.core.migrate"], check=False)
        if migrated.returncode != 0:
            return migrated.returncode
    uvicorn.run(
        "courier.cli:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from courier.core.migrate import upgrade

    upgrade(Settings(), args.revision)
    print("database is at the latest revision" if args.revision == "heads" else "done")
    return 0


def _openapi(_args: argparse.Namespace) -> int:
    from courier.app import create_app

    app = create_app(Settings(), start_background=False)
    json.dump(app.openapi(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


async def _admin_create_organization(args: argparse.Namespace) -> int:
    from courier.core.auth import Principal, PrincipalKind
    from courier.core.db import Database
    from courier.core.time import check_timezone
    from courier.jsonapi.changes import Actor, change, write_changes
    from courier.models.organization import Organization

    settings = Settings()
    database = Database(settings)
    try:
        timezone = check_timezone(args.timezone)
    except ValueError as exc:
        print(f"timezone {exc}", file=sys.stderr)
        return 2
    async with database.sessionmaker() as session:
        organization = Organization(
            name=args.name, display_name=args.display_name, timezone=timezone
        )
        session.add(organization)
        await session.flush()
        write_changes(
            session,
            [
                change(
                    "organizations",
                    organization.id,
                    "created",
                    fields=["name", "display-name", "timezone"],
                    organization_id=organization.id,
                    published=False,
                )
            ],
            actor=Actor.of(Principal(PrincipalKind.MASTER, None)),
            request_id="cli",
        )
        await session.commit()
        print(json.dumps({"id": str(organization.id), "name": organization.name}))
    await database.dispose()
    return 0


async def _admin_create_api_key(args: argparse.Namespace) -> int:
    import uuid

    from sqlalchemy import select

    from courier.core.auth import Principal, PrincipalKind, Role
    from courier.core.db import Database
    from courier.core.tenancy import unscoped
    from courier.domains.api_keys.service import issue_key
    from courier.jsonapi.changes import Actor, change, write_changes
    from courier.models.organization import Organization

    settings = Settings()
    database = Database(settings)
    try:
        organization_id = uuid.UUID(args.organization)
    except ValueError:
        print("organization must be a UUID", file=sys.stderr)
        return 2
    async with database.sessionmaker() as session:
        stmt = unscoped(select(Organization).where(Organization.id == organization_id), "cli")
        if (await session.execute(stmt)).scalar_one_or_none() is None:
            print(f"no organization {organization_id}", file=sys.stderr)
            return 1
        principal = Principal(PrincipalKind.MASTER, None)
        key, secret = await issue_key(
            session,
            principal,
            organization_id=organization_id,
            name=args.name,
            role=Role(args.role),
        )
        await session.flush()
        write_changes(
            session,
            [
                change(
                    "api-keys",
                    key.id,
                    "created",
                    fields=["name", "role"],
                    organization_id=organization_id,
                    published=False,
                )
            ],
            actor=Actor.of(principal),
            request_id="cli",
        )
        await session.commit()
        print(json.dumps({"id": str(key.id), "role": key.role, "secret": secret}))
    await database.dispose()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from courier.jobs.worker import run_worker_process

    return run_worker_process(Settings(), concurrency=args.concurrency)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="courier", description="Courier patient communications")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (applies migrations first)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CONFIG_HELP + describe_settings(),
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="HTTP worker processes (default 1; use PostgreSQL for more)",
    )
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations on start"
    )
    serve.set_defaults(func=_serve)

    worker = commands.add_parser(
        "worker",
        help="run a background job worker",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CONFIG_HELP + describe_settings(),
    )
    worker.add_argument("--concurrency", type=int, default=4, help="jobs run at once (default 4)")
    worker.set_defaults(func=_worker)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="heads")
    migrate.set_defaults(func=_migrate)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document as JSON")
    openapi.set_defaults(func=_openapi)

    from courier.providers.control import add_cli

    add_cli(commands)
    admin = commands.add_parser("admin", help="administration from a shell")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    org = admin_commands.add_parser("create-organization", help="create an organization")
    org.add_argument("name")
    org.add_argument("--display-name", default=None)
    org.add_argument("--timezone", default="UTC", help="IANA zone, e.g. America/New_York")
    org.set_defaults(func=lambda a: asyncio.run(_admin_create_organization(a)))
    key = admin_commands.add_parser(
        "create-api-key", help="create an API key; prints its secret once"
    )
    key.add_argument("organization", help="organization id")
    key.add_argument("--name", default="admin")
    key.add_argument("--role", choices=["admin", "staff", "readonly"], default="admin")
    key.set_defaults(func=lambda a: asyncio.run(_admin_create_api_key(a)))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
