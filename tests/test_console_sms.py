"""The console's conversation on an SMS bridge channel (issue 18, screen 3), against a live
sandbox carrier: without an accepted SMS consent a reply is blocked with the texts domain's
reason (not rendered, and 422 when forged); with one, the reply is texted and the conversation
shows the text's delivery state. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from courier.core.tenancy import scoped
from courier.models.messaging import MessagingChannel
from tests.test_console import CSRF, SIGNIN
from tests.test_sms_bridge import Live, bodies, clinic, consent, live, set_sms, settle

__all__ = ["live"]  # the module-scoped live server fixture


@pytest.fixture
async def browser(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=live.app), base_url="http://127.0.0.1"
    ) as http:
        yield http


async def _sign_in(http: httpx.AsyncClient, secret: str) -> str:
    form = await http.get("/console/sign-in")
    token = SIGNIN.search(form.text)
    assert token is not None
    signed = await http.post(
        "/console/sign-in", data={"api-key": secret, "signin-token": token.group(1)}
    )
    assert signed.status_code == 303
    found = CSRF.search((await http.get("/console/today")).text)
    assert found is not None
    return found.group(1)


async def test_an_sms_reply_waits_for_consent_then_shows_its_delivery_state(
    live: Live, browser: httpx.AsyncClient
) -> None:
    c = await clinic(live)
    # The path is on but the consent is missing (as after a STOP that raced the switch).
    async with live.app.state.database.sessionmaker() as session:
        await session.execute(
            scoped(update(MessagingChannel), MessagingChannel, uuid.UUID(c.org.id))
            .where(MessagingChannel.id == uuid.UUID(c.channel))
            .values(with_sms=True)
        )
        await session.commit()
    csrf = await _sign_in(browser, c.org.staff["Authorization"].removeprefix("Bearer "))
    page = await browser.get(f"/console/conversations/{c.channel}")
    assert page.status_code == 200
    assert "Reply blocked:" in page.text and "has not accepted texts" in page.text
    assert ">Send<" not in page.text
    forged = await browser.post(
        f"/console/conversations/{c.channel}/reply",
        data={"individual-id": c.provider, "message": "Are you there?"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert forged.status_code == 422 and "has not accepted texts" in forged.text
    assert forged.headers["hx-retarget"] == "#reply-error"

    # The patient says YES: the reply is allowed, texted, and shows as delivered.
    await consent(live, c)
    switched = await set_sms(live, c, active=True)
    assert switched.status_code in (200, 201), switched.text
    await settle(live)
    page = await browser.get(f"/console/conversations/{c.channel}")
    assert "Reply blocked" not in page.text and ">Send<" in page.text
    assert re.search(r"SMS consent: <strong>accepted</strong>", page.text)
    sent = await browser.post(
        f"/console/conversations/{c.channel}/reply",
        data={"individual-id": c.provider, "message": "Your results are fine"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert sent.status_code == 200, sent.text
    await settle(live)
    assert "Your results are fine" in await bodies(live, c)
    messages = await browser.get(f"/console/conversations/{c.channel}/messages")
    assert '<span class="sms-state">SMS delivered</span>' in messages.text, messages.text
    timeline = await browser.get(f"/console/patients/{c.patient}/timeline")
    kinds = set(re.findall(r'<tr data-kind="(\w+)">', timeline.text))
    assert {"message", "text", "consent"} <= kinds
