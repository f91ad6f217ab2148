"""`/docs` renders the OpenAPI 3.1 document in a real browser, and "try it out" works.

The viewer is Swagger UI 5, vendored in ``courier/static/swagger-ui`` (see SOURCE.md there).
The browser test drives Debian's Chromium (``apt-get install chromium``; ``.ci/run`` installs
it) with Playwright against a real ``courier serve`` on 127.0.0.1, and refuses every request
that would leave the machine; it is skipped, saying why, where Chromium or Playwright is missing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx

from courier.app import SWAGGER_UI_DIR
from tests.console_browser_support import (
    MASTER,
    Server,
    api_key,
    browsing,
    chromium_or_skip,
    created,
    running,
)

__all__ = ["running"]  # the real server fixture (a SQLite file of its own: the viewer is tested)


def test_vendored_files_match_their_checksums() -> None:
    note = (SWAGGER_UI_DIR / "SOURCE.md").read_text(encoding="utf-8")
    sums = re.findall(r"^([0-9a-f]{64})  (\S+)$", note, flags=re.MULTILINE)
    assert {name for _, name in sums} >= {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"}
    for digest, name in sums:
        assert hashlib.sha256((SWAGGER_UI_DIR / name).read_bytes()).hexdigest() == digest, name


async def _every_operation_rendered(page: Any) -> set[str]:
    """Ids of the operations rendered while scrolling from the top to the bottom of the page."""
    await page.evaluate("window.scrollTo(0, 0)")
    seen: set[str] = set()
    quiet = 0
    while quiet < 3:  # the bottom was reached and nothing new appeared three times running
        ids = await page.eval_on_selector_all(".opblock", "els => els.map(e => e.id)")
        before = len(seen)
        seen.update(ids)
        at_bottom = await page.evaluate(
            "() => { const y = window.scrollY; window.scrollBy(0, window.innerHeight / 2);"
            " return window.scrollY === y; }"
        )
        await page.wait_for_timeout(200)
        quiet = quiet + 1 if at_bottom and len(seen) == before else 0
    return seen


async def _scroll_until_present(page: Any, locator: Any) -> None:
    """Scroll down from the top until a (virtualized) element is in the DOM."""
    await page.evaluate("window.scrollTo(0, 0)")
    while await locator.count() == 0:
        moved = await page.evaluate(
            "() => { const y = window.scrollY; window.scrollBy(0, window.innerHeight / 2);"
            " return window.scrollY !== y; }"
        )
        await page.wait_for_timeout(100)
        if not moved and await locator.count() == 0:
            raise AssertionError("not on the page: " + str(locator))
    await locator.scroll_into_view_if_needed()


async def test_docs_render_and_try_it_out_in_chromium(running: Server) -> None:
    server = running.base
    chromium = chromium_or_skip()

    # A fresh server on a busy machine may take a while over its first requests.
    async with httpx.AsyncClient(base_url=server, timeout=60) as http:
        org_id = await created(
            http, "/v1/organizations/", "organizations", {"name": "Viewer Clinic"}, MASTER
        )
        secret = await api_key(http, org_id, "docs", "admin")
        document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    # Swagger UI shows an operation once under each of its tags.
    operations = sum(
        max(1, len(operation.get("tags", [])))
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    )

    async with browsing(chromium) as browsed:
        page = browsed.page
        await page.goto(server + "/docs")
        await page.wait_for_selector(".opblock", timeout=30_000)
        # Swagger UI 5.35 virtualizes the list once it has 150 rows (tags + operations,
        # a constant in the bundle): only the rows near the viewport are in the DOM. Scroll
        # down the whole page and collect every operation that was rendered on the way.
        shown = await _every_operation_rendered(page)
        assert len(shown) == operations, sorted(shown)
        assert await page.locator(".errors-wrapper").count() == 0
        assert await page.get_by_text("Unable to render this definition").count() == 0
        title = page.locator(".info .title")
        assert "Courier API" in await title.inner_text()

        # Authorize with the API key, as a person would.
        await page.locator(".auth-wrapper .authorize").click()
        bearer = page.locator(".modal-ux form").filter(has_text="bearer")
        await bearer.locator("input").first.fill(secret)
        await bearer.locator("button.authorize").click()
        await page.locator(".modal-ux .btn-done").first.click()

        # Try it out: list organizations.
        block = page.locator("#operations-organizations-list-v1-organizations")
        await _scroll_until_present(page, block)
        await block.locator(".opblock-summary").click()
        await block.get_by_role("button", name="Try it out").click()
        await block.get_by_role("button", name="Execute").click()
        live = block.locator(".live-responses-table")
        await live.wait_for(timeout=30_000)
        status = live.locator("tbody .response-col_status").first
        assert (await status.inner_text()).strip() == "200"
        body = await live.locator("tbody .response-col_description").first.inner_text()
        assert "Viewer Clinic" in body and org_id in body
    assert browsed.left_the_machine == []
