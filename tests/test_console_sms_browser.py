"""The console with a texting patient, in a real browser (issue 18, Done-when 1 and 5):
Playwright for Python drives Debian's Chromium against a real ``courier serve`` on SQLite, its
worker embedded and the sandbox carrier calling it back on 127.0.0.1; every request that would
leave the machine is refused.

- a sandbox phone texts the clinic's number, on an SMS bridge channel whose patient accepted
  texts: the row and the unread count appear in the open inbox without a reload; a reply from
  the keyboard reaches the phone, and the conversation shows it delivered, live;
- a readonly key sees the conversation without a Send control; its forged POST of a reply
  (with the page's CSRF token) is 403, and so is a POST without the token; nothing is posted.

axe-core finds no WCAG 2.x A/AA violation on each screen (at 1280 and 320 px), after the live
updates too. Skipped, saying why, where Chromium or Playwright is missing.
"""

from __future__ import annotations

from typing import Any

import httpx

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
from tests.test_console_operations_browser import running, until

__all__ = ["running"]  # courier serve with its worker

PHONE = "+14155550177"  # reserved (555-01xx): the sandbox delivers to it
CONSENT = {"initial": "May Harbor Clinic text you? Reply YES or NO", "accept": "Thank you"}


async def test_a_texting_patient_and_a_readonly_key_in_chromium(running: Server) -> None:
    server = running.base
    chromium = chromium_or_skip()

    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        org = await created(
            http, "/v1/organizations/", "organizations", {"name": "Harbor Clinic"}, MASTER
        )
        keys = {role: await api_key(http, org, role, role) for role in ("staff", "admin")}
        readonly = await api_key(http, org, "auditor", "readonly")
        staff = {"Authorization": f"Bearer {keys['staff']}"}
        admin = {"Authorization": f"Bearer {keys['admin']}"}

        async def sandbox(path: str, **body: Any) -> Any:
            answer = await http.post(f"/sandbox/{path}", json=body, headers=admin)
            assert answer.status_code == 200, answer.text
            return answer.json()["data"]

        async def phone_got() -> list[dict[str, Any]]:
            got = await http.get("/sandbox/sms/messages", params={"number": PHONE}, headers=admin)
            assert got.status_code == 200, got.text
            return list(got.json()["data"])

        # A provisioned number; a patient whose login has the phone; their channel on it.
        await created(http, "/v1/text-accounts/", "text-accounts", {}, admin)
        number_id = await created(
            http, "/v1/text-account-numbers/", "text-account-numbers", {"area-code": "415"}, admin
        )

        async def provisioned() -> str | None:
            got = await http.get(f"/v1/text-account-numbers/{number_id}/", headers=admin)
            attrs = got.json()["data"]["attributes"]
            return str(attrs["phone-number"]) if attrs["status"] == "active" else None

        number = await until(provisioned, "the number to be provisioned")
        nurse = await individual(http, admin, "Nora", "Nurse", "provider")
        petra = await individual(http, admin, "Petra", "Quill", "participant")
        user = await created(
            http,
            "/v1/users/",
            "users",
            {"username": "petra-quill", "phone": PHONE, "primary-individual-id": petra},
            admin,
        )
        channel = await created(
            http,
            "/v1/messaging-channels/",
            "messaging-channels",
            {"individual-ids": [nurse, petra], "text-number-id": number_id},
            staff,
        )

        # The patient accepts texts (YES from the phone), and the bridge is switched on.
        attrs = {"user-id": user, "args": {"messages": CONSENT}}
        await created(http, "/v1/user-consents/", "user-consents", attrs, staff)

        async def asked() -> bool:
            return any(m["body"] == CONSENT["initial"] for m in await phone_got())

        await until(asked, "the consent question to reach the phone")
        await sandbox("sms/replies", **{"from": PHONE, "to": number, "body": "YES"})

        async def accepted() -> bool:
            got = await http.get(
                "/v1/user-consents/", params={"filter[user-id]": user}, headers=admin
            )
            return [c["attributes"]["state"] for c in got.json()["data"]] == ["accepted"]

        await until(accepted, "the consent to be accepted")
        switched = await http.post(
            f"/v1/messaging-channels/{channel}/set-sms/", json={"active": True}, headers=staff
        )
        assert switched.status_code in (200, 201), switched.text

        async def bridged() -> bool:
            got = await http.get(f"/v1/messaging-channels/{channel}/", headers=staff)
            return bool(got.json()["data"]["attributes"]["with-sms"])

        await until(bridged, "the SMS bridge to be on")

        axe = axe_script()
        async with console_page(chromium) as browsed:
            page = browsed.page
            await sign_in_with_key(page, server, keys["staff"])
            await page.get_by_role("link", name="Inbox", exact=True).click()
            await page.get_by_role("heading", name="Inbox").wait_for()
            await page.locator("#live-status", has_text="Live").wait_for(timeout=15_000)
            unread = page.locator("[data-count=unread]")
            assert await unread.inner_text() == "0"
            await page.evaluate("() => { window.notReloaded = true; }")

            # Done-when 1: the phone texts in; the row and the unread count appear live.
            await sandbox(
                "sms/replies", **{"from": PHONE, "to": number, "body": "Is my refill ready?"}
            )
            row = page.locator(f"tr[data-channel='{channel}']")
            await row.get_by_text("1 unread").wait_for(timeout=20_000)
            await page.wait_for_function(
                "() => document.querySelector('[data-count=unread]').textContent === '1'",
                timeout=10_000,
            )
            assert "Petra Quill" in await row.inner_text()
            assert await page.evaluate("() => window.notReloaded === true")
            await at_both_widths(page, axe, "inbox with a text")

            # Open it and reply from the keyboard; the phone gets it, shown as delivered.
            await page.get_by_role("link", name="Petra Quill").focus()
            await page.keyboard.press("Enter")
            await page.get_by_role("heading", name="Messages").wait_for()
            await page.locator(".messages", has_text="Is my refill ready?").wait_for()
            assert "SMS bridge channel" in await page.locator("main").inner_text()
            await page.locator("#live-status", has_text="Live").wait_for(timeout=15_000)
            await at_both_widths(page, axe, "sms conversation")
            message = page.get_by_role("textbox", name="Message")
            await message.fill("Yes, it is at the front desk")
            await message.press("Tab")
            await page.keyboard.press("Enter")  # Send
            sent = page.locator(".messages li", has_text="Yes, it is at the front desk")
            await sent.wait_for()

            async def reached() -> bool:
                return any(
                    m["body"] == "Yes, it is at the front desk" and m["status"] == "delivered"
                    for m in await phone_got()
                )

            await until(reached, "the reply to reach the phone")
            await sent.locator(".sms-state", has_text="SMS delivered").wait_for(timeout=20_000)
            await no_violations(page, axe, "sms conversation after the reply")
            conversation = page.url

        # Done-when 5: a readonly key sees no Send; its forged POSTs are refused.
        async with console_page(chromium) as readonly_browsed:
            page = readonly_browsed.page
            await sign_in_with_key(page, server, readonly)
            await page.goto(conversation)
            await page.get_by_role("heading", name="Messages").wait_for()
            await page.locator(".messages", has_text="Is my refill ready?").wait_for()
            assert await page.get_by_role("button", name="Send").count() == 0
            assert await page.get_by_role("textbox", name="Message").count() == 0
            await at_both_widths(page, axe, "sms conversation as readonly")
            statuses = await page.evaluate(
                """async ([url, author]) => {
                    const headers = JSON.parse(document.body.getAttribute('hx-headers'));
                    const csrf = headers['X-CSRF-Token'];
                    const post = (headers) => fetch(url, {
                        method: 'POST', headers, redirect: 'manual',
                        body: new URLSearchParams({'individual-id': author, message: 'Forged'}),
                    }).then(r => r.status);
                    return [await post({'X-CSRF-Token': csrf}), await post({})];
                }""",
                [f"/console/conversations/{channel}/reply", nurse],
            )
            assert statuses == [403, 403]

        listed = await http.get(
            "/v1/messaging-messages/", params={"channel-id": channel}, headers=staff
        )
        texts = sorted(m["attributes"]["message"] for m in listed.json()["data"])
        assert texts == ["Is my refill ready?", "Yes, it is at the front desk"]
    for seen in (browsed, readonly_browsed):
        assert seen.left_the_machine == []
        assert [e for e in seen.errors if "Content Security Policy" in e] == []
