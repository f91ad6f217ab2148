"""The console in a real browser: Playwright for Python drives Debian's Chromium against a real
``courier serve`` on 127.0.0.1 (a SQLite file of its own), refusing every request that would
leave the machine. Sign in, the Today screen, the inbox, a message posted through the API
appearing without a reload, a reply from the keyboard; axe-core (vendored in
``tests/vendor/axe-core``) finds no WCAG 2.x A/AA violation on each screen. Skipped, saying why,
where Chromium or Playwright is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import re

import httpx

from tests.console_browser_support import (
    AXE_DIR,
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
    running,
    sign_in_with_key,
)

__all__ = ["running"]  # the real server fixture


def test_vendored_axe_matches_its_checksums() -> None:
    note = (AXE_DIR / "SOURCE.md").read_text(encoding="utf-8")
    sums = re.findall(r"^([0-9a-f]{64})  (\S+)$", note, flags=re.MULTILINE)
    assert {name for _, name in sums} == {"axe.min.js", "LICENSE", "LICENSE-3RD-PARTY.txt"}
    for digest, name in sums:
        assert hashlib.sha256((AXE_DIR / name).read_bytes()).hexdigest() == digest, name


async def test_sign_in_today_inbox_live_update_and_reply_in_chromium(
    running: Server,
) -> None:
    server = running.base
    chromium = chromium_or_skip()

    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        org = await created(
            http, "/v1/organizations/", "organizations", {"name": "Harbor Clinic"}, MASTER
        )
        secret = await api_key(http, org, "desk", "staff")
        staff = {"Authorization": f"Bearer {secret}"}
        admin = {"Authorization": f"Bearer {await api_key(http, org, 'admin', 'admin')}"}

        async def person(first: str, last: str, kind: str) -> str:
            return await individual(http, admin, first, last, kind)

        async def channel(members: list[str]) -> str:
            attrs = {"individual-ids": members}
            return await created(
                http, "/v1/messaging-channels/", "messaging-channels", attrs, staff
            )

        async def post(channel_id: str, author: str, text: str) -> None:
            attrs = {"channel-id": channel_id, "individual-id": author, "message": text}
            await created(http, "/v1/messaging-messages/", "messaging-messages", attrs, staff)

        nurse = await person("Nora", "Nurse", "provider")
        petra = await person("Petra", "Quill", "participant")
        first = await channel([nurse, petra])
        await post(first, petra, "My knee hurts")

        axe = axe_script()
        async with console_page(chromium) as browsed:
            page = browsed.page
            # Sign in.
            await sign_in_with_key(page, server, secret, axe=axe)
            assert await page.title() == "Today · Courier console"
            assert "Harbor Clinic" in await page.locator("header").inner_text()
            assert await page.locator("[data-tile=unread]").inner_text() == "1"
            await page.locator("#live-status", has_text="Live").wait_for(timeout=15_000)
            await at_both_widths(page, axe, "today")
            screens = {"Visits": "visits", "Escalations": "escalations"}
            for screen, path in {**screens, "Delivery log": "deliveries"}.items():
                await page.get_by_role("link", name=screen, exact=True).click()
                await page.wait_for_url(f"**/console/{path}")
                await page.wait_for_load_state("load")
                await at_both_widths(page, axe, screen.lower())

            # The inbox; a patient writes in through the API: the row appears live.
            await page.get_by_role("link", name="Inbox", exact=True).click()
            await page.get_by_role("heading", name="Inbox").wait_for()
            await page.locator("#live-status", has_text="Live").wait_for(timeout=15_000)
            assert await page.locator("[data-count=all]").inner_text() == "1"
            await no_violations(page, axe, "inbox")
            await page.evaluate("() => { window.notReloaded = true; }")
            await page.get_by_role("link", name="Petra Quill").focus()
            rui = await person("Rui", "Stone", "participant")
            second = await channel([nurse, rui])
            await post(second, rui, "Can I move my visit?")
            await page.get_by_role("link", name="Rui Stone").wait_for(timeout=10_000)
            assert await page.locator("[data-count=all]").inner_text() == "2"
            assert await page.locator("[data-count=unread]").inner_text() == "2"
            assert await page.evaluate("() => window.notReloaded === true")
            # Focus stayed where it was; the news went to the polite live region.
            focused = await page.evaluate("() => document.activeElement.id")
            assert focused == f"conversation-{first}"
            assert await page.locator("#live-news").inner_text() == "2 unread conversations"
            assert "Rui" not in await page.title()
            await at_both_widths(page, axe, "inbox")

            # The server restarts: the stream says so, resumes, and the next message
            # updates the same row (no duplicate).
            running.stop()
            await page.locator("#live-status", has_text="Reconnecting").wait_for()
            await asyncio.to_thread(running.start)
            await page.locator("#live-status", has_text="Live").wait_for(timeout=20_000)
            await post(first, petra, "Also my ankle")
            row = page.locator(f"tr[data-channel='{first}']")
            await row.get_by_text("2 unread").wait_for(timeout=10_000)
            assert await page.locator("table.inbox tbody tr").count() == 2
            assert await page.evaluate("() => window.notReloaded === true")

            # Open the conversation and reply, from the keyboard. Petra wrote last: her
            # row is first now, and still has the focus.
            focused = await page.evaluate("() => document.activeElement.id")
            assert focused == f"conversation-{first}"
            await page.keyboard.press("ArrowDown")
            focused = await page.evaluate("() => document.activeElement.id")
            assert focused == f"conversation-{second}"
            await page.keyboard.press("Home")
            focused = await page.evaluate("() => document.activeElement.id")
            assert focused == f"conversation-{first}"
            await page.keyboard.press("End")
            await page.keyboard.press("Enter")
            await page.get_by_role("heading", name="Messages").wait_for()
            assert await page.title() == "Conversation · Courier console"
            await at_both_widths(page, axe, "conversation")
            # A refusal of the API shows in the form, the draft kept.
            await page.get_by_role("textbox", name="Message").fill("   ")
            await page.get_by_role("button", name="Send").click()
            await page.get_by_role("alert").filter(has_text="must not be empty").wait_for()
            assert await page.get_by_role("textbox", name="Message").input_value() == "   "
            await page.get_by_role("textbox", name="Message").fill("Yes: call us to pick a time")
            await page.get_by_role("textbox", name="Message").press("Tab")
            await page.keyboard.press("Enter")
            await page.locator(".messages", has_text="Yes: call us to pick a time").wait_for()
            assert await page.get_by_role("textbox", name="Message").input_value() == ""

            # "/" at the start of the reply: the templates by name, from the keyboard.
            for name, body in (
                ("Knee brace ready", "Your brace is ready, {{ individual.first_name }}."),
                ("Knee exercises", "Hello {{ individual.first_name }}: ten squats a day."),
            ):
                attrs = {"name": name, "apn": {"title": "Clinic", "body": body}}
                await created(http, "/v1/templates/", "templates", attrs, admin)
            box = page.get_by_role("textbox", name="Message")
            options = page.get_by_role("listbox", name="Templates")
            await box.focus()
            await page.keyboard.type("/zz")
            await page.locator("#template-status", has_text="No template matches").wait_for(
                state="attached"
            )
            assert not await options.is_visible()
            await page.keyboard.press("Backspace")
            await page.keyboard.press("Backspace")
            await page.keyboard.type("kne")
            await options.get_by_role("option", name="Knee exercises").wait_for()
            assert await options.get_by_role("option").count() == 2
            selected = options.locator("[aria-selected=true]")
            assert await selected.inner_text() == "Knee brace ready"
            await no_violations(page, axe, "conversation with the template list")
            await page.keyboard.press("Escape")
            await options.wait_for(state="hidden")
            await page.keyboard.type("e")
            await options.get_by_role("option", name="Knee exercises").wait_for()
            await page.keyboard.press("ArrowDown")
            assert await selected.inner_text() == "Knee exercises"
            active = await box.get_attribute("aria-activedescendant")
            assert active and active.startswith("template-option-")
            await page.keyboard.press("Enter")
            await page.wait_for_function(
                "() => document.getElementById('reply-text').value.startsWith('Hello')"
            )
            assert await box.input_value() == "Hello Rui: ten squats a day."
            assert await options.is_hidden()
            assert await box.evaluate("b => b === document.activeElement")
            await box.fill("")

            # Idle: a warning 30 s ahead, "Stay signed in" with one key, then the lock
            # (on a fake clock; the server's own expiry is tested in test_console.py).
            idle = 600_000  # COURIER_CONSOLE_IDLE_TIMEOUT_SECONDS, default
            conversation = page.url
            await page.clock.install()
            await page.goto(conversation)
            await page.get_by_role("heading", name="Messages").wait_for()
            # An unsent reply, left as the person walks away.
            draft = "Draft: ice the knee twice a day"
            await page.get_by_role("textbox", name="Message").fill(draft)
            warning = page.get_by_role("alertdialog", name="Still there?")
            assert not await warning.is_visible()
            await page.clock.run_for(idle - 15_000 - 30_000 + 2_000)
            await warning.wait_for()
            await no_violations(page, axe, "conversation with the lock warning")
            stay = page.get_by_role("button", name="Stay signed in")
            assert await stay.evaluate("b => b === document.activeElement")
            await page.keyboard.press("Enter")
            await warning.wait_for(state="hidden")
            await page.clock.run_for(idle - 15_000 - 30_000 + 2_000)
            await warning.wait_for()
            await page.clock.run_for(31_000)
            await page.wait_for_url("**/console/sign-in?locked=1")
            assert "Rui Stone" not in await page.content()
            assert "locked after a period without activity" in await page.content()
            assert draft not in await page.content()
            # Signing in again on this browser reopens the conversation with the draft.
            await page.get_by_label("API key").fill(secret)
            await page.get_by_role("button", name="Sign in with the key").click()
            await page.wait_for_url(conversation)
            await page.get_by_role("heading", name="Messages").wait_for()
            assert await page.get_by_role("textbox", name="Message").input_value() == draft
        listed = await http.get(
            "/v1/messaging-messages/", params={"channel-id": second}, headers=staff
        )
        sent = {m["attributes"]["message"] for m in listed.json()["data"]}
        assert "Yes: call us to pick a time" in sent and draft not in sent
    assert browsed.left_the_machine == []
    assert [e for e in browsed.errors if "Content Security Policy" in e] == []
