"""The console's admin screen (issue 18, screen 10) on SQLite and PostgreSQL: admin only (not
rendered for others, 403 server-side), API keys with the secret shown once and revoked through
the API's operation, personal console logins created and revoked, webhooks with their recent
deliveries, jobs with their attempts and last error, and the audit log naming people."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from courier.core.time import utcnow
from courier.models.job import Job
from courier.models.webhook import WebhookDelivery
from tests.conftest import Org, doc
from tests.test_console import CSRF, browser, make_person, secret_of, sign_in
from tests.test_console_people import PASSWORD, sign_in_personal

__all__ = ["browser"]  # the cookie-keeping client fixture


async def test_only_admins_see_and_use_the_admin_screen(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    for role in ("readonly", "staff"):
        csrf = await sign_in(browser, secret_of(getattr(org, role)))
        today = await browser.get("/console/today")
        assert 'href="/console/admin"' not in today.text
        assert (await browser.get("/console/admin")).status_code == 403
        forged = await browser.post(
            "/console/admin/api-keys",
            data={"name": "sneaky", "role": "admin"},
            headers={"X-CSRF-Token": csrf},
        )
        assert forged.status_code == 403
    keys = await client.get("/v1/api-keys/", headers=org.admin)
    assert "sneaky" not in keys.text

    csrf = await sign_in(browser, secret_of(org.admin))
    assert 'href="/console/admin"' in (await browser.get("/console/today")).text
    page = await browser.get("/console/admin")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    # Without the CSRF token, nothing is created.
    no_token = await browser.post("/console/admin/api-keys", data={"name": "x", "role": "staff"})
    assert no_token.status_code == 403


async def test_an_admin_creates_a_key_sees_its_secret_once_and_revokes_it(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    csrf = await sign_in(browser, secret_of(org.admin))
    made = await browser.post(
        "/console/admin/api-keys",
        data={"name": "front desk", "role": "staff"},
        headers={"X-CSRF-Token": csrf},
    )
    assert made.status_code == 200, made.text
    found = re.search(r'id="new-secret" type="text" readonly value="(ck_[^"]+)"', made.text)
    assert found is not None
    secret = found.group(1)
    # The secret works against the API, and is never shown again.
    works = await client.get("/v1/individuals/", headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200
    assert secret not in (await browser.get("/console/admin")).text
    keys = (await client.get("/v1/api-keys/", headers=org.admin)).json()["data"]
    key = next(k for k in keys if k["attributes"]["name"] == "front desk")
    assert key["attributes"]["role"] == "staff"

    refused = await browser.post(
        "/console/admin/api-keys",
        data={"name": "", "role": "owner"},
        headers={"X-CSRF-Token": csrf},
    )
    assert refused.status_code == 400 and 'id="api-keys-error"' in refused.text

    revoked = await browser.post(
        f"/console/admin/api-keys/{key['id']}/revoke", headers={"X-CSRF-Token": csrf}
    )
    assert revoked.status_code == 303
    assert (
        await client.get("/v1/individuals/", headers={"Authorization": f"Bearer {secret}"})
    ).status_code == 401
    missing = await browser.post(
        f"/console/admin/api-keys/{uuid.uuid4()}/revoke", headers={"X-CSRF-Token": csrf}
    )
    assert missing.status_code == 404
    audit = await client.get(
        "/v1/audit-events/", params={"filter[resource-type]": "api-keys"}, headers=org.admin
    )
    actions = sorted(a["attributes"]["action"] for a in audit.json()["data"])
    assert actions.count("created") >= 1 and "deleted" in actions


async def test_an_admin_creates_and_revokes_a_console_login(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    csrf = await sign_in(browser, secret_of(org.admin))
    page = await browser.get("/console/admin")
    assert f'<option value="{nurse}">Nora Nurse</option>' in page.text
    name = f"nora-{uuid.uuid4().hex[:8]}"
    short = await browser.post(
        "/console/admin/console-users",
        data={"username": name, "password": "short", "role": "staff", "individual-id": nurse},
        headers={"X-CSRF-Token": csrf},
    )
    assert short.status_code == 400 and "at least 12 characters" in short.text
    made = await browser.post(
        "/console/admin/console-users",
        data={"username": name, "password": PASSWORD, "role": "staff", "individual-id": nurse},
        headers={"X-CSRF-Token": csrf},
    )
    assert made.status_code == 200, made.text
    assert f"Login <strong>{name}</strong> created" in made.text
    assert PASSWORD not in made.text
    users = (await client.get("/v1/console-users/", headers=org.admin)).json()["data"]
    user = next(u for u in users if u["attributes"]["username"] == name)
    assert user["attributes"]["individual-id"] == nurse

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as nora:
        assert (await sign_in_personal(nora, name)).status_code == 303
        assert (await nora.get("/console/admin")).status_code == 403  # staff
        revoked = await browser.post(
            f"/console/admin/console-users/{user['id']}/revoke", headers={"X-CSRF-Token": csrf}
        )
        assert revoked.status_code == 303
        assert (await nora.get("/console/today")).status_code == 303  # signed out at once
    after = await browser.get("/console/admin")
    assert re.search(
        rf"<td>{name}</td><td>Nora Nurse</td><td>staff</td>.*?revoked", after.text, re.S
    )
    # Both changes are the API's: audited under the admin's key.
    audit = await client.get(
        "/v1/audit-events/",
        params={"filter[resource-type]": "console-users", "filter[resource-id]": user["id"]},
        headers=org.admin,
    )
    rows = [(a["attributes"]["action"], a["attributes"]["actor-id"]) for a in audit.json()["data"]]
    assert sorted(rows) == [("created", org.admin_key_id), ("deleted", org.admin_key_id)]
    assert "console-users" in after.text


async def test_webhooks_jobs_and_audit_events_are_listed(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    hook = await client.post(
        "/v1/webhooks/",
        json=doc("webhooks", {"url": "https://127.0.0.1:9/hook", "event-types": ["texts.created"]}),
        headers=org.admin,
    )
    assert hook.status_code == 201, hook.text
    hook_id = uuid.UUID(hook.json()["data"]["id"])
    org_id = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        session.add(
            WebhookDelivery(
                organization_id=org_id,
                webhook_id=hook_id,
                event_id=uuid.uuid4(),
                event_type="texts.created",
                attempt=2,
                succeeded=False,
                status_code=502,
                error="bad gateway from receiver",
                duration_ms=12,
            )
        )
        session.add(
            Job(
                organization_id=org_id,
                kind="texts.send",
                state="failed",
                attempts=5,
                max_attempts=5,
                last_error="carrier said no",
                run_at=utcnow(),
            )
        )
        await session.commit()
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    await client.post(
        "/v1/console-users/",
        json=doc(
            "console-users",
            {
                "username": f"n-{uuid.uuid4().hex[:8]}",
                "password": PASSWORD,
                "role": "staff",
                "individual-id": nurse,
            },
        ),
        headers=org.admin,
    )
    await sign_in(browser, secret_of(org.admin))
    page = await browser.get("/console/admin")
    assert page.status_code == 200
    assert "https://127.0.0.1:9/hook" in page.text
    assert "bad gateway from receiver" in page.text and "<td>502</td>" in page.text
    assert "<td>texts.send</td><td>failed</td><td>5 of 5</td><td>carrier said no</td>" in page.text
    assert "console-users" in page.text and "individuals" in page.text
    assert CSRF.search(page.text) is not None
