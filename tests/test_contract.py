"""Contract tests that walk every registered resource and every API route.

- every API route declares who may call it, and that rule holds (401 / 403 by role and token);
- every resource's list has the documented shape, refuses unknown filters and out-of-range
  pages, and another organization's rows are 404 by direct id and absent from lists;
- every declared action (ActionSpec) refuses missing credentials (401), a weaker role (403),
  individual tokens unless it admits them, and another organization's id (404).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from courier.app import load_domains
from courier.core.auth import Permission
from courier.jsonapi.context import ACCESS_RULES, AccessRule
from courier.jsonapi.resource import REGISTRY, Op, ResourceSpec
from tests.conftest import Org
from tests.factories import FACTORIES, individual_token, make_individual_id

load_domains()  # registers every resource, so the parametrised tests see them all

# Routes that take no credentials on purpose (none yet under /v1 and /v2).
# Authenticated otherwise: the Alexa skill endpoint by Amazon's request signature, carrier
# webhooks by the carrier's signature (401 without it).
PUBLIC_ROUTES: set[tuple[str, str]] = {
    ("POST", "/v1/ask-entries/"),
    ("POST", "/v1/texts/{id}/callback/"),
    ("POST", "/v1/text-account-numbers/{id}/inbound/"),
    ("POST", "/v1/voice-ivrs/{id}/twiml/"),
}


def access_rule(route: APIRoute) -> AccessRule | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if dependant.call in ACCESS_RULES:
            return ACCESS_RULES[dependant.call]
        pending.extend(dependant.dependencies)
    return None


def api_routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    routes = []
    for route in app.state.api_routes:
        if not isinstance(route, APIRoute) or not route.path.startswith(("/v1/", "/v2/")):
            continue
        for method in sorted(route.methods):
            routes.append((method, route.path, route))
    return routes


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    body = {} if method in {"POST", "PATCH", "PUT"} else None
    return await client.request(method, concrete(path), headers=headers, json=body)


async def test_every_api_route_declares_access(app: Any) -> None:
    undeclared = [
        f"{method} {path}"
        for method, path, route in api_routes(app)
        if access_rule(route) is None and (method, path) not in PUBLIC_ROUTES
    ]
    assert undeclared == []


async def test_every_route_refuses_missing_credentials(app: Any, client: httpx.AsyncClient) -> None:
    failures = []
    for method, path, _route in api_routes(app):
        if (method, path) in PUBLIC_ROUTES:
            continue
        response = await call(client, method, path, {})
        if response.status_code != 401 or "www-authenticate" not in response.headers:
            failures.append(f"{method} {path}: {response.status_code}")
    assert failures == []


WEAKER_ROLE = {
    Permission.MASTER: "admin",
    Permission.MANAGE: "staff",
    Permission.COMMUNICATE: "readonly",
}


async def test_roles_enforced_on_every_route(app: Any, client: httpx.AsyncClient, org: Org) -> None:
    failures = []
    checked = 0
    for method, path, route in api_routes(app):
        rule = access_rule(route)
        if rule is None or rule.permission not in WEAKER_ROLE:
            continue
        headers = getattr(org, WEAKER_ROLE[rule.permission])
        response = await call(client, method, path, headers)
        checked += 1
        if response.status_code != 403:
            failures.append(
                f"{method} {path} as {WEAKER_ROLE[rule.permission]}: {response.status_code}"
            )
    assert checked > 0
    assert failures == []


async def test_individual_tokens_refused_where_not_allowed(
    app: Any, client: httpx.AsyncClient, org: Org
) -> None:
    individual = await make_individual_id(client, org)
    token = {"Authorization": f"Bearer {await individual_token(client, org, individual)}"}
    failures = []
    for method, path, route in api_routes(app):
        rule = access_rule(route)
        if rule is None or rule.individual_allowed:
            continue
        response = await call(client, method, path, token)
        if response.status_code != 403:
            failures.append(f"{method} {path}: {response.status_code}")
    assert failures == []


# Rows that serve every organization (worker registrations): any organization's admin sees them.
SHARED_TYPES = {"replicators"}


def listed(spec: ResourceSpec[Any]) -> bool:
    return Op.LIST in spec.ops


@pytest.mark.parametrize("spec", [s for s in REGISTRY if listed(s)], ids=lambda s: s.type_name)
async def test_list_shape_and_refusals(
    client: httpx.AsyncClient, org: Org, spec: ResourceSpec[Any]
) -> None:
    required = [f.param for f in spec.filters if f.required]
    if required:
        missing = await client.get(spec.path, headers=org.admin)
        assert missing.status_code == 400
        assert {e["source"]["parameter"] for e in missing.json()["errors"]} == set(required)
        return
    response = await client.get(spec.path, headers=org.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["data"], list)
    assert set(body["meta"]) >= {"page[limit]", "page[offset]", "page[total]", "pagination"}
    assert set(body["links"]) == {"self", "first", "prev", "next", "last"}
    assert body["meta"]["page[limit]"] == spec.page.default
    for item in body["data"]:
        assert item["type"] == spec.type_name
        uuid.UUID(item["id"])
    bogus = await client.get(spec.path + "?filter[no-such-field]=1", headers=org.admin)
    assert bogus.status_code == 400
    too_big = await client.get(
        spec.path + f"?page[limit]={spec.page.maximum + 1}", headers=org.admin
    )
    assert too_big.status_code == 400
    assert too_big.json()["errors"][0]["source"] == {"parameter": "page[limit]"}


@pytest.mark.parametrize(
    "spec", [s for s in REGISTRY if Op.GET in s.ops], ids=lambda s: s.type_name
)
async def test_other_organizations_rows_are_404(
    client: httpx.AsyncClient, org: Org, other_org: Org, spec: ResourceSpec[Any]
) -> None:
    assert spec.type_name in FACTORIES, f"add a factory for {spec.type_name} in tests/factories.py"
    ident = await FACTORIES[spec.type_name](client, org)
    own = await client.get(f"{spec.path}{ident}/", headers=org.admin)
    assert own.status_code == 200, own.text
    foreign = await client.get(f"{spec.path}{ident}/", headers=other_org.admin)
    if spec.type_name in SHARED_TYPES:
        assert foreign.status_code == 200, foreign.text
        return
    assert foreign.status_code == 404
    assert foreign.json()["statusCode"] == 404
    if listed(spec) and not any(f.required for f in spec.filters):
        listing = await client.get(
            spec.path + "?page[limit]=" + str(spec.page.maximum), headers=other_org.admin
        )
        assert ident not in {item["id"] for item in listing.json()["data"]}
    malformed = await client.get(f"{spec.path}not-a-uuid/", headers=org.admin)
    assert malformed.status_code == 404


DECLARED_ACTIONS = [(spec, action) for spec in REGISTRY for action in spec.actions]


@pytest.mark.parametrize(
    ("spec", "action"),
    DECLARED_ACTIONS,
    ids=[f"{spec.type_name}:{action.name or action.method}" for spec, action in DECLARED_ACTIONS],
)
async def test_declared_actions_keep_their_access_rules(
    client: httpx.AsyncClient, org: Org, other_org: Org, spec: ResourceSpec[Any], action: Any
) -> None:
    path = action.path(spec)
    method = action.method
    anonymous = await call(client, method, path, {})
    assert anonymous.status_code == 401, anonymous.text
    assert "www-authenticate" in anonymous.headers
    if action.permission in WEAKER_ROLE:
        weaker = await call(client, method, path, getattr(org, WEAKER_ROLE[action.permission]))
        assert weaker.status_code == 403, weaker.text
        # The error says what would have worked.
        assert "role" in weaker.json()["errors"][0]["detail"]
    if not action.individuals:
        individual = await make_individual_id(client, org)
        token = {"Authorization": f"Bearer {await individual_token(client, org, individual)}"}
        refused = await call(client, method, path, token)
        assert refused.status_code == 403, refused.text
    if action.on != "item":
        return
    assert spec.type_name in FACTORIES, f"add a factory for {spec.type_name} in tests/factories.py"
    ident = await FACTORIES[spec.type_name](client, org)
    foreign = await client.request(
        method,
        path.replace("{id}", ident),
        headers=other_org.admin,
        json={} if method in {"POST", "PATCH"} else None,
    )
    assert foreign.status_code == 404, foreign.text
    malformed = await client.request(
        method,
        path.replace("{id}", "not-a-uuid"),
        headers=org.admin,
        json={} if method in {"POST", "PATCH"} else None,
    )
    assert malformed.status_code == 404, malformed.text
