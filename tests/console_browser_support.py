"""What the browser tests share (the console's three and the ``/docs`` viewer's): a real
``courier serve`` on 127.0.0.1 with a SQLite file of its own, Debian's Chromium driven by
Playwright with every request that would leave the machine refused, the console's sign-in
with a key, and axe-core (vendored in ``tests/vendor/axe-core``) at both widths, with the
screenshots for ``docs/console/`` when ``COURIER_CONSOLE_SCREENSHOTS`` names a folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import MASTER_KEY, doc
from tests.support import process_env
from tests.test_server_process import _free_port, _wait_ready

AXE_DIR = Path(__file__).resolve().parent / "vendor" / "axe-core"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
MASTER = {"Authorization": f"Bearer {MASTER_KEY}"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
SHOTS = os.environ.get("COURIER_CONSOLE_SCREENSHOTS")  # a folder: docs/console/ is made so


def chromium_path() -> str | None:
    explicit = os.environ.get("COURIER_TEST_CHROMIUM")
    if explicit:
        return explicit
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class Server:
    """A real ``courier serve`` on a fixed loopback port and a SQLite file of its own; it can
    be stopped and started again on the same port and data (a restart)."""

    def __init__(self, data: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **process_env(),
            "COURIER_DATA_DIR": str(data),
            "COURIER_MASTER_KEY": MASTER_KEY,
            "COURIER_RUN_WORKER": "false",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "courier.cli", "serve", "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [*argv, "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_ready(self.base, self.process)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def created(http: httpx.AsyncClient, path: str, kind: str, attrs: Any, auth: Any) -> str:
    response = await http.post(path, json=doc(kind, attrs), headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def individual(
    http: httpx.AsyncClient, auth: Any, first: str, last: str, kind: str, **attrs: str
) -> str:
    """A new individual (``account-type`` ``kind``; e.g. ``phone=``) of the key's organization."""
    names = {"first-name": first, "last-name": last, "account-type": kind, **attrs}
    return await created(http, "/v1/individuals/", "individuals", names, auth)


async def api_key(http: httpx.AsyncClient, org: str, name: str, role: str) -> str:
    """The secret of a new API key of the organization (made with the master key)."""
    made = await http.post(
        "/v1/api-keys/",
        json=doc("api-keys", {"name": name, "role": role, "organization-id": org}),
        headers=MASTER,
    )
    assert made.status_code == 201, made.text
    return str(made.json()["data"]["attributes"]["secret"])


@dataclass
class Browsed:
    """A page in Chromium; what it logged as errors and what it tried to fetch off the
    machine (refused) are collected for the test to assert on."""

    page: Any
    errors: list[str] = field(default_factory=list)
    left_the_machine: list[str] = field(default_factory=list)


def chromium_or_skip() -> str:
    """Chromium's path; the test is skipped, saying why, where Chromium or Playwright is
    missing."""
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return chromium


@asynccontextmanager
async def browsing(chromium: str, **page_options: Any) -> AsyncIterator[Browsed]:
    """A new page in headless Chromium that only reaches 127.0.0.1 / localhost."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            browsed = Browsed(await browser.new_page(**page_options))
            browsed.page.on(
                "console",
                lambda message: (
                    browsed.errors.append(message.text) if message.type == "error" else None
                ),
            )

            async def only_loopback(route: Any) -> None:
                if urlsplit(route.request.url).hostname not in {"127.0.0.1", "localhost"}:
                    browsed.left_the_machine.append(route.request.url)
                    await route.abort()
                else:
                    await route.continue_()

            await browsed.page.route("**/*", only_loopback)
            yield browsed
        finally:
            await browser.close()


@asynccontextmanager
async def console_page(chromium: str) -> AsyncIterator[Browsed]:
    """A page for the console at 1280 by 800 px."""
    async with browsing(chromium, viewport={"width": 1280, "height": 800}) as browsed:
        yield browsed


async def sign_in_with_key(page: Any, server: str, secret: str, *, axe: str = "") -> None:
    """Sign in on the console's sign-in screen with an API key, as far as Today; with ``axe``,
    the sign-in screen is checked (and photographed) first."""
    await page.goto(server + "/console/")
    if axe:
        await at_both_widths(page, axe, "sign-in")
    await page.get_by_label("API key").fill(secret)
    await page.get_by_role("button", name="Sign in with the key").click()
    await page.get_by_role("heading", name="Today").wait_for()


def axe_script() -> str:
    return (AXE_DIR / "axe.min.js").read_text(encoding="utf-8")


async def at_both_widths(page: Any, axe: str, where: str) -> None:
    """No violations at 1280 by 800 and at 320 px (WCAG reflow: no horizontal page scroll), and
    the screenshots for docs/console/ when asked for."""
    for width, height in ((1280, 800), (320, 640)):
        await page.set_viewport_size({"width": width, "height": height})
        await no_violations(page, axe, f"{where} at {width} px")
        scroll = await page.evaluate("() => document.documentElement.scrollWidth")
        assert scroll <= width, f"{where} at {width} px scrolls sideways ({scroll} px)"
        if SHOTS:
            name = where.replace(" ", "-")
            await page.screenshot(path=str(Path(SHOTS) / f"{name}-{width}.png"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 800})


async def no_violations(page: Any, axe: str, where: str) -> None:
    # Styles applied first: before the stylesheet loads, links are bare inline text and the
    # target-size rule (24 px) rightly fails them (seen once in CI, both suites side by side).
    await page.wait_for_load_state("load")
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(axe)  # through the DevTools protocol: the page's CSP stays on
    violations = await page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))",
        AXE_TAGS,
    )
    assert violations == [], f"{where}: {violations}"
