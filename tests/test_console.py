"""The web console (issue 18, first slice): sign-in sessions, CSRF, roles, Today, Inbox and
the live stream, over the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from courier.console.stream import as_hints
from courier.core.tenancy import scoped
from courier.core.time import utcnow
from courier.events.stream import Cursor, EventStream
from courier.models.console_session import ConsoleSession
from courier.models.delivery import Delivery
from courier.models.messaging import MessagingChannel
from courier.models.user_notification import UserNotification
from tests.conftest import Org, doc
from tests.test_events_stream import serving

STATIC = Path(__file__).resolve().parent.parent / "courier" / "console" / "static"
# What a browser's navigation asks for (htmx and the scripts' fetches send */*).
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CSRF = re.compile(r'name="csrf-token" value="([^"]+)"')
SIGNIN = re.compile(r'name="signin-token" value="([^"]+)"')
TITLE = re.compile(r"<title>(.*?)</title>", re.S)

VENDORED = {
    "vendor/htmx.min.js": "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717",
    "vendor/htmx.LICENSE": "d3d2456f76414f2456104660ebd65aff1c04cd7966b942bdabd63f3cdb316a38",
    "vendor/htmx-ext-sse.min.js": (
        "98a46496de0c3605fbffdce9167ba427bdd9553184f83f149c261891a92c0136"
    ),
    "vendor/htmx-ext-sse.LICENSE": (
        "a17d224ce9afdc21ec9491b76a2f5d036d19aa641ac4f85ca29c21f9f7e54fdf"
    ),
}


def secret_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client on loopback (where the cookie is not Secure)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://127.0.0.1",
        headers={"Accept": BROWSER_ACCEPT},
    ) as http:
        yield http


async def sign_in(http: httpx.AsyncClient, secret: str) -> str:
    """Sign in with ``secret``; the CSRF token of the new session."""
    form = await http.get("/console/sign-in")
    assert form.status_code == 200
    token = SIGNIN.search(form.text)
    assert token is not None
    response = await http.post(
        "/console/sign-in", data={"api-key": secret, "signin-token": token.group(1)}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/today"
    today = await http.get("/console/today")
    assert today.status_code == 200, today.text
    found = CSRF.search(today.text)
    assert found is not None
    return found.group(1)


async def sign_in_to(http: httpx.AsyncClient, secret: str) -> str:
    """Sign in with ``secret``; where the console sends the browser."""
    form = await http.get("/console/sign-in")
    token = SIGNIN.search(form.text)
    assert token is not None
    response = await http.post(
        "/console/sign-in", data={"api-key": secret, "signin-token": token.group(1)}
    )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def make_person(client: httpx.AsyncClient, org: Org, first: str, last: str, kind: str) -> str:
    response = await client.post(
        "/v1/individuals/",
        json=doc("individuals", {"first-name": first, "last-name": last, "account-type": kind}),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def make_channel(client: httpx.AsyncClient, org: Org, members: list[str]) -> str:
    response = await client.post(
        "/v1/messaging-channels/",
        json=doc("messaging-channels", {"individual-ids": members}),
        headers=org.staff,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def post(
    client: httpx.AsyncClient, org: Org, channel: str, author: str, text: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/messaging-messages/",
        json=doc(
            "messaging-messages", {"channel-id": channel, "individual-id": author, "message": text}
        ),
        headers=org.staff,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def book(
    client: httpx.AsyncClient,
    org: Org,
    name: str,
    start: datetime,
    host: str,
    attendee: str,
    **attributes: Any,
) -> str:
    """A 20-minute appointment of ``host`` with ``attendee`` (``POST /v1/appointments/``)."""
    values = {
        "name": name,
        "start-time": start.isoformat().replace("+00:00", "Z"),
        "end-time": (start + timedelta(minutes=20)).isoformat().replace("+00:00", "Z"),
        "host": host,
        "attendees": [attendee],
        **attributes,
    }
    response = await client.post(
        "/v1/appointments/", json=doc("appointments", values), headers=org.staff
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def clinic(client: httpx.AsyncClient, org: Org) -> tuple[str, str, str]:
    """A nurse and a patient in one channel, the patient's message unanswered."""
    nurse = await make_person(client, org, "Nora", "Nurse", "provider")
    patient = await make_person(client, org, "Petra", "Quill", "participant")
    channel = await make_channel(client, org, [nurse, patient])
    await post(client, org, channel, patient, "My knee hurts")
    return nurse, patient, channel


