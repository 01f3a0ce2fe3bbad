"""The dashboard's test province, its server and Debian's Chromium, shared by the dashboard's
integration and end-to-end tests and by the screenshot script (`python -m
tests.support.browser docs/img`, which photographs the dashboard on the demo province).

The province: UBND tỉnh (T) > Sở Tư pháp (STP) > Phòng Hành chính tư pháp (STP.HC), and Sở Xây
dựng (SXD) beside it; cases in each, a real engine pass that fires alerts (so messages exist),
and one account per role. Nothing of ours is replaced: the app is `create_app` of the daemon,
served by uvicorn on a loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.conftest import SMALL_CONFIG
from watchdog.clock import FixedClock
from watchdog.config import Settings, load_settings
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.http import AppContext, HealthState, Metrics, create_app, embedded_server
from watchdog.outbox.enqueue import alerts_hook
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store
from watchdog.store.outbox import acknowledge, history
from watchdog.store.users import add_user
from watchdog.web.auth import hash_password

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 16, 10, 0, tzinfo=VN)  # a Monday
PASSWORD = "mat-khau-thu-123"

CONFIG = (
    SMALL_CONFIG.replace(
        "supervisors:",
        "  - {id: kysu, name: Đỗ Văn Kỹ, unit: SXD, email: kysu@example.vn}\nsupervisors:",
    )
    + """\
rules: [rules.yaml]
channels: {file: {dir: outbox}}
http: {listen: "127.0.0.1:0"}
"""
)
RULES = """\
policies:
  - name: p
    stages:
      - {id: overdue, when: {overdue: "0 working_days"}, notify: [assignee, unit_head]}
      - {id: due_soon, when: {remaining: "1 working_day"}, notify: [assignee]}
"""

# (code, unit, assignee, received, status): 2.000488 has 10 working days.
CASES = [
    ("HS-HC-001", "STP.HC", "chuyenvien", "02/11/2026 09:00", 4),  # due 16/11 09:00: overdue
    ("HS-HC-002", "STP.HC", "truongphong", "12/11/2026 09:00", 4),  # on track
    ("HS-HC-003", "STP.HC", "chuyenvien", "03/11/2026 09:00", 5),  # waiting for documents
    ("HS-STP-001", "STP", "lanhdao", "03/11/2026 08:00", 4),  # due 17/11 08:00: due soon
    ("HS-XD-001", "SXD", "kysu", "01/10/2026 09:00", 4),  # long overdue
    ("HS-XD-002", "SXD", "kysu", "13/11/2026 09:00", 2),  # on track
]
ACCOUNTS = [  # login, role, official
    ("admin", "admin", None),
    ("giamsat", "supervisor", None),
    ("lanhdao", "unit_head", "lanhdao"),  # STP and STP.HC
    ("truongphong", "unit_head", "truongphong"),  # STP.HC
    ("chuyenvien", "official", "chuyenvien"),
    ("kysu", "official", "kysu"),
]


def write_province(folder: Path, database_url: str, extra: str = "") -> Path:
    config = folder / "config.yaml"
    text = CONFIG.replace(
        'database: {url: "sqlite:///var/test.db"}', f'database: {{url: "{database_url}"}}'
    )
    config.write_text(text + extra, encoding="utf-8")
    (folder / "rules.yaml").write_text(RULES, encoding="utf-8")
    return config


def seed(store: Store, settings: Settings, now: datetime = NOW) -> None:
    """The cases, an engine pass at `now` (the alerts it fires become messages) and the first
    message about HS-HC-001 acknowledged."""
    records = []
    for code, unit, assignee, received, status in CASES:
        problems = RowProblems()
        raw = {
            "case_code": code,
            "procedure_code": "2.000488",
            "unit_code": unit,
            "received_at": received,
            "status": status,
            "assignee": assignee,
            "applicant_name": "Trần Thị <b>Hoa</b>" if code == "HS-HC-001" else "Lê Văn Bình",
            "updated_at": received,
        }
        records.append(normalize_case(raw, settings, problems))
        assert not problems, problems.problems
    upsert_cases(store, records, now - timedelta(days=30))
    engine = Engine(store, settings, load_rules(settings, env={}))
    hook = alerts_hook(store, settings, now)
    engine.ensure_planned(now, on_firings=hook)
    engine.tick(now, on_firings=hook)
    first = [m for m in history(store, case_code="HS-HC-001") if m.recipient == "chuyenvien"]
    if first:
        acknowledge(store, first[-1].id, now + timedelta(minutes=5))


def add_accounts(store: Store, now: datetime = NOW, password: str = PASSWORD) -> None:
    hashed = hash_password(password)  # one hash for all: argon2 is slow on purpose
    for login, role, official in ACCOUNTS:
        add_user(store, login, hashed, role, official, now)


@dataclass
class Site:
    """The daemon's app over a seeded province."""

    store: Store
    settings: Settings
    clock: FixedClock
    current: list[Settings] = field(default_factory=list)
    app: Any = None

    @classmethod
    def build(cls, store: Store, config: Path, now: datetime = NOW) -> Site:
        settings = load_settings(config, env={})
        site = cls(store, settings, FixedClock(now), [settings])
        ctx = AppContext(
            store=store,
            settings=lambda: site.current[0],
            clock=site.clock.now,
            health=HealthState(tick_interval=timedelta(seconds=30)),
            changed=lambda codes: None,
            ack=lambda message_id: acknowledge(store, message_id, site.clock.now()),
            ack_key=b"k" * 32,
            metrics=Metrics(),
        )
        site.app = create_app(ctx)
        return site


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app under uvicorn on a free loopback port, in a thread of its own."""
    server = embedded_server(app, "127.0.0.1:0")
    host, port = server.address
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (pip install -e '.[test]')"
    return None


async def launch(playwright: Any) -> Any:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# ----- screenshots for docs/ ----------------------------------------------------------------------


async def _photograph(base: str, out: Path, login: str, password: str, pages: list) -> None:
    """Sign in and photograph each (file name, path, viewport, full page) in `pages`."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await launch(p)
        try:
            for name, path, viewport, full in pages:
                phone = viewport["width"] < 600
                context = await browser.new_context(
                    viewport=viewport, locale="vi-VN", device_scale_factor=2 if phone else 1
                )
                page = await context.new_page()
                await page.goto(f"{base}/login")
                await page.fill("#login", login)
                await page.fill("#password", password)
                await page.click("button[type=submit]")
                await page.wait_for_url(f"{base}/")
                if path != "/":
                    await page.goto(f"{base}{path}")
                await page.screenshot(path=str(out / name), full_page=full)
                await context.close()
        finally:
            await browser.close()


