"""The console's operator screens in a real browser: Playwright for Python drives Debian's
Chromium against a real ``courier serve`` (its worker embedded, the sandboxes calling it back
on 127.0.0.1), refusing every request that would leave the machine.

- a sandbox caller dials the line and queues: the caller appears without a reload, with
  position 1 and a wait that ticks; an agent joins from the keyboard and the caller is put
  through;
- a video visit's Join is disabled (with the reason) before its join window and enabled once
  the visit moves into it, without a reload; Join gives the API's credentials;
- a forced sandbox failure of a text appears in the delivery log with its code in plain words
  and in Today's failed-sends tile.

axe-core finds no WCAG 2.x A/AA violation on each screen (at 1280 and 320 px), after the live
updates too. Skipped, saying why, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from courier.core.time import utcnow
from tests.console_browser_support import (
    MASTER,
    Server,
    api_key,
    at_both_widths,
    axe_script,
    chromium_or_skip,
    console_page,
    created,
    individual,
    no_violations,
    sign_in_with_key,
)
from tests.test_console_operations import escalated, iso, midday_zone, move_visit

CALLER = "+14155550150"
PATIENT_PHONE = "+14155550160"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Server]:
    """``courier serve`` with its worker: numbers are provisioned, lines configured, callers
    dispatched, rooms created and texts sent; the sandboxes call back at its own address."""
    running = Server(tmp_path / "data")
    running.env.update(
        COURIER_RUN_WORKER="true",
        COURIER_PUBLIC_URL=running.base,
        COURIER_SANDBOX_DELAY_SECONDS="0.05",
        COURIER_JOB_BACKOFF_BASE_SECONDS="0.2",
        COURIER_JOB_BACKOFF_MAX_SECONDS="1",
        COURIER_RATE_LIMIT="1000000/minute",
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def until(check: Any, what: str, within: float = 30.0) -> Any:
    """Poll ``check`` (an async callable) until it answers something truthy."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def escalating(server: Server, org: str, individual: str) -> None:
    """An unacknowledged notification whose ladder has run its first step, in the server's
    own database."""
    import uuid

    from sqlalchemy import insert
    from sqlalchemy.ext.asyncio import create_async_engine

    from courier.models.user_notification import UserNotification

    now = utcnow()
    ladder = escalated(now, care_team_after=900)
    path = Path(server.env["COURIER_DATA_DIR"]) / "courier.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(UserNotification).values(
                    id=uuid.uuid4(),
                    organization_id=uuid.UUID(org),
                    individual_id=uuid.UUID(individual),
                    source="lab-results",
                    category="lab-result",
                    batch_id=uuid.uuid4(),
                    escalation=ladder,
                    data={},
                    channels=[],
                    acknowledged=False,
                    active=True,
                    sensitive=False,
                    created_at=now,
                    last_modified_at=now,
                )
            )
    finally:
        await engine.dispose()


