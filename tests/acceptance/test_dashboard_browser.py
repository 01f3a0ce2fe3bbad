"""The dashboard end to end: Debian's Chromium, headless, driven by Playwright's async API over
the daemon's real HTTP server (uvicorn on a loopback port) and a seeded SQLite province.

A user signs in, sees only the units of their role, opens a case, follows a link to its unit
and takes a screenshot, on a desktop screen and on a phone's (390x844), with scripts on and
off. Refused: a page without a sign-in, another unit's case by its URL, and forms posted to
sign-in and sign-out from a page of another origin (a second server on another port, which a
browser still calls the same site: SameSite alone would let the cookie through).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.browser import (
    PASSWORD,
    Site,
    add_accounts,
    chromium_missing,
    launch,
    seed,
    serve,
    write_province,
)
from watchdog.config import load_settings
from watchdog.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'watchdog.db'}"
    config = write_province(tmp_path, url)
    store = Store.open(url)
    seed(store, load_settings(config, env={}))
    add_accounts(store)
    site = Site.build(store, config)
    with serve(site.app) as address:
        yield address
    store.close()


class _Attacker(BaseHTTPRequestHandler):
    """Serves the page of another origin: forms that post to the dashboard."""

    target = ""

    def do_GET(self) -> None:
        body = f"""<!doctype html><html><body>
<form id="out" method="post" action="{self.target}/logout">
  <input type="hidden" name="csrf" value="guessed">
  <button id="sign-out" type="submit">Nhận quà</button>
</form>
<form id="in" method="post" action="{self.target}/login">
  <input type="hidden" name="login" value="admin">
  <input type="hidden" name="password" value="{PASSWORD}">
  <button id="sign-in" type="submit">Xem ngay</button>
</form></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def attacker(base: str) -> Iterator[str]:
    handler = type("Handler", (_Attacker,), {"target": base})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)


async def sign_in(page, base: str, login: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("#login", login)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


async def case_codes(page) -> set[str]:
    links = await page.locator("table.cases a[href^='/cases/']").all_inner_texts()
    return set(links)


def test_a_unit_head_signs_in_opens_a_case_follows_its_unit_and_sees_only_its_units(
    base: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    async def run() -> None:
        async with async_playwright() as p:
            browser = await launch(p)
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await sign_in(page, base, "truongphong")
            assert await case_codes(page) == {"HS-HC-001", "HS-HC-002", "HS-HC-003"}
            units = await page.locator("select[name=unit] option").all_inner_texts()
            assert [u.strip() for u in units] == ["Tất cả", "Phòng Hành chính tư pháp"]
            assert await page.locator("tr.s-overdue .badge").first.inner_text() == "Quá hạn"
            colour = await page.locator("tr.s-overdue .badge").first.evaluate(
                "e => getComputedStyle(e).color"
            )
            assert colour == "rgb(180, 35, 24)"  # red

            await page.click("text=HS-HC-001")
            await page.wait_for_url(f"{base}/cases/HS-HC-001")
            assert await page.locator("h1").inner_text() == "Hồ sơ HS-HC-001"
            assert "Trần Thị <b>Hoa</b>" in await page.locator("dl.facts").inner_text()
            assert await page.locator("span.ack").count() == 1  # the acknowledged message
            await page.screenshot(path=str(tmp_path / "case.png"), full_page=True)

            await page.click("dl.facts >> text=Phòng Hành chính tư pháp")
            await page.wait_for_url(f"{base}/units/STP.HC")
            assert await page.locator("figure.chart svg").count() == 1
            assert await page.locator("table.backlog tbody tr").count() == 2
            await page.screenshot(path=str(tmp_path / "unit.png"), full_page=True)

            # the phone: the same pages, nothing wider than the screen
            phone = await browser.new_page(viewport={"width": 390, "height": 844})
            await sign_in(phone, base, "lanhdao")
            for path in ("/", "/cases/HS-HC-001", "/units/STP", "/report"):
                await phone.goto(f"{base}{path}")
                wide = await phone.evaluate("document.documentElement.scrollWidth")
                assert wide <= 390, (path, wide)
            await phone.goto(f"{base}/")
            await phone.screenshot(path=str(tmp_path / "phone.png"))
            await browser.close()

    asyncio.run(run())
    for name in ("case.png", "unit.png", "phone.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name


def test_the_dashboard_works_without_javascript(base: str) -> None:
    from playwright.async_api import async_playwright

    async def run() -> None:
        async with async_playwright() as p:
            browser = await launch(p)
            context = await browser.new_context(java_script_enabled=False)
            page = await context.new_page()
            await sign_in(page, base, "admin")
            await page.select_option("select[name=state]", "overdue")
            await page.click("form.filters button")
            assert await case_codes(page) == {"HS-HC-001", "HS-XD-001"}
            await page.click("header >> text=Đăng xuất")
            await page.wait_for_url(f"{base}/login")
            await page.goto(f"{base}/")
            assert page.url.startswith(f"{base}/login")
            await browser.close()

    asyncio.run(run())


def test_refused_without_sign_in_across_units_and_from_another_origin(
    base: str, attacker: str
) -> None:
    from playwright.async_api import async_playwright

    async def run() -> None:
        async with async_playwright() as p:
            browser = await launch(p)
            page = await browser.new_page()
            # no sign-in: the case's URL leads to the sign-in form, and back after it
            await page.goto(f"{base}/cases/HS-HC-001")
            assert page.url.startswith(f"{base}/login?next=")
            assert "HS-HC-001" not in await page.locator("main").inner_text()
            await page.fill("#login", "kysu")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/cases/HS-HC-001")
            assert "Không tìm thấy" in await page.locator("h1").inner_text()  # not kysu's

            # another unit's case by its URL
            answer = await page.goto(f"{base}/cases/HS-HC-002")
            assert answer is not None and answer.status == 404
            answer = await page.goto(f"{base}/cases/HS-XD-001")
            assert answer is not None and answer.status == 200

            # a page of another origin posts to sign-out: refused, still signed in
            await page.goto(attacker)
            async with page.expect_navigation() as nav:
                await page.click("#sign-out")
            answer = await nav.value
            assert answer is not None and answer.status == 403
            await page.goto(f"{base}/")
            assert page.url == f"{base}/"
            assert await case_codes(page) == {"HS-XD-001", "HS-XD-002"}

            # ... and to sign-in (login CSRF into another account): refused, still kysu
            await page.goto(attacker)
            async with page.expect_navigation() as nav:
                await page.click("#sign-in")
            answer = await nav.value
            assert answer is not None and answer.status == 403
            await page.goto(f"{base}/")
            assert "Đỗ Văn Kỹ" in await page.locator("form.who").inner_text()

            # a fresh browser, the attacker's sign-in form: no session is made
            fresh = await browser.new_context()
            other = await fresh.new_page()
            await other.goto(attacker)
            async with other.expect_navigation():
                await other.click("#sign-in")
            await other.goto(f"{base}/")
            assert other.url.startswith(f"{base}/login")
            await browser.close()

    asyncio.run(run())
