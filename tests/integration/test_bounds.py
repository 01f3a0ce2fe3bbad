"""Bounds at the edges: a stored case the calendar cannot compute never stops a command.

The calendar computes the years 1900-2200 only. A case stored with an instant near or past
that edge (received 29/12/2200 with a 10-working-day limit, due in 2201; or the 31/12/9999
placeholder some exports write for "no date", which overflows when shown in local time) is
skipped by the board, the report and `run --once`, recorded as an `evaluation_error` finding
and named in a note, on SQLite and PostgreSQL. The importer refuses such rows, so they are put
in with the store's upsert, as an older import or another source could have left them.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from watchdog import cli
from watchdog.config import Settings, load_settings
from watchdog.reports.board import board
from watchdog.reports.ontime import build_report, to_csv
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store, schema
from watchdog.store.findings import open_findings

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 12, 5, 9, 0, tzinfo=VN)

# case, procedure, unit, received, status, finished (10 working days, as in test_report)
GOOD = [
    ("A", "2.000488", "STP.HC", "02/11/2026 09:00", 9, "05/11/2026 10:00"),  # on time
    ("C", "2.000488", "STP.HC", "25/11/2026 09:00", 4, None),  # open, due in December
    ("D", "2.000488", "STP", "03/11/2026 09:00", 4, None),  # open and past due
    ("E", "2.000488", "STP.HC", "03/11/2026 09:00", 5, None),  # waiting for documents
]
# Due on 12/01/2201: past the calendar's last year (ValueError).
PAST_2200 = ("X2200", datetime(2200, 12, 29, 9, 0, tzinfo=VN))
# The "no date" placeholder: 31/12/9999 in local time overflows a datetime (OverflowError).
PLACEHOLDER = ("X9999", datetime(9999, 12, 31, 20, 0, tzinfo=UTC))


def load_good(store: Store, config: Path) -> Settings:
    settings = load_settings(config, env={})
    records = []
    for code, proc, unit, received, status, finished in GOOD:
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


def put_uncomputable(store: Store, *cases: tuple[str, datetime]) -> None:
    """Open cases of a known procedure, written as a source could have left them."""
    rows = [
        {
            "case_code": code,
            "procedure_code": "2.000488",
            "unit_code": "STP.HC",
            "received_at": received,
            "status": 4,
            "source": "import",
            "created_at": NOW,
            "updated_at": NOW,
            "next_check_at": NOW,
        }
        for code, received in cases
    ]
    with store.begin() as conn:
        store.upsert(conn, schema.cases, rows, ["case_code"])


def case_ids(store: Store) -> dict[str, int]:
    c = schema.cases.c
    with store.read() as conn:
        return {r.case_code: r.id for r in conn.execute(select(c.case_code, c.id))}


def errors(store: Store) -> dict[str, tuple[str, int | None]]:
    """Open evaluation_error findings: subject -> (detail, case id)."""
    f = schema.findings.c
    stmt = select(f.subject, f.detail, f.case_id).where(
        f.kind == "evaluation_error", f.resolved_at.is_(None)
    )
    with store.read() as conn:
        return {r.subject: (r.detail, r.case_id) for r in conn.execute(stmt)}


def test_board_skips_a_case_it_cannot_compute_and_records_it(
    store: Store, small_config: Path
) -> None:
    settings = load_good(store, small_config)
    put_uncomputable(store, PAST_2200, PLACEHOLDER)

    lines = board(store, settings, NOW)

    assert sorted(line.case.case_code for line in lines) == ["C", "D", "E"]
    assert {s.case.case_code for s in lines.skipped} == {"X2200", "X9999"}
    ids = case_ids(store)
    found = errors(store)
    assert set(found) == {"X2200", "X9999"}
    detail, case_id = found["X2200"]
    assert detail.startswith("ValueError: ") and "2201" in detail and case_id == ids["X2200"]
    detail, case_id = found["X9999"]
    assert detail.startswith("OverflowError: ") and case_id == ids["X9999"]
    assert any(f["subject"] == "X2200" for f in open_findings(store, "evaluation_error"))
    for skipped in lines.skipped:
        assert skipped.case.case_code in skipped.note
        assert "\n" not in skipped.note and "evaluation_error" in skipped.note


def test_board_filters_still_report_the_skipped_case(store: Store, small_config: Path) -> None:
    settings = load_good(store, small_config)
    put_uncomputable(store, PAST_2200)
    lines = board(store, settings, NOW, unit="STP", state="overdue")
    assert [line.case.case_code for line in lines] == ["D"]
    assert [s.case.case_code for s in lines.skipped] == ["X2200"]
    lines = board(store, settings, NOW, unit="SXD")  # not in that unit: not read at all
    assert list(lines) == [] and lines.skipped == []


def test_report_counts_the_others_and_notes_the_skipped_case(
    store: Store, small_config: Path
) -> None:
    settings = load_good(store, small_config)
    # as of the end of 2200, so that X2200 (received 29/12/2200) counts as received by then
    as_of = datetime(2200, 12, 31, 12, 0, tzinfo=VN)
    clean = to_csv(
        build_report(store, settings, date(2026, 11, 1), date(2200, 12, 31), as_of=as_of)
    )
    put_uncomputable(store, PAST_2200)

    report = build_report(store, settings, date(2026, 11, 1), date(2200, 12, 31), as_of=as_of)

    assert to_csv(report) == clean  # the same counts as without it
    # A on time; C and D open and long past due: late; E waiting since before its due
    assert (report.total.received, report.total.on_time, report.total.late) == (4, 1, 2)
    assert [s.case.case_code for s in report.skipped] == ["X2200"]
    [note] = [n for n in report.notes if "X2200" in n]
    assert "evaluation_error" in note and "2201" in note and "not counted" in note
    detail, case_id = errors(store)["X2200"]
    assert "2201" in detail and case_id == case_ids(store)["X2200"]


def test_report_to_the_end_of_the_period_skips_it_too(store: Store, small_config: Path) -> None:
    settings = load_good(store, small_config)
    put_uncomputable(store, PAST_2200)
    end_of_2200 = datetime(2200, 12, 31, 23, 0, tzinfo=VN)  # the report's clock
    report = build_report(store, settings, date(2200, 12, 1), date(2200, 12, 31), now=end_of_2200)
    assert report.total.received == 0 and report.rows
    assert any("X2200" in n for n in report.notes)
    assert "X2200" in errors(store)


@pytest.fixture
def config_on(db_url: str, small_config: Path) -> Path:
    """The small province's config, its database the test's (SQLite file or PostgreSQL)."""
    text = small_config.read_text(encoding="utf-8")
    text = text.replace(
        'database: {url: "sqlite:///var/test.db"}', f'database: {{url: "{db_url}"}}'
    )
    small_config.write_text(text, encoding="utf-8")
    return small_config


@pytest.mark.parametrize("command", [["cases"], ["cases", "--format", "jsonl"]])
def test_commands_list_the_others_and_exit_cleanly(
    store: Store, config_on: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    load_good(store, config_on)
    put_uncomputable(store, PAST_2200, PLACEHOLDER)
    now = ["--now", "2026-12-05T09:00:00+07:00"]
    code = cli.main(["--config", str(config_on), *command, *now])
    captured = capsys.readouterr()
    assert code == cli.EXIT_OK
    # The case codes listed, read from the output itself: "C" in out would also match the
    # header's "Case", so a board that lost case C still passed.
    assert sorted(listed(captured.out, jsonl="jsonl" in command)) == ["C", "D", "E"]
    assert "X2200" not in captured.out and "X9999" not in captured.out
    assert set(errors(store)) == {"X2200", "X9999"}
    # ...and each skipped case is named in a note on stderr, one line each
    notes = [line for line in captured.err.splitlines() if "evaluation_error" in line]
    assert len(notes) == 2, captured.err
    assert all(any(code in note for note in notes) for code in ("X2200", "X9999")), notes


def test_run_once_evaluates_the_others_and_exits_cleanly(
    store: Store, config_on: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --once` prints a summary, not the board: the uncomputable cases are findings, the
    others are evaluated, and the pass ends normally."""
    load_good(store, config_on)
    put_uncomputable(store, PAST_2200, PLACEHOLDER)
    code = cli.main(["--config", str(config_on), "run", "--once", "--now", "2026-12-05T09:00"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured.err
    assert set(errors(store)) == {"X2200", "X9999"}
    assert "Traceback" not in captured.err
    # the two uncomputable ones included, and the closed one never planned (its standing)
    assert "6 case(s) planned" in captured.err


def listed(out: str, *, jsonl: bool) -> list[str]:
    """The case codes a board lists: each JSON line's case_code, or the first column of the
    table's rows (below the line of dashes under the header)."""
    if jsonl:
        return [json.loads(line)["case_code"] for line in out.splitlines() if line.strip()]
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    return [line.split()[0] for line in lines[rule + 1 :] if line.strip()]
