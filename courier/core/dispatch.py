"""Route lookup that does not walk every route (issue 17).

FastAPI finds a request's route by asking every route of the application, in order, whether it
matches: with ~80 included routers and ~400 routes, a request to a route near the end (e.g.
``POST /v1/texts/``) tried hundreds of patterns first. Here each top-level route (an included
router, a mount, an operational route) is indexed by the literal path segments every path it
serves begins with (up to :data:`DEPTH`; fewer where a segment holds a parameter). A request is
then matched by FastAPI's own router loop over just the routes whose segments begin its path,
in their original order: a route left out cannot match the path at all, so the first full
match, the 405 of a partial one, the path parameters and everything the route does are the
same. When none of them matches, the application's router answers as it always did (404,
its low-priority routes). The OpenAPI document is built from the routes themselves: unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

DEPTH = 2  # path segments indexed: /v1/<collection>/ tells the routers apart
MAX_KEYS = 4096  # distinct request prefixes remembered (clients choose them)


def _literal_prefix(path: str) -> tuple[str, ...]:
    """The literal segments ``path`` (a route's path format) begins with, up to DEPTH."""
    found: list[str] = []
    for segment in path.split("/")[1:]:
        if len(found) == DEPTH or "{" in segment or not segment:
            break
        found.append(segment)
    return tuple(found)


def _paths(route: BaseRoute, prefix: str) -> Iterable[str] | None:
    """The path formats ``route`` serves (None: not known, so it is always asked)."""
    original = getattr(route, "original_router", None)  # FastAPI's included router
    if original is not None:
        include = str(getattr(getattr(route, "include_context", None), "prefix", "") or "")
        found: list[str] = []
        for child in original.routes:
            paths = _paths(child, prefix + include)
            if paths is None:
                return None
            found.extend(paths)
        return found
    if isinstance(route, Host):
        return None
    if isinstance(route, Route | WebSocketRoute | Mount):
        return [prefix + route.path]
    return None


class RouteIndex:
    """The application router's top-level routes by the literal prefix of their paths."""

    def __init__(self, app: FastAPI, original: ASGIApp) -> None:
        self._router = app.router
        self._original = original
        self._built_for = -1
        self._routes: list[tuple[BaseRoute, tuple[tuple[str, ...], ...] | None]] = []
        self._by_key: dict[tuple[str, ...], APIRouter] = {}

    def _build(self) -> None:
        self._routes = []
        for route in self._router.routes:
            paths = _paths(route, "")
            keys = None if paths is None else tuple({_literal_prefix(p) for p in paths})
            self._routes.append((route, keys))
        self._by_key = {}
        self._built_for = len(self._router.routes)

    def candidates(self, scope: Scope) -> APIRouter:
        """A router of the routes that may match ``scope``'s path, in their order."""
        if self._built_for != len(self._router.routes):
            self._build()
        return self._candidates(tuple(get_route_path(scope).split("/")[1 : DEPTH + 1]))

    def _candidates(self, key: tuple[str, ...]) -> APIRouter:
        keyed = self._by_key.get(key)
        if keyed is not None:
            return keyed
        if len(self._by_key) >= MAX_KEYS:
            self._by_key.clear()
        routes = [
            route
            for route, keys in self._routes
            if keys is None or any(key[: len(k)] == k for k in keys)
        ]
        keyed = APIRouter(routes=routes, redirect_slashes=False)
        keyed.form_limits = self._router.form_limits
        keyed.default = self._original  # none of them matches: the router's own answer
        self._by_key[key] = keyed
        return keyed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._original(scope, receive, send)
            return
        keyed = self.candidates(scope)
        scope.setdefault("router", self._router)
        await keyed.app(scope, receive, send)


def install(app: FastAPI) -> None:
    """Have ``app``'s router look its routes up by path prefix (call once routes are added)."""
    router: Any = app.router
    if router.middleware_stack != router.app:
        return  # the router wraps its routes in middleware of its own: left as it is
    router.middleware_stack = RouteIndex(app, router.app)