async def expire(app: Any, org: Org, **values: Any) -> None:
    """Set the columns of the organization's console sessions (as time passing would)."""
    async with app.state.database.sessionmaker() as session:
        await session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.organization_id == uuid.UUID(org.id))
            .values(**values)
        )
        await session.commit()


# --- sessions -------------------------------------------------------------------------------


async def test_sign_in_sets_a_strict_httponly_cookie_and_signs_out(
    browser: httpx.AsyncClient, org: Org, app: Any
) -> None:
    form = await browser.get("/console/sign-in")
    token = SIGNIN.search(form.text)
    assert token is not None
    response = await browser.post(
        "/console/sign-in", data={"api-key": secret_of(org.staff), "signin-token": token.group(1)}
    )
    assert response.status_code == 303
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "console=" in v
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console/" in cookie
    assert "Secure" not in cookie  # loopback
    value = cookie.split(";")[0].split("=", 1)[1]
    assert secret_of(org.staff) not in response.text + cookie
    assert value != secret_of(org.staff)
    csrf = CSRF.search((await browser.get("/console/today")).text)
    assert csrf is not None

    # A new sign-in rotates the cookie and revokes the old session.
    old_cookie = browser.cookies.get("courier_console")
    await sign_in(browser, secret_of(org.staff))
    assert browser.cookies.get("courier_console") != old_cookie
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as stale:
        stale.cookies.set("courier_console", old_cookie or "", path="/console/")
        assert (await stale.get("/console/today")).status_code == 303

    csrf_now = CSRF.search((await browser.get("/console/today")).text)
    assert csrf_now is not None
    out = await browser.post("/console/sign-out", data={"csrf-token": csrf_now.group(1)})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    again = await browser.get("/console/today")
    assert again.status_code == 303 and again.headers["location"] == "/console/sign-in"


async def test_sessions_past_their_lifetime_are_forgotten_a_day_later(
    browser: httpx.AsyncClient, org: Org, app: Any
) -> None:
    await sign_in(browser, secret_of(org.staff))
    await expire(app, org, expires_at=utcnow() - timedelta(days=1, minutes=1))
    await sign_in(browser, secret_of(org.staff))  # any sign-in deletes them
    async with app.state.database.sessionmaker() as session:
        rows = (
            await session.execute(
                select(ConsoleSession).where(ConsoleSession.organization_id == uuid.UUID(org.id))
            )
        ).scalars()
        assert [row.expires_at > utcnow() for row in rows] == [True]


async def test_cookie_is_secure_off_loopback(app: Any, org: Org) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://courier.test"
    ) as http:
        form = await http.get("/console/sign-in")
        token = SIGNIN.search(form.text)
        assert token is not None
        response = await http.post(
            "/console/sign-in",
            data={"api-key": secret_of(org.readonly), "signin-token": token.group(1)},
        )
    assert response.status_code == 303
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    assert any("courier_console=" in c and "Secure" in c for c in cookies)


async def test_a_wrong_key_or_a_forged_sign_in_is_refused(
    browser: httpx.AsyncClient, org: Org
) -> None:
    form = await browser.get("/console/sign-in")
    token = SIGNIN.search(form.text)
    assert token is not None
    wrong = await browser.post(
        "/console/sign-in", data={"api-key": "ck_nope", "signin-token": token.group(1)}
    )
    assert wrong.status_code == 401 and "unknown, revoked or expired" in wrong.text
    assert "courier_console=" not in wrong.headers.get("set-cookie", "").split(";")[0]
    # Without the sign-in form's token (a cross-site form): 403, no session.
    forged = await browser.post(
        "/console/sign-in", data={"api-key": secret_of(org.admin), "signin-token": "x"}
    )
    assert forged.status_code == 403
    assert (await browser.get("/console/today")).status_code == 303


