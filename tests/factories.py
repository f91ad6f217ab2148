"""One way to create a sample of each resource type over HTTP, for the contract tests.

Every resource type that serves GET /{id}/ must have a factory here: the contract test fails
for a registered type without one, so a new resource cannot skip the cross-organization checks.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.conftest import MASTER, Org, doc

Factory = Callable[[httpx.AsyncClient, Org], Awaitable[str]]
FACTORIES: dict[str, Factory] = {}


def factory(type_name: str) -> Callable[[Factory], Factory]:
    def register(func: Factory) -> Factory:
        FACTORIES[type_name] = func
        return func

    return register


async def created_id(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    ident: str = response.json()["data"]["id"]
    return ident


@factory("organizations")
async def make_organization(client: httpx.AsyncClient, org: Org) -> str:
    return org.id


@factory("api-keys")
async def make_api_key(client: httpx.AsyncClient, org: Org) -> str:
    return await created_id(
        await client.post(
            "/v1/api-keys/",
            headers=org.admin,
            json=doc("api-keys", {"name": "sample", "role": "readonly"}),
        )
    )


async def make_individual_id(client: httpx.AsyncClient, org: Org, **attributes: Any) -> str:
    values = {"first-name": "Sam", "last-name": f"Sample {uuid.uuid4().hex[:6]}"}
    values.update(attributes)
    return await created_id(
        await client.post("/v1/individuals/", headers=org.admin, json=doc("individuals", values))
    )


@factory("individuals")
async def make_individual(client: httpx.AsyncClient, org: Org) -> str:
    return await make_individual_id(client, org)


@factory("users")
async def make_user(client: httpx.AsyncClient, org: Org) -> str:
    suffix = uuid.uuid4().hex[:8]
    return await created_id(
        await client.post(
            "/v1/users/",
            headers=org.admin,
            json=doc("users", {"username": f"user{suffix}", "email": f"u{suffix}@example.org"}),
        )
    )


@factory("individual-groups")
async def make_group(client: httpx.AsyncClient, org: Org) -> str:
    member = await make_individual_id(client, org)
    return await created_id(
        await client.post(
            "/v1/individual-groups/",
            headers=org.admin,
            json=doc("individual-groups", {"name": "Team", "individual-ids": [member]}),
        )
    )


@factory("audit-events")
async def make_audit_event(client: httpx.AsyncClient, org: Org) -> str:
    await make_api_key(client, org)  # any change writes an audit row
    listing = await client.get("/v1/audit-events/?page[limit]=1", headers=org.admin)
    assert listing.status_code == 200, listing.text
    ident: str = listing.json()["data"][0]["id"]
    return ident


async def individual_token(client: httpx.AsyncClient, org: Org, individual_id: str) -> str:
    response = await client.post(
        "/v1/access-tokens/",
        headers=org.staff,
        json=doc("access-tokens", {"individual-id": individual_id}),
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["data"]["attributes"]["token"]
    return token


__all__ = ["FACTORIES", "MASTER", "individual_token", "make_individual_id"]