async def test_call_queue_visit_join_and_a_failed_send_in_chromium(running: Server) -> None:
    server = running.base
    chromium = chromium_or_skip()

    now = utcnow()
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        org = await created(
            http,
            "/v1/organizations/",
            "organizations",
            {"name": "Harbor Clinic", "timezone": midday_zone(now)},
            MASTER,
        )
        keys = {role: await api_key(http, org, role, role) for role in ("staff", "admin")}
        staff = {"Authorization": f"Bearer {keys['staff']}"}
        admin = {"Authorization": f"Bearer {keys['admin']}"}

        nurse = await individual(http, admin, "Nora", "Nurse", "provider")
        petra = await individual(http, admin, "Petra", "Quill", "participant", phone=CALLER)

        # A voice line on a provisioned sandbox number, configured by the worker.
        await created(http, "/v1/text-accounts/", "text-accounts", {}, admin)
        number_id = await created(
            http, "/v1/text-account-numbers/", "text-account-numbers", {"area-code": "415"}, admin
        )

        async def provisioned() -> str | None:
            got = await http.get(f"/v1/text-account-numbers/{number_id}/", headers=admin)
            attrs = got.json()["data"]["attributes"]
            return str(attrs["phone-number"]) if attrs["status"] == "active" else None

        number = await until(provisioned, "the number to be provisioned")
        line = await created(
            http,
            "/v1/voice-settings/",
            "voice-settings",
            {"phone-number": number, "wait-message": "Please hold"},
            admin,
        )

        async def configured() -> bool:
            got = await http.get(f"/v1/voice-settings/{line}/", headers=admin)
            return bool(got.json()["data"]["attributes"]["line-state"] == "configured")

        await until(configured, "the line to be configured")

        async def sandbox(path: str, **body: Any) -> dict[str, Any]:
            answer = await http.post(f"/sandbox/{path}", json=body, headers=admin)
            assert answer.status_code == 200, answer.text
            data: dict[str, Any] = answer.json()["data"]
            return data

        axe = axe_script()
        async with console_page(chromium) as browsed:
            page = browsed.page
            await sign_in_with_key(page, server, keys["staff"])
            assert await page.locator("[data-tile=voice]").inner_text() == "0"

            # Done-when 2: a sandbox caller queues; position and wait appear; an agent joins.
            await page.get_by_role("link", name="Calls", exact=True).click()
            await page.get_by_role("heading", name="Call queue").wait_for()
            await page.locator("#live-status", has_text="Live").wait_for(timeout=15_000)
            await page.evaluate("() => { window.notReloaded = true; }")
            call = await sandbox("voice/call", **{"from": CALLER, "to": number})
            await sandbox("voice/press", call=call["call-sid"], digits="1")
            row = page.locator("tr[data-entry]", has_text="Petra Quill")
            await row.wait_for(timeout=15_000)
            assert await row.locator("[data-position]").inner_text() == "1"
            wait = row.locator("time.wait")
            first = await wait.inner_text()
            await page.wait_for_function(
                "(was) => document.querySelector('tr[data-entry] time.wait').textContent !== was",
                arg=first,
                timeout=5_000,
            )  # it ticks, from the page's clock (live refreshes replace the element)
            assert await page.evaluate("() => window.notReloaded === true")
            await at_both_widths(page, axe, "calls")
            await page.get_by_label("Agent", exact=True).select_option(label="Nora Nurse")
            await page.get_by_label("Agent", exact=True).focus()
            await page.keyboard.press("Tab")  # to "in this browser", already chosen
            await page.keyboard.press("Tab")
            await page.keyboard.press("Tab")
            await page.keyboard.press("Enter")  # Tab: the way, the phone, "Join queue"
            await page.get_by_text("Joined by browser as agent-").wait_for(timeout=10_000)
            assert await page.locator("#agent-token").input_value()
            agent = page.locator("li[data-agent]", has_text="Nora Nurse")
            await agent.wait_for()
            # The worker puts the caller through to the agent: the page follows.
            await row.get_by_text("with an agent").wait_for(timeout=20_000)
            await agent.locator(".state", has_text="busy").wait_for(timeout=20_000)
            await no_violations(page, axe, "calls after the agent joined")
            await page.get_by_role("link", name="Today", exact=True).click()
            await page.get_by_role("heading", name="Today").wait_for()
            assert await page.locator("[data-tile=voice]").inner_text() == "0"

            # Done-when 3: Join is disabled before the window, enabled inside it.
            start = now + timedelta(minutes=60)
            visit = await created(
                http,
                "/v1/video-channels/",
                "video-channels",
                {
                    "participants": [nurse, petra],
                    "appointment": {"start": iso(start), "duration": 20},
                },
                staff,
            )
            await page.get_by_role("link", name="Visits", exact=True).click()
            await page.get_by_role("heading", name="Today's visits").wait_for()
            await page.locator("#live-status", has_text="Live").wait_for(timeout=15_000)
            join = page.locator(f"#join-{visit}")
            assert await join.is_disabled()
            why = await page.locator(f"#join-why-{visit}").inner_text()
            assert why.startswith("Join opens at") or "room" in why
            await at_both_widths(page, axe, "visits")
            await move_visit(http, visit, now + timedelta(minutes=5), staff)
            await page.wait_for_function(
                f"() => {{ const b = document.getElementById('join-{visit}');"
                " return b && !b.disabled; }",
                timeout=20_000,
            )  # live, once the room exists
            await no_violations(page, axe, "visits with Join enabled")
            await join.click()
            await page.get_by_role("heading", name="Joining the visit").wait_for()
            assert await page.locator("#visit-token").input_value()
            assert nurse in await page.locator("main").inner_text()
            await at_both_widths(page, axe, "visit-join")

            # Done-when 4: a forced failure appears in the log with its code, and in Today.
            await sandbox("sms/failures", code="30007")
            text = await created(
                http,
                "/v1/texts/",
                "texts",
                {"target": PATIENT_PHONE, "message": "Your results are ready"},
                staff,
            )

            async def text_failed() -> bool:
                got = await http.get(f"/v1/texts/{text}/", headers=staff)
                return bool(got.json()["data"]["attributes"]["status"] == "failed")

            await until(text_failed, "the text to fail")
            await page.get_by_role("link", name="Today", exact=True).click()
            await page.get_by_role("heading", name="Today").wait_for()
            assert await page.locator("[data-tile=failed]").inner_text() == "1"
            await page.get_by_role("link", name="failed sends in 24 hours").click()
            await page.get_by_role("heading", name="Delivery log").wait_for()
            failed = page.locator("tr[data-delivery]", has_text="30007")
            await failed.wait_for()
            assert "possible spam" in await failed.inner_text()
            await at_both_widths(page, axe, "delivery-log")
            await failed.get_by_role("link").click()
            await page.get_by_role("heading", name="State history").wait_for()
            assert await page.locator("[data-code]").inner_text() == "30007"
            assert await page.locator("[data-state]").inner_text() == "failed"
            await at_both_widths(page, axe, "delivery")

            # An escalation ladder (no API call starts one: written as the notify path
            # writes it); Acknowledge from the keyboard stops it.
            await escalating(running, org, nurse)
            await page.get_by_role("link", name="Escalations", exact=True).click()
            await page.get_by_role("heading", name="Unacknowledged escalations").wait_for()
            await page.locator("tr[data-escalation]", has_text="1 of 2 (sms)").wait_for()
            await at_both_widths(page, axe, "escalations")
            await page.get_by_role("button", name="Acknowledge").focus()
            await page.keyboard.press("Enter")
            await page.get_by_text("Acknowledged: the escalation stopped.").wait_for()
            assert await page.locator("tr[data-escalation]").count() == 0
            await no_violations(page, axe, "escalations after Acknowledge")
        agents = await http.get(
            "/v1/voice-queue-agents/", params={"setting-id": line}, headers=staff
        )
        [joined] = agents.json()["data"]
        assert joined["attributes"]["individual-id"] == nurse
    assert browsed.left_the_machine == []
    assert [e for e in browsed.errors if "Content Security Policy" in e] == []
