"""The demo generator: deterministic, consistent with the example config, every state present."""

from __future__ import annotations

import csv
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from watchdog.config import load_settings
from watchdog.demo import FIELDS, generate_cases, write_csv
from watchdog.durations import compute_due

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 11, 10, 0, tzinfo=TZ)  # a Wednesday, three weeks after Tết 2026
NOWS = [
    NOW,
    datetime(2026, 3, 14, 20, 30, tzinfo=TZ),  # Saturday evening
    datetime(2026, 2, 23, 7, 5, tzinfo=TZ),  # first working morning after Tết
]
CASE_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.H\d{2}-\d{6}-\d{4}$")
STATES = {"on_track", "due_soon", "overdue", "waiting", "finished_on_time", "finished_late"}


@pytest.fixture(scope="module")
def settings():
    return load_settings(ROOT / "config.example.yaml")


@pytest.fixture(scope="module")
def rows(settings):
    return generate_cases(settings, NOW)


def state_of(settings, row, now):
    """The case's state at `now`, from its procedure's computed due."""
    cal = settings.calendar_for(row["unit_code"])
    due = compute_due(cal, row["received_at"], settings.procedures[row["procedure_code"]].limit)
    status = row["status"]
    if status == 5:
        return "waiting"
    if status in (9, 10):
        return "finished_on_time" if row["finished_at"] <= due else "finished_late"
    if status in (7, 8):
        return "closed"
    if due <= now:
        return "overdue"
    if cal.working_seconds_between(now, due) <= cal.day_seconds:
        return "due_soon"
    return "on_track"


def test_same_seed_gives_same_rows(settings, rows):
    assert generate_cases(settings, NOW) == rows
    assert generate_cases(settings, NOW, seed=8) != rows
    assert len(rows) == 300


def test_rows_have_exactly_the_canonical_keys(rows):
    assert all(tuple(r) == FIELDS for r in rows)
    codes = [r["case_code"] for r in rows]
    assert len(set(codes)) == len(codes)
    assert all(CASE_CODE.match(c) for c in codes)


def test_cases_reference_configured_units_procedures_and_officials(settings, rows):
    # the checks of steps below run on rows that have one: the demo must have some
    assert sum(r["current_step"] is not None for r in rows) >= 10
    assert sum(r["step_handler"] is not None for r in rows) >= 10
    for r in rows:
        assert r["unit_code"] in settings.units
        assert r["procedure_code"] in settings.procedures
        assert settings.officials[r["assignee"]].unit == r["unit_code"]
        if r["step_handler"] is not None:
            assert r["step_handler"] in settings.officials
        if r["current_step"] is not None:
            steps = settings.procedures[r["procedure_code"]].steps
            assert r["current_step"] in {s.code for s in steps}
            assert r["received_at"] <= r["step_started_at"] <= NOW
        assert r["submission_channel"] in {"direct", "online", "postal"}
        assert r["status"] in {2, 4, 5, 7, 8, 9, 10}


def test_received_in_office_hours_within_the_window(settings, rows):
    for r in rows:
        received = r["received_at"]
        assert received.tzinfo is not None
        assert received.utcoffset() == timedelta(hours=7)
        assert NOW - timedelta(days=41) <= received < NOW
        assert settings.calendar_for(r["unit_code"]).is_working_instant(received)
        # the running number belongs to the received day
        assert r["case_code"].split("-")[1] == received.strftime("%y%m%d")


def test_source_due_equals_computed_due(settings, rows):
    given = [r for r in rows if r["due_at"] is not None]
    assert 10 <= len(given) <= 60
    for r in given:
        cal = settings.calendar_for(r["unit_code"])
        limit = settings.procedures[r["procedure_code"]].limit
        assert r["due_at"] == compute_due(cal, r["received_at"], limit)


def test_finished_cases_are_consistent(rows):
    assert {9, 10} <= {r["status"] for r in rows}  # both branches below are exercised
    for r in rows:
        if r["status"] in (9, 10):
            assert r["received_at"] <= r["finished_at"] <= NOW
            assert r["finished_at"].tzinfo is not None
        else:
            assert r["finished_at"] is None
        if r["status"] == 10:
            assert r["finished_at"] <= r["returned_at"] <= NOW
        else:
            assert r["returned_at"] is None
        assert r["received_at"] <= r["updated_at"] <= NOW


@pytest.mark.parametrize("now", NOWS, ids=lambda t: t.strftime("%a %d/%m %H:%M"))
def test_every_state_occurs(settings, now):
    rows = generate_cases(settings, now)
    states = [state_of(settings, r, now) for r in rows]
    missing = STATES - set(states)
    assert not missing
    finished = [s for s in states if s.startswith("finished")]
    late_share = finished.count("finished_late") / len(finished)
    assert 0.1 <= late_share <= 0.3


def test_write_csv_round_trips(tmp_path, rows):
    path = write_csv(rows, tmp_path / "demo" / "cases.csv")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == FIELDS
        back = list(reader)
    assert len(back) == len(rows)
    first, row = back[0], rows[0]
    assert first["case_code"] == row["case_code"]
    assert datetime.fromisoformat(first["received_at"]) == row["received_at"]
    assert first["received_at"].endswith("+07:00")
    assert first["status"] == str(row["status"])
    assert any("ữ" in b["applicant_name"] or "ễ" in b["applicant_name"] for b in back)