async def test_state_changes_need_the_csrf_token(browser: httpx.AsyncClient, org: Org) -> None:
    csrf = await sign_in(browser, secret_of(org.staff))
    assert (await browser.post("/console/sign-out")).status_code == 403
    wrong = await browser.post("/console/sign-out", headers={"X-CSRF-Token": "not-it"})
    assert wrong.status_code == 403
    assert (await browser.get("/console/today")).status_code == 200  # still signed in
    done = await browser.post("/console/sign-out", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 303


async def test_every_console_response_is_no_store(browser: httpx.AsyncClient, org: Org) -> None:
    responses = [
        await browser.get("/console/sign-in"),
        await browser.get("/console/today"),  # a redirect to sign in
        await browser.get("/console/static/console.css"),
    ]
    await sign_in(browser, secret_of(org.readonly))
    for path in ("/console/today", "/console/inbox", "/console/today/tiles", "/console/visits"):
        responses.append(await browser.get(path))
    responses.append(await browser.post("/console/sign-out"))  # 403
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.url
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_idle_and_absolute_expiry_and_key_revocation_end_the_session(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    await sign_in(browser, secret_of(org.staff))
    idle = app.state.settings.console_idle_timeout_seconds
    await expire(app, org, last_seen_at=utcnow() - timedelta(seconds=idle - 30))
    # A live refresh is not activity: the session stays as idle as it was.
    assert (await browser.get("/console/today/tiles", params={"live": "1"})).status_code == 200
    await expire(app, org, last_seen_at=utcnow() - timedelta(seconds=idle - 30))
    assert (await browser.get("/console/ping")).status_code == 204  # "Stay signed in"
    await expire(app, org, last_seen_at=utcnow() - timedelta(seconds=idle - 30))
    assert (await browser.get("/console/today")).status_code == 200  # activity: still in
    async with app.state.database.sessionmaker() as session:
        row = (
            await session.execute(
                select(ConsoleSession).where(ConsoleSession.organization_id == uuid.UUID(org.id))
            )
        ).scalars()
        assert all(utcnow() - r.last_seen_at < timedelta(seconds=60) for r in row)
    await expire(app, org, last_seen_at=utcnow() - timedelta(seconds=idle + 1))
    assert (await browser.get("/console/today")).status_code == 303  # idle: signed out
    assert (await browser.get("/console/ping")).status_code == 401
    # An idle session cannot come back.
    assert (await browser.get("/console/today")).status_code == 303

    await sign_in(browser, secret_of(org.staff))
    await expire(app, org, expires_at=utcnow() - timedelta(seconds=1))
    assert (await browser.get("/console/inbox")).status_code == 303  # 12 h are over

    await sign_in(browser, secret_of(org.admin))
    htmx = await browser.get("/console/inbox/list", headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    revoked = await client.delete(f"/v1/api-keys/{org.admin_key_id}/", headers=org.staff)
    assert revoked.status_code in (403, 404)  # staff may not; the admin key revokes itself
    other = await client.post(
        "/v1/api-keys/",
        json=doc("api-keys", {"name": "second admin", "role": "admin"}),
        headers=org.admin,
    )
    assert other.status_code == 201, other.text
    second = {"Authorization": f"Bearer {other.json()['data']['attributes']['secret']}"}
    gone = await client.delete(f"/v1/api-keys/{org.admin_key_id}/", headers=second)
    assert gone.status_code in (200, 204), gone.text
    after = await browser.get("/console/inbox/list", headers={"HX-Request": "true"})
    assert after.status_code == 401 and after.headers["hx-redirect"] == "/console/sign-in"


async def test_an_organizations_own_idle_limit_locks_its_sessions(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    assert app.state.settings.console_idle_timeout_seconds > 90
    response = await client.post(
        "/v1/org-preferences/",
        json=doc("org-preferences", {"name": "console-idle-timeout-seconds", "value-js": 60}),
        headers=org.admin,
    )
    assert response.status_code == 201, response.text
    await sign_in(browser, secret_of(org.staff))
    today = await browser.get("/console/today")
    # The page's warning timer and its footer follow the organization's limit.
    assert 'data-idle-seconds="60"' in today.text
    assert "lock after 1 minute without activity" in today.text
    await expire(app, org, last_seen_at=utcnow() - timedelta(seconds=50))
    assert (await browser.get("/console/today")).status_code == 200
    await expire(app, org, last_seen_at=utcnow() - timedelta(seconds=61))
    assert (await browser.get("/console/today")).status_code == 303  # locked after 60 s
    assert (await browser.get("/console/ping")).status_code == 401


async def session_rows(app: Any, org: Org) -> list[ConsoleSession]:
    async with app.state.database.sessionmaker() as session:
        stmt = select(ConsoleSession).where(ConsoleSession.organization_id == uuid.UUID(org.id))
        return list((await session.execute(stmt)).scalars())


REPLY_BOX = re.compile(r'<textarea id="reply-text"[^>]*>(.*?)</textarea>', re.S)


async def test_a_lock_keeps_the_page_and_its_draft_for_the_same_signer_only(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    _nurse, _patient, channel = await clinic(client, org)
    page = f"/console/conversations/{channel}"
    csrf = await sign_in(browser, secret_of(org.staff))
    draft = "Take two tablets & <rest> the knee"
    # CSRF-checked; a path that is no console page, or a draft past the limit, is refused.
    assert (await browser.post("/console/lock", data={"path": page})).status_code == 403
    for path in ("https://127.0.0.1/x", "//127.0.0.1/console/", "/console/sign-in", "/v1/x"):
        bad = await browser.post(
            "/console/lock", data={"path": path, "draft": draft, "csrf-token": csrf}
        )
        assert bad.status_code == 400, path
    long = await browser.post(
        "/console/lock", data={"path": page, "draft": "x" * 10_001, "csrf-token": csrf}
    )
    assert long.status_code == 400 and "at most 10000" in long.text
    assert (await browser.get(page)).status_code == 200  # nothing was locked

    locked = await browser.post(
        "/console/lock", data={"path": page, "draft": draft, "csrf-token": csrf}
    )
    assert locked.status_code == 204, locked.text
    assert "courier_console_resume=" in locked.headers["set-cookie"]
    assert (await browser.get("/console/today")).status_code == 303  # the session has ended
    (row,) = [r for r in await session_rows(app, org) if r.locked_path]
    assert row.draft_sealed and "tablets" not in row.draft_sealed  # stored sealed

    # The same key signs in again: back to the page, the draft in the reply box (once).
    assert await sign_in_to(browser, secret_of(org.staff)) == page
    reopened = await browser.get(page)
    box = REPLY_BOX.search(reopened.text)
    assert box is not None and box.group(1) == "Take two tablets &amp; &lt;rest&gt; the knee"
    again = REPLY_BOX.search((await browser.get(page)).text)
    assert again is not None and again.group(1) == ""
    assert all(r.draft_sealed is None for r in await session_rows(app, org))

    # Someone else signs in on that browser: the console opens Today, and the draft is gone.
    token = CSRF.search((await browser.get(page)).text)
    assert token is not None
    await browser.post(
        "/console/lock", data={"path": page, "draft": draft, "csrf-token": token.group(1)}
    )
    assert await sign_in_to(browser, secret_of(org.admin)) == "/console/today"
    assert all(r.draft_sealed is None for r in await session_rows(app, org))
    box = REPLY_BOX.search((await browser.get(page)).text)
    assert box is not None and box.group(1) == ""


async def test_a_kept_draft_is_forgotten_on_sign_out_and_when_sent(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    nurse, _patient, channel = await clinic(client, org)
    page = f"/console/conversations/{channel}"

    async def lock_with(text: str) -> str:
        found = CSRF.search((await browser.get(page)).text)
        assert found is not None
        response = await browser.post(
            "/console/lock", data={"path": page, "draft": text, "csrf-token": found.group(1)}
        )
        assert response.status_code == 204, response.text
        return await sign_in_to(browser, secret_of(org.staff))

    await sign_in(browser, secret_of(org.staff))
    assert await lock_with("Signed out before reading") == page
    found = CSRF.search((await browser.get("/console/today")).text)
    assert found is not None
    out = await browser.post("/console/sign-out", data={"csrf-token": found.group(1)})
    assert out.status_code == 303
    assert all(
        r.draft_sealed is None and r.locked_path is None for r in await session_rows(app, org)
    )

    await sign_in(browser, secret_of(org.staff))
    assert await lock_with("Sent from elsewhere") == page
    rows = [r for r in await session_rows(app, org) if r.revoked_at is None]
    assert [r.locked_path for r in rows] == [page]
    found = CSRF.search((await browser.get("/console/today")).text)
    assert found is not None
    sent = await browser.post(
        f"{page}/reply",
        data={
            "individual-id": nurse,
            "message": "Sent from elsewhere",
            "csrf-token": found.group(1),
        },
    )
    assert sent.status_code == 303, sent.text
    assert all(r.draft_sealed is None for r in await session_rows(app, org))
    box = REPLY_BOX.search((await browser.get(page)).text)
    assert box is not None and box.group(1) == ""


async def make_template(client: httpx.AsyncClient, org: Org, name: str, **body: Any) -> str:
    made = await client.post(
        "/v1/templates/", json=doc("templates", {"name": name, **body}), headers=org.admin
    )
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["id"])


OPTION = re.compile(r'role="option" id="template-option-([0-9a-f-]+)"[^>]*>([^<]*)</li>')


async def test_the_reply_boxs_template_picker_lists_by_name_and_renders_for_the_patient(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, other_org: Org
) -> None:
    _nurse, _patient, channel = await clinic(client, org)
    tag = uuid.uuid4().hex[:6]
    brace = await make_template(
        client,
        org,
        f"Brace ready {tag}",
        apn={
            "title": "Brace",
            "body": "Hello {{ individual.first_name }}, your knee brace is ready.",
        },
    )
    follow = await make_template(
        client, org, f"Follow-up {tag}", sms={"body": "How is the knee today?"}
    )
    lab = await make_template(
        client,
        org,
        f"Lab result {tag}",
        **{"required-data": {"result": "string"}, "sms": {"body": "Result: {{ result }}"}},
    )
    elsewhere = await make_template(
        client, other_org, f"Brace elsewhere {tag}", sms={"body": "Not yours"}
    )
    base = f"/console/conversations/{channel}/templates"
    assert (await browser.get(base)).status_code == 303  # signed out
    await sign_in(browser, secret_of(org.staff))
    page = await browser.get(f"/console/conversations/{channel}")
    assert f'data-templates="{base}"' in page.text and 'role="listbox"' in page.text

    listed = OPTION.findall((await browser.get(base, params={"q": "BRACE"})).text)
    assert listed == [(brace, f"Brace ready {tag}")]  # case-insensitive; not another org's
    every = {ident for ident, _name in OPTION.findall((await browser.get(base)).text)}
    assert {brace, follow} <= every and lab not in every and elsewhere not in every
    assert OPTION.findall((await browser.get(base, params={"q": "zzz-none"})).text) == []

    text = await browser.get(f"{base}/{brace}")
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert text.text == "Hello Petra, your knee brace is ready."
    assert (await browser.get(f"{base}/{follow}")).text == "How is the knee today?"
    needs = await browser.get(f"{base}/{lab}")
    assert needs.status_code == 422 and "needs data (result)" in needs.text
    assert (await browser.get(f"{base}/{elsewhere}")).status_code == 404
    assert (await browser.get(f"{base}/not-an-id")).status_code == 404
    assert (
        await browser.get(f"/console/conversations/{uuid.uuid4()}/templates")
    ).status_code == 404


# --- shell, roles ---------------------------------------------------------------------------


async def test_shell_names_the_organization_and_the_sandboxes_and_never_a_patient(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    _nurse, _patient, channel = await clinic(client, org)
    await sign_in(browser, secret_of(org.readonly))
    org_name = (await client.get(f"/v1/organizations/{org.id}/", headers=org.admin)).json()["data"][
        "attributes"
    ]["name"]
    pages = [
        await browser.get("/console/today"),
        await browser.get("/console/inbox"),
        await browser.get(f"/console/conversations/{channel}"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert org_name in page.text
        assert "Sandbox providers:" in page.text  # the test settings use every sandbox
        title = TITLE.search(page.text)
        assert title is not None and "Petra" not in title.group(1) and "Quill" not in title.group(1)
    assert "Petra Quill" in pages[1].text  # the inbox row shows the display name
    assert "Petra Quill" in pages[2].text and "My knee hurts" in pages[2].text


async def test_readonly_sees_no_send_and_its_forged_post_is_403(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org
) -> None:
    nurse, _patient, channel = await clinic(client, org)
    csrf = await sign_in(browser, secret_of(org.readonly))
    page = await browser.get(f"/console/conversations/{channel}")
    assert page.status_code == 200
    assert ">Send<" not in page.text and "/reply" not in page.text
    forged = await browser.post(
        f"/console/conversations/{channel}/reply",
        data={"individual-id": nurse, "message": "forged"},
        headers={"X-CSRF-Token": csrf},
    )
    assert forged.status_code == 403
    assert "communicate permission" in forged.text
    listed = await client.get(
        "/v1/messaging-messages/", params={"channel-id": channel}, headers=org.staff
    )
    assert all(m["attributes"]["message"] != "forged" for m in listed.json()["data"])


# --- Today ----------------------------------------------------------------------------------


async def test_today_tiles_count_the_seeded_data(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    nurse, patient, _channel = await clinic(client, org)
    answered = await make_channel(client, org, [nurse, patient])
    await post(client, org, answered, patient, "thanks")
    await post(client, org, answered, nurse, "you're welcome")
    now = utcnow()
    for minutes, status in ((30, "scheduled"), (90, "confirmed"), (150, "scheduled")):
        start = now + timedelta(minutes=minutes)
        await book(client, org, f"Visit {minutes}", start, nurse, patient, status=status)
    org_id = uuid.UUID(org.id)
    async with app.state.database.sessionmaker() as session:
        for state, age in (("failed", 1), ("undelivered", 5), ("failed", 30), ("delivered", 1)):
            at = now - timedelta(hours=age)
            session.add(
                Delivery(
                    organization_id=org_id,
                    channel="sms",
                    resource_type="texts",
                    resource_id=uuid.uuid4(),
                    recipient="+15550100",
                    provider="sms:sandbox",
                    state=state,
                    rank=9,
                    error_code="30003" if state != "delivered" else None,
                    created_at=at,
                    updated_at=at,
                )
            )
        for acknowledged, escalation in (
            (False, {"state": "waiting", "steps": [{}]}),
            (True, {"state": "waiting", "steps": []}),
            (False, None),
        ):
            session.add(
                UserNotification(
                    organization_id=org_id,
                    individual_id=uuid.UUID(nurse),
                    source="test",
                    batch_id=uuid.uuid4(),
                    acknowledged=acknowledged,
                    escalation=escalation,
                )
            )
        await session.commit()

    await sign_in(browser, secret_of(org.readonly))
    tiles = await browser.get("/console/today/tiles")
    counts = dict(re.findall(r'data-tile="(\w+)">([^<]+)<', tiles.text))
    assert counts == {
        "unread": "1",
        "voice": "—",
        "visits": "2",
        "escalations": "1",
        "failed": "2",
    }
    assert "no voice lines" in tiles.text
    for link in (
        "/console/inbox?tab=unread",
        "/console/visits",
        "/console/escalations",
        "/console/deliveries?status=failures&amp;period=24h",
    ):
        assert f'href="{link}"' in tiles.text
        assert (await browser.get(link.replace("&amp;", "&"))).status_code == 200
    log = await browser.get("/console/deliveries", params={"status": "failures", "period": "24h"})
    assert "30003" in log.text and log.text.count("<tr data-delivery=") == 2


# --- Inbox ----------------------------------------------------------------------------------


async def test_inbox_tabs_count_and_a_reply_lands_through_the_api(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    nurse, patient, channel = await clinic(client, org)
    other_nurse = await make_person(client, org, "Olga", "Other", "provider")
    patient2 = await make_person(client, org, "Rui", "Stone", "participant")
    quiet = await make_channel(client, org, [other_nurse, patient2])
    await post(client, org, quiet, patient2, "hello")
    await post(client, org, quiet, other_nurse, "hi Rui")
    csrf = await sign_in(browser, secret_of(org.staff))

    def counts(html: str) -> dict[str, str]:
        return dict(re.findall(r'data-count="(\w+)">(\d+)<', html))

    page = await browser.get("/console/inbox")
    assert counts(page.text) == {"mine": "0", "unread": "1", "all": "2"}
    assert "SMS bridge" not in page.text and ">app<" in page.text
    async with app.state.database.sessionmaker() as session:  # as set-sms leaves it
        await session.execute(
            scoped(update(MessagingChannel), MessagingChannel, uuid.UUID(org.id))
            .where(MessagingChannel.id == uuid.UUID(quiet))
            .values(with_sms=True)
        )
        await session.commit()
    kinds = re.findall(r"<td>(app|SMS bridge)</td>", (await browser.get("/console/inbox")).text)
    assert sorted(kinds) == ["SMS bridge", "app"]
    unread = await browser.get("/console/inbox/list", params={"tab": "unread"})
    assert "Petra Quill" in unread.text and "Rui Stone" not in unread.text
    assert "1 unread" in unread.text

    chosen = await browser.post(
        "/console/acting-as", data={"individual-id": nurse}, headers={"X-CSRF-Token": csrf}
    )
    assert chosen.status_code == 303
    mine = await browser.get("/console/inbox/list", params={"tab": "mine"})
    assert counts(mine.text)["mine"] == "1" and "Petra Quill" in mine.text
    refused = await browser.post(
        "/console/acting-as", data={"individual-id": patient}, headers={"X-CSRF-Token": csrf}
    )
    assert refused.status_code == 422

    page = await browser.get(f"/console/conversations/{channel}")
    assert ">Send<" in page.text
    sent = await browser.post(
        f"/console/conversations/{channel}/reply",
        data={"individual-id": nurse, "message": "Rest it and ice it"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert sent.status_code == 200, sent.text
    assert "Rest it and ice it" in sent.text
    listed = await client.get(
        "/v1/messaging-messages/", params={"channel-id": channel}, headers=org.staff
    )
    assert listed.status_code == 200
    texts = {m["attributes"]["message"]: m["attributes"] for m in listed.json()["data"]}
    assert "Rest it and ice it" in texts
    assert counts((await browser.get("/console/inbox")).text)["unread"] == "0"

    # The API's rules hold: someone not in the channel cannot reply (422), nor empty text.
    outsider = await browser.post(
        f"/console/conversations/{channel}/reply",
        data={"individual-id": other_nurse, "message": "hi"},
        headers={"X-CSRF-Token": csrf},
    )
    assert outsider.status_code == 422
    empty = await browser.post(
        f"/console/conversations/{channel}/reply",
        data={"individual-id": nurse, "message": "  "},
        headers={"X-CSRF-Token": csrf},
    )
    assert empty.status_code == 400
    # From htmx, the reason goes into the form's alert, with the same status.
    refused = await browser.post(
        f"/console/conversations/{channel}/reply",
        data={"individual-id": nurse, "message": "  "},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert refused.status_code == 400 and refused.headers["hx-retarget"] == "#reply-error"
    assert "must not be empty" in refused.text and "<html" not in refused.text


async def test_the_stream_authenticates_by_cookie_and_hints_after_a_post(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """Over a real socket (the ASGI test transport buffers whole responses)."""
    nurse, _patient, channel = await clinic(client, org)
    await sign_in(browser, secret_of(org.readonly))
    cookie = browser.cookies.get("courier_console")
    assert cookie
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        assert (await http.get("/console/events")).status_code == 401  # no cookie
        refused = await http.get("/console/events", headers={"Cookie": "courier_console=x"})
        assert refused.status_code == 401

        async def read_until_hint() -> str:
            async with http.stream(
                "GET", "/console/events", headers={"Cookie": f"courier_console={cookie}"}
            ) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                assert response.headers["cache-control"] == "no-store"
                return await until_hinted(response)

        reader = asyncio.create_task(read_until_hint())
        await asyncio.sleep(0.5)
        await post(client, org, channel, nurse, "Secret clinical words")
        body = await asyncio.wait_for(reader, timeout=15)
        # Signing out ends the open stream (the session is checked at every read).
        async with http.stream(
            "GET", "/console/events", headers={"Cookie": f"courier_console={cookie}"}
        ) as response:
            assert response.status_code == 200
            csrf = CSRF.search((await browser.get("/console/today")).text)
            assert csrf is not None
            out = await browser.post("/console/sign-out", data={"csrf-token": csrf.group(1)})
            assert out.status_code == 303

            async def drain() -> str:
                return "".join([text async for text in response.aiter_text()])

            ended = await asyncio.wait_for(drain(), timeout=15)
        assert "no longer valid" in ended
        assert (
            await http.get("/console/events", headers={"Cookie": f"courier_console={cookie}"})
        ).status_code == 401
    assert "event: messaging\ndata: messaging-messages" in body
    assert "Secret clinical words" not in body and nurse not in body  # hints, no payloads
    assert re.search(r"^id: \d+$", body, re.M)


async def until_hinted(response: httpx.Response) -> str:
    """What a console stream sent up to its first messaging hint (15 s at most)."""

    async def read() -> str:
        buffer = ""
        async for text in response.aiter_text():
            buffer += text
            if "event: messaging" in buffer and buffer.endswith("\n\n"):
                break
        return buffer

    return await asyncio.wait_for(read(), timeout=15)


async def test_a_page_s_stream_hints_what_happened_after_its_render(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """The inbox names the position it was rendered at; a message posted between the render
    and the stream's connection (a slow network, a busy server) is still hinted, and one
    posted before the render is not."""
    nurse, _patient, channel = await clinic(client, org)
    await post(client, org, channel, nurse, "Before the page")
    await sign_in(browser, secret_of(org.staff))
    cookie = browser.cookies.get("courier_console")
    inbox = await browser.get("/console/inbox")
    assert inbox.status_code == 200
    found = re.search(r'sse-connect="/console/events\?after=(\d+)"', inbox.text)
    assert found is not None, inbox.text
    # A script's fetch asks for no position (its answer is never a page with a stream).
    fetched = await browser.get("/console/inbox", headers={"Accept": "*/*"})
    assert 'sse-connect="/console/events"' in fetched.text
    await post(client, org, channel, nurse, "After the page, before its stream")
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        url = f"/console/events?after={found.group(1)}"
        async with http.stream(
            "GET", url, headers={"Cookie": f"courier_console={cookie}"}
        ) as response:
            assert response.status_code == 200
            buffer = await until_hinted(response)
    ids = [int(i) for i in re.findall(r"^id: (\d+)$", buffer, re.M)]
    assert ids and min(ids) > int(found.group(1))


async def test_once_the_stream_is_open_nothing_is_missed(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    org: Org,
    app: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stream opened without a position starts where it was answered: a message posted
    once the response has started (the console shows "Live") and before the stream's first
    read (here held back a second) is hinted."""
    nurse, _patient, channel = await clinic(client, org)
    await sign_in(browser, secret_of(org.staff))
    cookie = browser.cookies.get("courier_console")
    original = EventStream.start_cursor

    async def late(self: EventStream) -> Cursor:
        await asyncio.sleep(1.0)
        return await original(self)

    monkeypatch.setattr(EventStream, "start_cursor", late)
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        headers = {"Cookie": f"courier_console={cookie}"}
        async with http.stream("GET", "/console/events", headers=headers) as response:
            assert response.status_code == 200
            await post(client, org, channel, nurse, "Just after Live")
            buffer = await until_hinted(response)
    assert "data: messaging-messages" in buffer


async def test_a_position_that_is_not_one_is_ignored(
    browser: httpx.AsyncClient, org: Org, app: Any
) -> None:
    """``after`` (and ``Last-Event-ID``) that are not ASCII digits ("²" is a digit to Python,
    not to int) start the stream now, never a 500."""
    await sign_in(browser, secret_of(org.staff))
    cookie = browser.cookies.get("courier_console")
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        # (a header's bytes are read as Latin-1: b"\xb2" is "\u00b2")
        for after, last in (("\u00b2", b""), ("12", b"\xb2"), ("-3", b"x")):
            headers = {"Cookie": f"courier_console={cookie}".encode(), "Last-Event-ID": last}
            url = f"/console/events?after={after}"
            async with http.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200
                async for text in response.aiter_text():
                    assert "connected" in text
                    break


def test_hints_keep_the_resume_id_and_drop_the_payload() -> None:
    chunk = (
        b"retry: 3000\n: connected\n\n"
        b'id: 7\nevent: messaging-messages.created\ndata: {"resource-type": "messaging-messages",'
        b' "data": {"x": 1}}\n\n'
        b'id: 9\nevent: appointments.created\ndata: {"resource-type": "appointments"}\n\n'
    )
    assert as_hints(chunk) == (
        b"retry: 3000\n: connected\n\n"
        b"id: 7\nevent: messaging\ndata: messaging-messages\n\n"
        b"id: 9\nevent: change\ndata: appointments\n\n"
    )


def test_vendored_htmx_is_the_pinned_release() -> None:
    for name, digest in VENDORED.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    source = (STATIC / "SOURCE.md").read_text(encoding="utf-8")
    for name, digest in VENDORED.items():
        assert f"{digest}  {name}" in source
