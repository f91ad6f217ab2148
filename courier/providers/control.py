"""The sandbox control surface: each kind's declared :class:`SandboxAction` s, served as
``/sandbox/<kind>/<path>`` (admin API key or master key) and as ``courier sandbox <kind> <name>``.

Both call the same handler. A kind's controls exist only while its configured adapter is the
sandbox (``COURIER_<KIND>_PROVIDER=sandbox``); otherwise its paths answer 404 and the CLI
refuses. A person or a test uses them to act as the outside world.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from courier.config import Settings
from courier.core.auth import Permission
from courier.core.db import commit
from courier.core.errors import ApiError, bad_request
from courier.core.handlers import JsonResponse
from courier.jsonapi.context import Context, context_dependency
from courier.providers.common import (
    ProviderKind,
    SandboxAction,
    SandboxContext,
    close_providers,
    load_provider_kinds,
    providers_for,
)

SANDBOX_PREFIX = "/sandbox"
_admin = context_dependency(Permission.MANAGE, individual_allowed=False)


def _params(action: SandboxAction, values: dict[str, Any]) -> BaseModel:
    try:
        return action.params.model_validate(values)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


async def run_action(
    kind: ProviderKind[Any],
    action: SandboxAction,
    settings: Settings,
    database: Any,
    values: dict[str, Any],
) -> Any:
    """Validate ``values`` and run the control: the one path of the routes and the CLI."""
    adapter = providers_for(settings).get(kind)
    return await action.handler(
        SandboxContext(settings, database, adapter), _params(action, values)
    )


def _endpoint(
    kind: ProviderKind[Any], action: SandboxAction
) -> Callable[..., Awaitable[JsonResponse]]:
    async def endpoint(request: Request, ctx: Context = Depends(_admin)) -> JsonResponse:
        # The sandbox keeps its state through connections of its own: end this request's
        # (read-only) transaction first, or on SQLite it would wait on our own write lock.
        await ctx.session.commit()
        if action.method == "GET":
            values: dict[str, Any] = dict(request.query_params)
        else:
            body = await request.body()
            try:
                values = json.loads(body) if body.strip() else {}
            except ValueError as exc:
                raise bad_request("the body is not JSON", code="malformed-json") from exc
            if not isinstance(values, dict):
                raise bad_request("the body must be a JSON object", code="invalid-body")
        # The control works in sessions of its own (the sandbox's store, the webhooks it
        # causes in this same server): end the request's transaction first, or on SQLite they
        # would wait on its write lock.
        await commit(ctx.session)
        result = await run_action(
            kind, action, request.app.state.settings, request.app.state.database, values
        )
        return JsonResponse({"data": result})

    endpoint.__doc__ = action.summary
    return endpoint


def install_sandbox(app: FastAPI) -> None:
    """Add the controls of every kind whose configured adapter is the sandbox."""
    settings: Settings = app.state.settings
    router = APIRouter(prefix=SANDBOX_PREFIX, tags=["sandbox"])
    for kind in providers_for(settings).sandboxed():
        for action in kind.sandbox_actions:
            router.add_api_route(
                f"/{kind.name}/{action.path}",
                _endpoint(kind, action),
                methods=[action.method],
                summary=action.summary,
                operation_id=f"sandbox-{kind.name}-{action.name}",
                response_model=None,
            )
    if router.routes:
        app.include_router(router)


# --- courier sandbox <kind> <action> -----------------------------------------------------------


def add_cli(commands: Any) -> None:
    """``courier sandbox <kind> <action> --option value``: one subcommand per declared control."""
    sandbox = commands.add_parser("sandbox", help="act as the outside world of the sandboxes")
    kinds = sandbox.add_subparsers(dest="kind", required=True)
    for kind in load_provider_kinds():
        if not kind.sandbox_actions:
            continue
        kind_parser = kinds.add_parser(kind.name, help=f"the {kind.name} sandbox")
        actions = kind_parser.add_subparsers(dest="action", required=True)
        for action in kind.sandbox_actions:
            parser = actions.add_parser(action.name, help=action.summary)
            for name, field in action.params.model_fields.items():
                option = "--" + (field.alias or name).replace("_", "-")
                parser.add_argument(
                    option,
                    dest=name,
                    required=field.is_required(),
                    help=field.description,
                )
            parser.set_defaults(func=_cli_runner(kind, action))


def _cli_runner(
    kind: ProviderKind[Any], action: SandboxAction
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        settings = Settings()
        if not kind.is_sandbox(settings):
            print(
                f"COURIER_{kind.setting.upper()} is {kind.configured(settings)!r}, not 'sandbox'",
                file=sys.stderr,
            )
            return 2
        values = {
            (field.alias or name): getattr(args, name)
            for name, field in action.params.model_fields.items()
            if getattr(args, name) is not None
        }
        return asyncio.run(_run_cli(kind, action, settings, values))

    return run


async def _run_cli(
    kind: ProviderKind[Any], action: SandboxAction, settings: Settings, values: dict[str, Any]
) -> int:
    from courier.core.db import Database

    database = Database(settings)
    try:
        result = await run_action(kind, action, settings, database, values)
        idle = getattr(providers_for(settings).get(kind), "idle", None)
        if idle is not None:
            await idle()  # callbacks it started are sent before the command exits
    except ApiError as exc:
        for item in exc.items:
            print(item.detail, file=sys.stderr)
        return 1
    except RequestValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()))
            print(f"{where}: {error.get('msg')}", file=sys.stderr)
        return 1
    finally:
        try:
            await close_providers(settings)
        finally:
            await database.dispose()
    json.dump(result, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0
