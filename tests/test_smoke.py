from __future__ import annotations

import httpx

from tests.conftest import Org


async def test_organizations_need_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/organizations/")
    assert response.status_code == 401
    body = response.json()
    assert body["statusCode"] == 401
    assert body["error"] == "Unauthorized"
    assert response.headers["www-authenticate"] == 'Bearer realm="courier", Basic realm="courier"'


async def test_org_key_sees_own_org(client: httpx.AsyncClient, org: Org) -> None:
    response = await client.get("/v1/organizations/", headers=org.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [d["id"] for d in body["data"]] == [org.id]
