"""The web dashboard through the daemon's app, on SQLite and PostgreSQL (`store` fixture):
sign-in, the session cookie, CSRF, the login rate limit, and what each role may see. Asked
with httpx over ASGI as a browser would (cookies kept by the client); the browser itself is
driven in tests/acceptance/test_dashboard_browser.py.

Nothing of ours is replaced: a seeded province (tests/support/browser.py), a real engine pass,
accounts created with the same functions `watchdog users add` uses.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.browser import NOW, PASSWORD, Site, add_accounts, seed, write_province
from watchdog.config import load_settings
from watchdog.store import Store
from watchdog.store.users import find_user, set_disabled, set_password
from watchdog.web.auth import hash_password

BASE = "http://dash.test"
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def site(store: Store, tmp_path: Path) -> Site:
    config = write_province(tmp_path, "sqlite:///unused.db")
    seed(store, load_settings(config, env={}))
    add_accounts(store)
    return Site.build(store, config)


@pytest.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(site) as c:
        yield c


def _client(site: Site, base: str = BASE) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=site.app, client=("192.0.2.10", 50000))
    return httpx.AsyncClient(transport=transport, base_url=base)


def token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(c: httpx.AsyncClient, login: str, password: str = PASSWORD) -> httpx.Response:
    form = await c.get("/login")
    assert form.status_code == 200
    return await c.post(
        "/login",
        data={"login": login, "password": password, "csrf": token(form.text)},
        headers={"Origin": str(c.base_url).rstrip("/")},
    )


def case_codes(html: str) -> set[str]:
    return set(re.findall(r'href="/cases/([^"]+)"', html))


# ----- sign-in ----------------------------------------------------------------------------------


async def test_every_page_needs_a_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/", "/units", "/units/STP", "/cases/HS-HC-001", "/findings", "/report"):
        r = await client.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next="), path
        assert "HS-HC-001" not in r.text
    page = await client.get("/login")
    assert "Đăng nhập" in page.text and "Tên đăng nhập" in page.text
    assert "no-store" in page.headers["cache-control"]
    assert "script-src" not in page.headers["content-security-policy"]  # default-src 'none'


async def test_sign_in_sets_a_signed_httponly_samesite_cookie_and_goes_back(
    client: httpx.AsyncClient, site: Site
) -> None:
    form = await client.get("/login", params={"next": "/cases/HS-HC-001"})
    r = await client.post(
        "/login",
        data={
            "login": "admin",
            "password": PASSWORD,
            "csrf": token(form.text),
            "next": "/cases/HS-HC-001",
        },
        headers={"Origin": BASE},
    )
    assert r.status_code == 303 and r.headers["location"] == "/cases/HS-HC-001"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("wd_session="))
    flags = {f.strip().lower() for f in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= flags
    assert "secure" not in flags  # http.public_url unset and dashboard.secure_cookie unset
    assert "Trần Thị &lt;b&gt;Hoa&lt;/b&gt;" in (await client.get("/cases/HS-HC-001")).text
    assert find_user(site.store, "admin").last_login_at == NOW

    # another site's address to go back to is not followed
    async with _client(site) as other:
        r = await sign_in(other, "admin")
        form = await other.get("/login", params={"next": "//evil.example/x"})
        assert "evil.example" not in form.text


async def test_the_cookie_is_secure_when_configured(store: Store, tmp_path: Path) -> None:
    config = write_province(tmp_path, "sqlite:///unused.db", "dashboard: {secure_cookie: true}\n")
    add_accounts(store)
    site = Site.build(store, config)
    async with _client(site, "https://dash.test") as c:  # a Secure cookie needs HTTPS
        r = await sign_in(c, "admin")
    assert r.status_code == 303, r.text
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("wd_session="))
    assert "secure" in cookie.lower()


async def test_a_disabled_dashboard_serves_no_page(store: Store, tmp_path: Path) -> None:
    config = write_province(tmp_path, "sqlite:///unused.db", "dashboard: {enabled: false}\n")
    add_accounts(store)
    site = Site.build(store, config)
    async with _client(site) as c:
        for path in ("/", "/login", "/cases/HS-HC-001", "/static/dashboard.css"):
            assert (await c.get(path)).status_code == 404, path
        assert (await c.post("/login", data={"login": "admin"})).status_code == 404
        assert (await c.get("/healthz")).status_code in (200, 503)  # the rest still serves


async def test_a_wrong_password_or_login_is_refused_alike(client: httpx.AsyncClient) -> None:
    for login, password in (("admin", "wrong-password"), ("nobody", PASSWORD)):
        r = await sign_in(client, login, password)
        assert r.status_code == 401
        assert "Tên đăng nhập hoặc mật khẩu không đúng." in r.text
        assert "wd_session" not in r.headers.get("set-cookie", "")
    assert (await client.get("/")).status_code == 303


async def test_an_altered_or_expired_cookie_is_refused(
    client: httpx.AsyncClient, site: Site
) -> None:
    await sign_in(client, "chuyenvien")
    value = client.cookies["wd_session"]
    payload, _, signature = value.rpartition(".")
    # the same payload claiming another login, or another signature: refused
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    for bad in (f"{forged}.{signature}", f"{payload}.{signature[::-1]}", "garbage"):
        client.cookies.set("wd_session", bad, domain="dash.test")
        assert (await client.get("/")).status_code == 303
    client.cookies.set("wd_session", value, domain="dash.test")
    assert (await client.get("/")).status_code == 200
    # idle longer than dashboard.session (8 h): signed out
    site.clock.advance(timedelta(hours=8, minutes=1))
    assert (await client.get("/")).status_code == 303


async def test_activity_keeps_the_session_alive(client: httpx.AsyncClient, site: Site) -> None:
    await sign_in(client, "chuyenvien")
    for _ in range(3):  # 3 x 5 h of use, each within 8 h of the one before
        site.clock.advance(timedelta(hours=5))
        r = await client.get("/")
        assert r.status_code == 200
        assert "wd_session=" in r.headers.get("set-cookie", "")  # the expiry moved on


# ----- CSRF -------------------------------------------------------------------------------------


async def test_sign_out_needs_the_session_token_and_ends_every_session(
    client: httpx.AsyncClient, site: Site
) -> None:
    await sign_in(client, "truongphong")
    page = await client.get("/")
    stolen = client.cookies["wd_session"]
    # a cross-site post (another origin) and a post without the token: refused
    r = await client.post(
        "/logout", data={"csrf": token(page.text)}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403
    r = await client.post("/logout", headers={"Origin": BASE})
    assert r.status_code == 403
    r = await client.post("/logout", data={"csrf": "x" * 43}, headers={"Referer": f"{BASE}/"})
    assert r.status_code == 403
    assert (await client.get("/")).status_code == 200  # still signed in
    # our own form: signed out, and the old cookie no longer works anywhere
    r = await client.post("/logout", data={"csrf": token(page.text)}, headers={"Origin": BASE})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    client.cookies.set("wd_session", stolen, domain="dash.test")
    assert (await client.get("/")).status_code == 303
    assert find_user(site.store, "truongphong").session_epoch == 2


async def test_a_disabled_account_or_a_new_password_ends_the_sessions_signed_before(
    client: httpx.AsyncClient, site: Site
) -> None:
    """What `watchdog users disable` and `users password` write, as the site sees it."""
    await sign_in(client, "admin")
    assert (await client.get("/")).status_code == 200
    assert set_disabled(site.store, "admin", True, NOW)
    assert (await client.get("/")).status_code == 303  # back to the sign-in page
    assert "wd_session" not in (await sign_in(client, "admin")).cookies
    assert (await client.get("/")).status_code == 303
    assert set_disabled(site.store, "admin", False, NOW)
    await sign_in(client, "admin")
    assert (await client.get("/")).status_code == 200
    assert set_password(site.store, "admin", hash_password("mat-khau-moi-2"), NOW)
    assert (await client.get("/")).status_code == 303
    assert "wd_session" not in (await sign_in(client, "admin")).cookies  # the old password
    await sign_in(client, "admin", "mat-khau-moi-2")
    assert (await client.get("/")).status_code == 200


async def test_a_cross_site_sign_in_is_refused(client: httpx.AsyncClient) -> None:
    form = await client.get("/login")
    data = {"login": "admin", "password": PASSWORD, "csrf": token(form.text)}
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        r = await client.post("/login", data=data, headers=headers)
        assert r.status_code == 403, headers
    # no token bound to this browser's sign-in cookie: refused too
    client.cookies.delete("wd_login")
    r = await client.post("/login", data=data, headers={"Origin": BASE})
    assert r.status_code == 403
    assert (await client.get("/")).status_code == 303


# ----- rate limit -------------------------------------------------------------------------------


async def test_an_account_is_locked_after_too_many_failures(
    client: httpx.AsyncClient, site: Site
) -> None:
    for _ in range(5):  # dashboard.login_attempts
        assert (await sign_in(client, "admin", "wrong")).status_code == 401
    user = find_user(site.store, "admin")
    assert user.failed_logins == 5 and user.locked_until == NOW + timedelta(minutes=15)
    # even the right password waits, from another address as well
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=site.app, client=("198.51.100.7", 1)), base_url=BASE
    ) as other:
        r = await sign_in(other, "admin")
        assert r.status_code == 429
        assert "Đăng nhập sai quá nhiều lần" in r.text and "16/11/2026 10:15" in r.text
        site.clock.advance(timedelta(minutes=16))
        r = await sign_in(other, "admin")
        assert r.status_code == 303
    assert find_user(site.store, "admin").failed_logins == 0


async def test_one_address_is_limited_across_logins(client: httpx.AsyncClient, site: Site) -> None:
    for login in ("admin", "giamsat", "kysu", "nobody", "other"):
        assert (await sign_in(client, login, "wrong")).status_code == 401
    r = await sign_in(client, "chuyenvien")  # a right password, from the same address
    assert r.status_code == 429 and "thử lại sau" in r.text
    # failures spread out over more than 15 minutes do not add up
    site.clock.advance(timedelta(minutes=31))
    assert (await sign_in(client, "chuyenvien")).status_code == 303


async def test_failures_older_than_the_window_start_the_count_again(
    client: httpx.AsyncClient, site: Site
) -> None:
    for _ in range(4):
        assert (await sign_in(client, "kysu", "wrong")).status_code == 401
        site.clock.advance(timedelta(minutes=16))
    assert find_user(site.store, "kysu").failed_logins == 1
    assert (await sign_in(client, "kysu")).status_code == 303


# ----- roles ------------------------------------------------------------------------------------

ALL = {"HS-HC-001", "HS-HC-002", "HS-HC-003", "HS-STP-001", "HS-XD-001", "HS-XD-002"}


@pytest.mark.parametrize(
    ("login", "seen"),
    [
        ("admin", ALL),
        ("giamsat", ALL),
        ("lanhdao", {"HS-HC-001", "HS-HC-002", "HS-HC-003", "HS-STP-001"}),
        ("truongphong", {"HS-HC-001", "HS-HC-002", "HS-HC-003"}),
        ("chuyenvien", {"HS-HC-001", "HS-HC-003"}),
        ("kysu", {"HS-XD-001", "HS-XD-002"}),
    ],
)
async def test_each_role_sees_its_cases_and_no_other(
    client: httpx.AsyncClient, login: str, seen: set[str]
) -> None:
    assert (await sign_in(client, login)).status_code == 303
    board = await client.get("/")
    assert case_codes(board.text) == seen
    for code in sorted(ALL):
        r = await client.get(f"/cases/{code}")
        assert r.status_code == (200 if code in seen else 404), code
        if code not in seen:
            assert code not in r.text.replace(f"/cases/{code}", "")
            assert "Không tìm thấy" in r.text
    # filters cannot widen the scope
    for query in ({"unit": "SXD"}, {"unit": "T"}, {"official": "kysu"}):
        r = await client.get("/", params=query)
        assert case_codes(r.text) <= seen, query


async def test_the_board_shows_states_in_colour_by_urgency_and_filters(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client, "admin")
    page = (await client.get("/")).text
    order = re.findall(
        r'<tr class="s-([a-z_]+)">\s*<td data-label="Mã hồ sơ"><a href="/cases/([^"]+)"', page
    )
    assert [code for _, code in order][:2] == ["HS-XD-001", "HS-HC-001"]  # most overdue first
    states = dict((code, state) for state, code in order)
    assert states == {
        "HS-XD-001": "overdue",
        "HS-HC-001": "overdue",
        "HS-STP-001": "due_soon",
        "HS-HC-002": "on_track",
        "HS-XD-002": "on_track",
        "HS-HC-003": "waiting",
    }
    assert "Quá hạn: <strong>2</strong>" in page and "Chờ bổ sung: <strong>1</strong>" in page
    overdue = await client.get("/", params={"state": "overdue", "unit": "SXD"})
    assert case_codes(overdue.text) == {"HS-XD-001"}
    mine = await client.get("/", params={"official": "chuyenvien"})
    assert case_codes(mine.text) == {"HS-HC-001", "HS-HC-003"}
    assert "16/11/2026 09:00" in page  # dd/mm/yyyy HH:MM


async def test_unit_pages_follow_the_scope(client: httpx.AsyncClient) -> None:
    await sign_in(client, "truongphong")
    assert (await client.get("/units/STP.HC")).status_code == 200
    for other in ("STP", "SXD", "T", "NOPE"):
        assert (await client.get(f"/units/{other}")).status_code == 404, other
    units = await client.get("/units")
    assert "/units/STP.HC" in units.text and "/units/SXD" not in units.text
    async with _client_for(client) as official:
        await sign_in(official, "chuyenvien")
        assert (await official.get("/units/STP.HC")).status_code == 404
        assert (await official.get("/units")).status_code == 404
        assert (await official.get("/report")).status_code == 404


def _client_for(client: httpx.AsyncClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=client._transport, base_url=BASE)


async def test_the_unit_page_has_the_trend_chart_and_the_backlog(client: httpx.AsyncClient) -> None:
    await sign_in(client, "lanhdao")
    page = (await client.get("/units/STP")).text
    assert page.count('<rect class="bar') >= 1  # November 2026 has finished or late cases
    assert "<svg" in page and "11/26" in page and "12/25" in page  # 12 months to this one
    # backlog: Nguyễn Văn Chuyên has 2 open, 1 overdue (HS-HC-001)
    row = re.search(r"Nguyễn Văn Chuyên</a></td>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(\d+)</td>", page)
    assert row and row.groups() == ("2", "1")
    assert 'href="/units/STP.HC"' in page


async def test_the_case_page_has_its_messages_with_their_acknowledgement(
    client: httpx.AsyncClient,
) -> None:
    await sign_in(client, "truongphong")
    page = (await client.get("/cases/HS-HC-001")).text
    assert "Nguyễn Văn Chuyên" in page and "Phạm Thị Trưởng" in page  # assignee and unit head
    assert "✓ 16/11/2026 10:05" in page and "Chưa xác nhận" in page
    assert "Phiếu kiểm soát quá trình giải quyết" in page and "Diễn biến" in page
    assert '<span class="badge s-overdue">Quá hạn</span>' in page


async def test_findings_follow_the_scope(client: httpx.AsyncClient, site: Site) -> None:
    from watchdog.store.dashboard import case_with_events
    from watchdog.store.findings import NewFinding, record_findings

    ids = {code: case_with_events(site.store, code)[0].id for code in ("HS-HC-001", "HS-XD-001")}
    record_findings(
        site.store,
        [
            NewFinding("due_mismatch", "HS-HC-001", "hẹn trả lệch 3 ngày", ids["HS-HC-001"]),
            NewFinding("no_assignee", "HS-XD-001", "chưa có cán bộ", ids["HS-XD-001"]),
            NewFinding("unknown_unit", "X99", "đơn vị X99 chưa cấu hình"),
        ],
        NOW,
    )
    await sign_in(client, "chuyenvien")
    page = (await client.get("/findings")).text
    assert "hẹn trả lệch 3 ngày" in page
    assert "chưa có cán bộ" not in page and "X99" not in page
    async with _client_for(client) as admin:
        await sign_in(admin, "admin")
        page = (await admin.get("/findings")).text
        assert all(t in page for t in ("hẹn trả lệch 3 ngày", "chưa có cán bộ", "X99"))


async def test_the_report_page_and_its_xlsx(client: httpx.AsyncClient) -> None:
    await sign_in(client, "admin")
    r = await client.get("/report", params={"from": "01/10/2026", "to": "16/11/2026"})
    assert r.status_code == 200
    assert "Tiếp nhận" in r.text and "Trễ hạn" in r.text and "Sở Xây dựng" in r.text
    x = await client.get("/report.xlsx", params={"from": "01/10/2026", "to": "16/11/2026"})
    assert x.status_code == 200
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "bao-cao-20261001-20261116.xlsx" in x.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(x.content)) as z:
        assert "xl/workbook.xml" in z.namelist()
    bad = await client.get("/report", params={"from": "32/13/2026"})
    assert "Ngày không hợp lệ" in bad.text


async def test_a_unit_head_reports_on_its_units_only(client: httpx.AsyncClient) -> None:
    await sign_in(client, "lanhdao")
    r = await client.get(
        "/report", params={"from": "01/10/2026", "to": "16/11/2026", "by": "official"}
    )
    assert "Phòng Hành chính tư pháp" in r.text and "Sở Tư pháp" in r.text
    assert "Sở Xây dựng" not in r.text and "Đỗ Văn Kỹ" not in r.text
