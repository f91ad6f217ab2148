"""Job handlers: ``@job_handler("kind")`` registers the coroutine that carries out a kind of job.

A worker claims only the kinds registered in its process, so during a rolling deploy a job of
a kind an old worker does not know waits for a new worker instead of failing.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from courier.config import Settings

if TYPE_CHECKING:
    from courier.jobs.context import JobContext

Handler = Callable[["JobContext"], Awaitable[dict[str, Any] | None]]
H = TypeVar("H", bound=Handler)

MAX_KIND_LENGTH = 100


@dataclass(frozen=True)
class Registration:
    kind: str
    handler: Handler
    max_attempts: int | None = None


HANDLERS: dict[str, Registration] = {}

# Packages outside ``courier.domains`` whose modules define handlers (e.g. outbound webhooks)
# list those modules here, so every worker imports them.
CORE_JOB_MODULES: tuple[str, ...] = (
    "courier.providers.delivery",
    "courier.providers.inbound",
    "courier.uploads.workers",  # every kind of upload's cleanup and delete-files jobs
)


def job_handler(kind: str, *, max_attempts: int | None = None) -> Callable[[H], H]:
    """Register ``async def handle(job: JobContext) -> dict | None`` for jobs of ``kind``.

    ``max_attempts`` overrides the configured default for jobs of this kind enqueued in a
    process that has imported the handler. The handler must be safe to run more than once
    (see :meth:`courier.jobs.context.JobContext.step`).
    """
    if not kind or len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"a job kind is 1 to {MAX_KIND_LENGTH} characters")
    if max_attempts is not None and not 1 <= max_attempts <= 100:
        raise ValueError("max_attempts must be between 1 and 100")

    def decorate(handler: H) -> H:
        existing = HANDLERS.get(kind)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"job kind {kind!r} already has a handler ({existing.handler})")
        HANDLERS[kind] = Registration(kind, handler, max_attempts)
        return handler

    return decorate


def load_job_modules(settings: Settings) -> list[str]:
    """Import every ``courier.domains.<name>.jobs`` module, :data:`CORE_JOB_MODULES` and the
    modules of the ``job_modules`` setting (``COURIER_JOB_MODULES``), registering their handlers.

    Returns the names of the modules imported (for the worker's start-up log).
    """
    import courier.domains

    loaded: list[str] = []
    for module in sorted(pkgutil.iter_modules(courier.domains.__path__), key=lambda m: m.name):
        name = f"courier.domains.{module.name}.jobs"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        loaded.append(name)
    for name in CORE_JOB_MODULES:
        importlib.import_module(name)
        loaded.append(name)
    for raw in settings.job_modules.split(","):
        name = raw.strip()
        if name:
            importlib.import_module(name)
            loaded.append(name)
    return loaded
