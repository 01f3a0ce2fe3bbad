"""Scheduled reports (`reports.scheduled`) on SQLite and PostgreSQL: written once per report,
period and recipient on the first working day after a month or a quarter, the XLSX built for
the message."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.integration.test_report_766 import CONFIG, load_example
from watchdog import cli
from watchdog.config import Settings, load_settings
from watchdog.reports.schedule import enqueue_due_reports, last_period, report_attachment
from watchdog.store import Store
from watchdog.store.outbox import claim_messages, history

VN = timezone(timedelta(hours=7))

SCHEDULED = """\
reports:
  scheduled:
    - {name: thang, every: month}
    - name: quy
      every: quarter
      at: "09:30"
      metric: "766"
      to: [lanhdao, supervisors, so@example.vn, khongthu, thanhtra@example.vn]
"""


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN)


def settings_for(tmp_path: Path, scheduled: str = SCHEDULED) -> Settings:
    text = CONFIG.replace(
        "officials:\n", "officials:\n  - {id: khongthu, name: Không Có Thư, unit: SXD}\n"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text + scheduled, encoding="utf-8")
    return load_settings(path, env={})


def reports_in(store: Store) -> list[tuple[str, str, str, str]]:
    return sorted(
        (h.stages[0], h.recipient, h.channel, h.address)
        for h in history(store)
        if h.kind == "report"
    )


def test_last_period() -> None:
    assert last_period("month", vn(2026, 12, 1).date()) == (
        vn(2026, 11, 1).date(),
        vn(2026, 11, 30).date(),
    )
    assert last_period("month", vn(2027, 1, 4).date()) == (
        vn(2026, 12, 1).date(),
        vn(2026, 12, 31).date(),
    )
    assert last_period("quarter", vn(2027, 1, 4).date()) == (
        vn(2026, 10, 1).date(),
        vn(2026, 12, 31).date(),
    )
    assert last_period("quarter", vn(2026, 10, 1).date()) == (
        vn(2026, 7, 1).date(),
        vn(2026, 9, 30).date(),
    )
    assert last_period("quarter", vn(2026, 3, 31).date()) == (
        vn(2025, 10, 1).date(),
        vn(2025, 12, 31).date(),
    )


def test_a_monthly_report_once_per_recipient_on_the_first_working_day(
    store: Store, tmp_path: Path
) -> None:
    """November 2026 ends on Monday 30/11: its report is due Tuesday 01/12 at 08:00, to the
    supervisors (thanhtra@example.vn), by e-mail through the file channel (no SMTP here)."""
    settings = settings_for(tmp_path)
    assert enqueue_due_reports(store, settings, vn(2026, 11, 30, 23, 0)) == 0
    assert enqueue_due_reports(store, settings, vn(2026, 12, 1, 7, 59)) == 0
    assert enqueue_due_reports(store, settings, vn(2026, 12, 1, 8, 0)) == 1
    for minute in (1, 30, 59):  # the daemon's job runs every minute: nothing more
        assert enqueue_due_reports(store, settings, vn(2026, 12, 1, 9, minute)) == 0
    assert reports_in(store) == [
        ("report/thang", "thanhtra@example.vn", "file", "thanhtra@example.vn")
    ]
    (claimed,) = claim_messages(store, "test", vn(2026, 12, 1, 9, 0), timedelta(minutes=1), 10)
    assert claimed.kind == "report"
    assert claimed.content == {
        "name": "thang",
        "every": "month",
        "start": "2026-11-01",
        "end": "2026-11-30",
        "by": "unit",
        "metric": "portal",
    }


def test_a_quarter_after_new_year_waits_for_the_first_working_day(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Q4 2026 and December end on Thursday 31/12/2026; Friday 01/01/2027 is a public holiday
    and the weekend follows: both reports are due Monday 04/01/2027 (08:00 and 09:30). The
    quarterly one goes to lanhdao's e-mail, the supervisors and so@example.vn, each once (the
    supervisors' address named twice); khongthu has no e-mail and is skipped, logged once."""
    settings = settings_for(tmp_path)
    for day in (1, 2, 3):
        for hour in (8, 9, 10, 11):
            assert enqueue_due_reports(store, settings, vn(2027, 1, day, hour, 45)) == 0
    caplog.set_level(logging.WARNING, logger="watchdog.reports.schedule")
    assert enqueue_due_reports(store, settings, vn(2027, 1, 4, 8, 0)) == 1  # the month
    assert enqueue_due_reports(store, settings, vn(2027, 1, 4, 9, 29)) == 0
    assert enqueue_due_reports(store, settings, vn(2027, 1, 4, 9, 30)) == 3  # the quarter
    assert enqueue_due_reports(store, settings, vn(2027, 1, 4, 9, 31)) == 0
    assert reports_in(store) == [
        ("report/quy", "lanhdao", "file", "lanh@example.vn"),
        ("report/quy", "so@example.vn", "file", "so@example.vn"),
        ("report/quy", "thanhtra@example.vn", "file", "thanhtra@example.vn"),
        ("report/thang", "thanhtra@example.vn", "file", "thanhtra@example.vn"),
    ]
    skipped = [r for r in caplog.records if "khongthu" in r.getMessage()]
    assert len(skipped) == 1 and "no e-mail address" in skipped[0].getMessage()
    contents = {
        (c.recipient, c.content["name"]): c.content
        for c in claim_messages(store, "t", vn(2027, 1, 4, 10), timedelta(minutes=1), 10)
    }
    quarter = contents[("lanhdao", "quy")]
    assert (quarter["start"], quarter["end"], quarter["metric"]) == (
        "2026-10-01",
        "2026-12-31",
        "766",
    )
    month = contents[("thanhtra@example.vn", "thang")]
    assert (month["start"], month["end"]) == ("2026-12-01", "2026-12-31")


