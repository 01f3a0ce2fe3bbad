"""Scheduled on-time reports delivered with their XLSX, on SQLite and PostgreSQL: the message
`watchdog.reports.schedule` writes is rendered (Vietnamese subject and body from the `_report`
templates), its workbook built by `report_attachment` and sent through the real aiosmtpd
server; a report whose workbook cannot be made goes dead and the admin is told."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from openpyxl import load_workbook

from tests.integration.test_letters import CONFIG, at, load_case
from tests.support.smtp import SmtpServer
from watchdog.channels.email import EmailChannel
from watchdog.clock import FixedClock
from watchdog.config import load_settings
from watchdog.outbox.sender import Sender
from watchdog.outbox.wiring import renderer_for
from watchdog.reports.schedule import enqueue_due_reports
from watchdog.store import Store
from watchdog.store.outbox import NewMessage, enqueue_message, history

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def province(tmp_path: Path, url: str, port: int) -> Path:
    text = CONFIG.format(url=url)
    text += "supervisors: [thanhtra@example.vn]\n"
    text += "reports: {scheduled: [{name: thang, every: month}]}\n"
    text += f"channels: {{email: {{host: 127.0.0.1, port: {port}, tls: none, "
    text += 'from: "Hệ thống <canhbao@stp.example.vn>"}}\n'
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_monthly_report_goes_with_its_workbook(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with SmtpServer() as smtp:
            settings = load_settings(province(tmp_path, db_url, smtp.port), env={})
            load_case(store, settings)  # received 02/11/2026 in Phòng Hành chính tư pháp
            # November's report is due on the first working day after it, Tuesday 01/12 08:00
            now = at("01/12/2026 08:30")
            assert enqueue_due_reports(store, settings, now) == 1
            channels = {"email": EmailChannel(settings.channels.email)}
            sender = Sender(store, settings, renderer_for(settings), channels, FixedClock(now).now)
            assert (await sender.deliver_due()).sent == 1
            (mail,) = smtp.received
            assert mail.rcpt_tos == ("thanhtra@example.vn",)
            msg = mail.message()
            assert msg["Subject"] == "Báo cáo tỷ lệ giải quyết hồ sơ đúng hạn tháng 11/2026"
            plain = msg.get_body(("plain",)).get_content()
            assert "hồ sơ tiếp nhận từ 01/11/2026 đến 30/11/2026" in plain
            html = msg.get_body(("html",)).get_content()
            assert "<b>tháng 11/2026</b>" in html
            (workbook,) = msg.iter_attachments()
            assert workbook.get_content_type() == XLSX
            assert workbook.get_filename() == "bao-cao-dung-han-2026-11.xlsx"
            wb = load_workbook(io.BytesIO(workbook.get_content()))
            values = [c for row in wb.worksheets[0].iter_rows(values_only=True) for c in row]
            assert "Tiếp nhận" in values and "Phòng Hành chính tư pháp" in values
            (row,) = history(store)
            assert row.status == "sent" and row.stages == ["report/thang"]

    asyncio.run(scenario())


def test_a_report_whose_workbook_cannot_be_made_goes_dead_and_the_admin_hears(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with SmtpServer() as smtp:
            settings = load_settings(province(tmp_path, db_url, smtp.port), env={})
            now = at("01/12/2026 08:30")
            content = {"name": "thang", "every": "month", "start": "2026-11-01"}
            content |= {"end": "2026-11-30", "by": "phuong", "metric": "portal"}
            enqueue_message(
                store,
                NewMessage(
                    kind="report",
                    recipient="thanhtra@example.vn",
                    channel="email",
                    address="thanhtra@example.vn",
                    content=content,
                    stages=("report/thang",),
                ),
                now,
                now,
            )
            channels = {"email": EmailChannel(settings.channels.email)}
            sender = Sender(store, settings, renderer_for(settings), channels, FixedClock(now).now)
            report = await sender.deliver_due()
            assert report.dead == 1
            (notice,) = smtp.received  # the admin's notice; the report itself never went
            assert notice.rcpt_tos == ("thanhtra@example.vn",)
            assert "Thông báo không gửi được" in notice.message()["Subject"]
            dead = next(r for r in history(store) if r.stages == ["report/thang"])
            assert dead.status == "dead"
            assert dead.last_error.startswith("report attachment: ValueError")

    asyncio.run(scenario())


def test_a_report_message_without_its_period_is_dead_not_sent(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with SmtpServer() as smtp:
            settings = load_settings(province(tmp_path, db_url, smtp.port), env={})
            now = at("01/12/2026 08:30")
            enqueue_message(
                store,
                NewMessage(
                    kind="report",
                    recipient="thanhtra@example.vn",
                    channel="email",
                    address="thanhtra@example.vn",
                    content={"name": "thang", "every": "month"},  # no start, no end
                    stages=("report/thang",),
                ),
                now,
                now,
            )
            channels = {"email": EmailChannel(settings.channels.email)}
            sender = Sender(store, settings, renderer_for(settings), channels, FixedClock(now).now)
            assert (await sender.deliver_due()).dead == 1
            dead = next(r for r in history(store) if r.stages == ["report/thang"])
            assert dead.last_error == "not a valid report message: KeyError: 'start'"
            assert all("Báo cáo" not in (m.message()["Subject"] or "") for m in smtp.received)

    asyncio.run(scenario())