def main(argv: list[str]) -> int:
    """Photograph the dashboard on the demo province (config.example.yaml, 300 demo cases, an
    engine pass) as a supervisor sees it: the board on a desktop and a phone screen, the unit
    and the case of the most overdue case (docs/img/dashboard*.png)."""
    import tempfile

    from watchdog.demo import load_demo
    from watchdog.reports.board import board

    out = Path(argv[0] if argv else "docs/img")
    out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(root / "config.example.yaml", folder / "config.yaml")
        for name in ("rules", "procedures.yaml"):
            src = root / name
            if src.is_dir():
                shutil.copytree(src, folder / name)
            elif src.exists():
                shutil.copy(src, folder / name)
        settings = load_settings(folder / "config.yaml", env={})
        store = Store.open(f"sqlite:///{folder / 'demo.db'}")
        now = NOW
        load_demo(store, settings, now)
        engine = Engine(store, settings, load_rules(settings, env={}))
        hook = alerts_hook(store, settings, now)
        engine.ensure_planned(now, on_firings=hook)
        engine.tick(now, on_firings=hook)
        add_user(store, "giamsat", hash_password(PASSWORD), "supervisor", None, now)
        site = Site.build(store, folder / "config.yaml", now)
        desktop, phone = {"width": 1280, "height": 860}, {"width": 390, "height": 844}
        overdue = next(iter(board(store, settings, now, state="overdue")))
        pages = [
            ("dashboard.png", "/", desktop, False),
            ("dashboard-phone.png", "/", phone, False),
            ("dashboard-unit.png", f"/units/{overdue.case.unit_code}", desktop, True),
            ("dashboard-case.png", f"/cases/{overdue.case.case_code}", desktop, True),
            ("dashboard-case-phone.png", f"/cases/{overdue.case.case_code}", phone, True),
            ("dashboard-report.png", "/report?from=01/10/2026&to=16/11/2026", desktop, False),
            ("dashboard-report-phone.png", "/report?from=01/10/2026&to=16/11/2026", phone, False),
        ]
        with serve(site.app) as base:
            asyncio.run(_photograph(base, out, "giamsat", PASSWORD, pages))
        store.close()
    print("written:", ", ".join(str(out / name) for name, *_ in pages))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
