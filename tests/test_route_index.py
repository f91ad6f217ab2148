"""Routes are looked up by path prefix (courier/core/dispatch.py), with FastAPI's answers: every
documented operation reaches the route the full walk of all routes reaches; an unknown path is
404 and a known path with another method 405, as before."""

from __future__ import annotations

import re
from typing import Any

import httpx
from starlette.routing import BaseRoute, Match

from courier.core.dispatch import RouteIndex
from tests.conftest import Org

SOME_ID = "0b8c2f7e-5a3c-4c1e-9a1e-1e2f3a4b5c6d"


def first_match(routes: list[BaseRoute], scope: dict[str, Any]) -> BaseRoute | None:
    for route in routes:
        if route.matches(dict(scope))[0] == Match.FULL:
            return route
    return None


def test_every_operation_reaches_the_route_the_full_walk_reaches(app: Any) -> None:
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", SOME_ID, path)
        for method in operations:
            scope = {
                "type": "http",
                "path": concrete,
                "root_path": "",
                "method": method.upper(),
                "headers": [],
                "query_string": b"",
            }
            everything = first_match(app.router.routes, scope)
            assert everything is not None, (method, path)
            indexed = index.candidates(scope).routes
            assert first_match(indexed, scope) is everything, (method, path)
            assert len(indexed) < len(app.router.routes) / 4, (method, path)
            checked += 1
    assert checked > 200


async def test_unknown_paths_and_methods_answer_as_before(
    client: httpx.AsyncClient, org: Org
) -> None:
    missing = await client.get("/v1/no-such-collection/", headers=org.admin)
    assert missing.status_code == 404
    assert missing.json()["statusCode"] == 404
    wrong_method = await client.put("/v1/texts/", headers=org.admin)
    assert wrong_method.status_code == 405
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/docs/static/swagger-ui.css")).status_code == 200
