"""The QĐ 766 metric on the hand-worked example of docs/reports.md, on SQLite and PostgreSQL.

The cases come in as a source pushes them (records, then their events through the push API's
effects), and the report reads them back from the store. Every due and outcome below was worked
out by hand in docs/reports.md ("A worked example"); this test checks the same numbers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.conftest import SMALL_CONFIG
from watchdog.config import Settings, load_settings
from watchdog.engine.deadline import timeline
from watchdog.reports.ontime import (
    By,
    Metric,
    Outcome,
    build_report,
    outcome_766,
    outcome_at,
    to_csv,
)
from watchdog.sources.ingest import upsert_cases
from watchdog.sources.push import effect, read_cases, read_event
from watchdog.store import Store
from watchdog.store.cases import cases_received_between
from watchdog.store.events import EventWrite, apply_events

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=VN)
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))  # as-of: the end of 30/11/2026

# A procedure whose clock restarts when the documents are complete, beside SMALL_CONFIG's
# 2.000488 (10 working days, pause).
CONFIG = SMALL_CONFIG + (
    '  - {code: "1.000003", name: Thủ tục tính lại, limit: 5 working_days, '
    "on_supplement: restart}\n"
)
PAUSE, RESTART = "2.000488", "1.000003"


def at(text: str) -> str:
    """dd/mm HH:MM of November 2026, Vietnam time, as ISO 8601."""
    day, hm = text.split()
    d, m = day.split("/")
    return f"2026-{m}-{d}T{hm}:00+07:00"


# code, unit, procedure, received, events (kind, at); docs/reports.md has the same table
EXAMPLE: list[tuple[str, str, str, str, list[tuple[str, str]]]] = [
    ("P1", "STP.HC", PAUSE, "02/11 09:00", [("finished", "05/11 10:00")]),
    ("P2", "STP.HC", PAUSE, "02/11 09:00", [("finished", "30/11 10:00")]),
    (
        "P3",
        "STP.HC",
        PAUSE,
        "03/11 09:00",
        [
            ("supplement_requested", "05/11 09:00"),
            ("supplement_received", "12/11 09:00"),
            ("finished", "20/11 15:00"),
        ],
    ),
    (
        "P4",
        "STP.HC",
        PAUSE,
        "04/11 09:00",
        [
            ("supplement_requested", "05/11 09:00"),
            ("supplement_received", "06/11 09:00"),
            ("supplement_requested", "09/11 09:00"),
            ("supplement_received", "10/11 09:00"),
            ("finished", "12/11 10:00"),
        ],
    ),
    (
        "P5",
        "STP.HC",
        RESTART,
        "02/11 09:00",
        [
            ("supplement_requested", "04/11 09:00"),
            ("supplement_received", "09/11 09:00"),
            ("finished", "13/11 10:00"),
        ],
    ),
    ("P6", "SXD", PAUSE, "23/11 09:00", []),
    ("P7", "SXD", PAUSE, "03/11 09:00", []),
    ("P8", "SXD", PAUSE, "10/11 09:00", [("supplement_requested", "12/11 09:00")]),
    ("P9", "SXD", PAUSE, "11/11 09:00", [("withdrawn", "13/11 10:00")]),
    ("P10", "SXD", PAUSE, "02/11 09:00", [("supplement_requested", "18/11 09:00")]),
]

# code -> (due at as-of, portal outcome, 766 outcome): worked out by hand (docs/reports.md)
EXPECTED = {
    "P1": ("16/11 09:00", Outcome.ON_TIME, Outcome.ON_TIME),
    "P2": ("16/11 09:00", Outcome.LATE, Outcome.LATE),
    "P3": ("25/11 09:00", Outcome.ON_TIME, Outcome.ON_TIME),  # 17/11 + 5 days waited, 24/11 off
    "P4": ("20/11 09:00", Outcome.ON_TIME, Outcome.LATE),  # two supplement requests
    "P5": ("16/11 09:00", Outcome.ON_TIME, Outcome.ON_TIME),  # restarted on 09/11
    "P6": ("08/12 09:00", Outcome.IN_PROGRESS, Outcome.IN_PROGRESS),
    "P7": ("17/11 09:00", Outcome.LATE, Outcome.LATE),
    "P8": ("25/11 09:00", Outcome.IN_PROGRESS, Outcome.IN_PROGRESS),  # waiting since 12/11
    "P9": ("26/11 09:00", Outcome.NONE, Outcome.NONE),  # withdrawn
    "P10": ("16/11 09:00", Outcome.LATE, Outcome.LATE),  # asked for documents after the due
}


def example_settings(tmp_path: Path, extra: str = "") -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return load_settings(path, env={})


def load_example(store: Store, settings: Settings) -> None:
    """The ten cases of the worked example, pushed as a source would push them."""
    bodies: list[dict[str, Any]] = [
        {
            "case_code": code,
            "procedure_code": procedure,
            "unit_code": unit,
            "received_at": at(received),
            "status": 4,
        }
        for code, unit, procedure, received, _events in EXAMPLE
    ]
    pushed = read_cases(bodies, settings)
    assert not pushed.errors, pushed.errors
    upsert_cases(store, pushed.records, NOW, source="portal")
    writes = []
    for code, _unit, _procedure, _received, events in EXAMPLE:
        for n, (kind, when) in enumerate(events):
            read = read_event({"event_id": f"{code}-{n}", "kind": kind, "at": at(when)}, settings)
            assert read.event is not None, read.errors
            writes.append(EventWrite(code, read.event.new_event, effect(read.event, settings), "x"))
    assert apply_events(store, writes, NOW) == ["applied"] * len(writes)


def test_each_case_is_judged_as_worked_out_by_hand(store: Store, tmp_path: Path) -> None:
    settings = example_settings(tmp_path)
    load_example(store, settings)
    as_of = datetime(2026, 12, 1, 0, 0, tzinfo=VN)
    lo = datetime(2026, 11, 1, 0, 0, tzinfo=VN)
    seen = {}
    for case, events in cases_received_between(store, lo, as_of):
        calendar = settings.calendar_for(case.unit_code)
        tl = timeline(case, events, settings.procedures.get(case.procedure_code), calendar)
        seen[case.case_code] = (
            calendar.local(tl.due).strftime("%d/%m %H:%M"),
            outcome_at(case, tl, as_of),
            outcome_766(case, tl, as_of),
        )
    assert seen == EXPECTED


def test_766_rows_and_rate(store: Store, tmp_path: Path) -> None:
    """766: (on time + in progress) / received (SPEC 9); P9 (withdrawn) is received and not
    handled in time. STP.HC 3/5 = 60.00 %, SXD 2/5 = 40.00 %, all 5/10 = 50.00 %."""
    settings = example_settings(tmp_path)
    load_example(store, settings)
    report = build_report(store, settings, *NOVEMBER, now=NOW, metric="766")
    assert report.metric is Metric.QD766
    assert to_csv(report).splitlines() == [
        "unit_code,unit_name,received,on_time,in_progress,late,rate_766",
        "T,UBND tỉnh,10,3,2,4,50.00",
        "STP,Sở Tư pháp,5,3,0,2,60.00",
        "STP.HC,Phòng Hành chính tư pháp,5,3,0,2,60.00",
        "SXD,Sở Xây dựng,5,0,2,2,40.00",
        "TOTAL,Tổng cộng,10,3,2,4,50.00",
    ]


def test_the_portal_table_of_the_same_cases(store: Store, tmp_path: Path) -> None:
    """The portal metric on the same cases: P4 is on time (its two waits moved its due), the
    open cases are outside the rate: 4 / (4 + 3) = 57.14 %."""
    settings = example_settings(tmp_path)
    load_example(store, settings)
    report = build_report(store, settings, *NOVEMBER, now=NOW)
    assert to_csv(report).splitlines()[1:] == [
        "T,UBND tỉnh,10,4,2,3,57.14",
        "STP,Sở Tư pháp,5,4,0,1,80.00",
        "STP.HC,Phòng Hành chính tư pháp,5,4,0,1,80.00",
        "SXD,Sở Xây dựng,5,0,2,2,0.00",
        "TOTAL,Tổng cộng,10,4,2,3,57.14",
    ]


def test_766_by_procedure(store: Store, tmp_path: Path) -> None:
    settings = example_settings(tmp_path)
    load_example(store, settings)
    report = build_report(store, settings, *NOVEMBER, now=NOW, metric="766", by=By.PROCEDURE)
    lines = to_csv(report).splitlines()
    assert lines[0] == "procedure_code,procedure_name,received,on_time,in_progress,late,rate_766"
    # 2.000488: P1-P4, P6-P10 -> on time P1 P3, open in time P6 P8, late P2 P4 P7 P10
    assert "2.000488,Cấp Phiếu lý lịch tư pháp,9,2,2,4,44.44" in lines
    assert "1.000003,Thủ tục tính lại,1,1,0,0,100.00" in lines
