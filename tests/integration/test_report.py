"""The portal on-time report (SPEC 9) over real imported cases, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from watchdog import i18n
from watchdog.config import load_settings
from watchdog.reports.ontime import By, build_report, to_csv, to_table
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=VN)

# case, procedure, unit, received, status, finished; dues are 10 working days (~2 weeks) later
CASES = [
    ("A", "2.000488", "STP.HC", "02/11/2026 09:00", 9, "05/11/2026 10:00"),  # on time
    ("B", "2.000488", "STP.HC", "02/11/2026 09:00", 10, "30/11/2026 10:00"),  # finished late
    ("C", "2.000488", "STP.HC", "25/11/2026 09:00", 4, None),  # open, due in December
    ("D", "2.000488", "STP", "03/11/2026 09:00", 4, None),  # open and past due
    ("E", "2.000488", "STP.HC", "03/11/2026 09:00", 5, None),  # waiting for documents
    ("F", "2.000488", "SXD", "10/11/2026 09:00", 7, None),  # withdrawn: received only
    ("G", "2.000488", "STP.HC", "31/10/2026 09:00", 4, None),  # before the period
    ("H", "2.000488", "SXD", "01/12/2026 09:00", 4, None),  # after the period
    ("I", "9.999999", "SXD", "12/11/2026 09:00", 4, None),  # unknown procedure, no due
    ("J", "2.000488", "STP.HC", "12/11/2026 09:00", 3, None),  # not accepted: not received
]


def load(store: Store, config: Path):
    settings = load_settings(config, env={})
    records = []
    for code, proc, unit, received, status, finished in CASES:
        raw = {
            "case_code": code,
            "procedure_code": proc,
            "unit_code": unit,
            "received_at": received,
            "status": status,
            "finished_at": finished,
        }
        if code == "E":  # the export says when it began waiting: before its due (17/11)
            raw["updated_at"] = "10/11/2026 10:00"
        problems = RowProblems()
        records.append(normalize_case(raw, settings, problems))
        assert not problems, problems.problems
    upsert_cases(store, records, NOW)
    return settings


def test_portal_csv_by_unit(store: Store, small_config: Path) -> None:
    settings = load(store, small_config)
    report = build_report(store, settings, date(2026, 11, 1), date(2026, 11, 30), now=NOW)
    assert to_csv(report).splitlines() == [
        "unit_code,unit_name,received,on_time,in_progress,late,on_time_rate",
        "T,UBND tỉnh,7,1,2,2,33.33",
        "STP,Sở Tư pháp,5,1,2,2,33.33",
        "STP.HC,Phòng Hành chính tư pháp,4,1,2,1,50.00",
        "SXD,Sở Xây dựng,2,0,0,0,",
        "TOTAL,Tổng cộng,7,1,2,2,33.33",
    ]
    assert report.without_due == 1 and report.notes


def test_as_of_takes_the_state_at_that_instant(store: Store, small_config: Path) -> None:
    settings = load(store, small_config)
    as_of = datetime(2026, 11, 10, 12, 0, tzinfo=VN)
    report = build_report(store, settings, date(2026, 11, 1), date(2026, 11, 30), as_of=as_of)
    total = report.total
    # Only cases received by 10/11 noon count (SPEC 9): A, B, D, E, F (C on 25/11 and I on
    # 12/11 come later). A finished on time; B, D, E still open and not yet due; F withdrawn.
    assert (total.received, total.on_time, total.in_progress, total.late) == (5, 1, 3, 0)
    assert str(total.rate) == "100.00"


def test_by_procedure_lists_unknown_codes_last(store: Store, small_config: Path) -> None:
    settings = load(store, small_config)
    report = build_report(
        store, settings, date(2026, 11, 1), date(2026, 11, 30), by=By.PROCEDURE, now=NOW
    )
    lines = to_csv(report).splitlines()
    assert (
        lines[0] == "procedure_code,procedure_name,received,on_time,in_progress,late,on_time_rate"
    )
    assert lines[1] == "2.000488,Cấp Phiếu lý lịch tư pháp,6,1,2,2,33.33"
    assert lines[4] == "9.999999,(không có trong cấu hình),1,0,0,0,"
    assert lines[-1] == "TOTAL,Tổng cộng,7,1,2,2,33.33"


def test_table_uses_comma_decimals_and_indents_children(store: Store, small_config: Path) -> None:
    """The table people read: Vietnamese words and comma decimals, or English ones on request;
    the CSV (machine output) is the same in both."""
    settings = load(store, small_config)
    report = build_report(store, settings, date(2026, 11, 1), date(2026, 11, 30), now=NOW)
    before = i18n.language()
    try:
        i18n.use("vi")
        text = to_table(report)
        assert "33,33" in text and "33.33" not in text
        assert "    Phòng Hành chính tư pháp" in text
        assert text.splitlines()[-1].split()[:2] == ["Tổng", "cộng"]
        csv_vi = to_csv(report)
        i18n.use("en")
        text = to_table(report)
        assert "33.33" in text and text.splitlines()[-1].split()[0] == "Total"
        assert to_csv(report) == csv_vi
    finally:
        i18n.use(before)


def test_default_as_of_is_now_when_the_period_has_not_ended(
    store: Store, small_config: Path
) -> None:
    """November's report run on 20/11/2026 10:00 shows the state at that instant: C (received
    25/11) is not counted yet, and B (finished 30/11, due 16/11) is open and late."""
    settings = load(store, small_config)
    now = datetime(2026, 11, 20, 10, 0, tzinfo=VN)
    report = build_report(store, settings, date(2026, 11, 1), date(2026, 11, 30), now=now)
    assert report.as_of == now
    total = report.total
    # A on time; B and D late (due 16/11 and 17/11); E waiting; I has no due; F withdrawn.
    assert (total.received, total.on_time, total.in_progress, total.late) == (6, 1, 1, 2)


def test_a_date_only_finish_on_the_due_date_is_on_time(store: Store, small_config: Path) -> None:
    """K: received Mon 02/11/2026 09:00, 10 working days: due Mon 16/11 09:00. The export
    says only "16/11/2026" for its finish: judged by its date, on time (SPEC 4)."""
    settings = load_settings(small_config, env={})
    raw = {
        "case_code": "K",
        "procedure_code": "2.000488",
        "unit_code": "STP.HC",
        "received_at": "02/11/2026 09:00",
        "status": 9,
        "finished_at": "16/11/2026",
    }
    problems = RowProblems()
    upsert_cases(store, [normalize_case(raw, settings, problems)], NOW)
    assert not problems
    report = build_report(store, settings, date(2026, 11, 1), date(2026, 11, 30), now=NOW)
    assert (report.total.on_time, report.total.late) == (1, 0)