def test_a_send_missed_by_more_than_two_hours_is_not_made(store: Store, tmp_path: Path) -> None:
    """Like digests: a daemon down at 08:00 still sends at 09:59, not at 10:01."""
    settings = settings_for(tmp_path)
    assert enqueue_due_reports(store, settings, vn(2026, 12, 1, 10, 1)) == 0
    assert enqueue_due_reports(store, settings, vn(2026, 12, 1, 9, 59)) == 1
    # a quarter ending on a Wednesday (30/09/2026): due Thursday 01/10 at 09:30
    # (September's, due at 08:00, is more than two hours late by then: not sent)
    assert enqueue_due_reports(store, settings, vn(2026, 10, 1, 11, 29)) == 3
    assert enqueue_due_reports(store, settings, vn(2026, 10, 1, 11, 29)) == 0


def test_an_smtp_server_makes_it_an_email(store: Store, tmp_path: Path) -> None:
    channels = 'channels: {email: {host: 127.0.0.1, port: 2525, from: "w@example.vn"}}\n'
    settings = settings_for(tmp_path, SCHEDULED + channels)
    assert enqueue_due_reports(store, settings, vn(2026, 12, 1, 8, 0)) == 1
    assert [r[2] for r in reports_in(store)] == ["email"]


def test_the_attachment_is_the_periods_workbook(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    load_example(store, settings)
    now = vn(2026, 12, 1, 8, 0)
    content = {
        "name": "quy",
        "every": "month",
        "start": "2026-11-01",
        "end": "2026-11-30",
        "by": "unit",
        "metric": "766",
    }
    name, data = report_attachment(content, settings, store, now)
    assert name == "bao-cao-dung-han-766-2026-11.xlsx"
    ws = load_workbook(io.BytesIO(data)).active
    assert ws["A3"].value == "Số liệu tính đến hết ngày 30/11/2026"
    total = next(r for r in ws.iter_rows(values_only=True) if r[1] == "Tổng cộng")
    assert total[2:] == (10, 3, 2, 4, 50.0)  # the worked example (docs/reports.md)
    quarter = content | {"every": "quarter", "start": "2026-10-01", "end": "2026-12-31"}
    name, _data = report_attachment(quarter | {"metric": "portal"}, settings, store, now)
    assert name == "bao-cao-dung-han-2026-Q4.xlsx"


def test_check_refuses_duplicate_names_and_reports_unknown_recipients(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    twice = "reports:\n  scheduled:\n    - {name: a, every: month}\n    - {name: a, every: month}\n"
    path = tmp_path / "twice.yaml"
    path.write_text(CONFIG + twice, encoding="utf-8")
    assert cli.main(["--config", str(path), "check"]) == cli.EXIT_USAGE
    bad = "reports:\n  scheduled:\n    - {name: a, every: month, to: [nobody, x@example.vn]}\n"
    path = tmp_path / "bad.yaml"
    path.write_text(CONFIG + bad, encoding="utf-8")
    assert cli.main(["--config", str(path), "check"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    line = (CONFIG + bad).splitlines().index("  scheduled:") + 2
    assert f"bad.yaml:{line}: reports.scheduled[0].to[0]: unknown official 'nobody'" in err
