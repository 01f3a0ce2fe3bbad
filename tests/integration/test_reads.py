"""Reads that scale (store.reads): what the database filters, orders and counts from the standing
stored with each plan is what the cases themselves say. On SQLite and PostgreSQL.

Each read is taken twice on the same cases: before any plan (every case computed in Python
from its events, as the reads did before) and after the engine planned them (counted by SQL);
then once more with one case changed since its plan (computed in Python, merged with the rest).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, inspect, select, update

from tests.integration.test_report_766 import NOVEMBER, NOW, example_settings, load_example
from watchdog.config import Settings
from watchdog.domain import Rank
from watchdog.engine.deadline import standing, timeline
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.engine.simulate import simulate
from watchdog.reports.board import board, iter_board
from watchdog.reports.ontime import By, build_report, period_bounds, to_csv
from watchdog.store import Store, schema
from watchdog.store.cases import cases_received_between

_c = schema.cases.c


def plan(store: Store, settings: Settings) -> int:
    with Engine(store, settings, load_rules(settings, env={})) as engine:
        return engine.replan_all(NOW).evaluated


def unplanned(store: Store) -> int:
    stmt = select(func.count()).where((_c.plan_version.is_(None)) | (_c.plan_version != _c.version))
    with store.read() as conn:
        return conn.execute(stmt).scalar_one()


def touch(store: Store, code: str) -> None:
    """A source changed the case: a new version, not planned yet."""
    with store.begin() as conn:
        conn.execute(
            update(schema.cases).where(_c.case_code == code).values(version=_c.version + 1)
        )


def reports(store: Store, settings: Settings) -> dict[tuple[str, str], str]:
    return {
        (metric, by.value): to_csv(
            build_report(store, settings, *NOVEMBER, now=NOW, by=by, metric=metric)
        )
        for metric in ("portal", "766")
        for by in By
    }


def boards(store: Store, settings: Settings) -> dict[tuple, list[tuple]]:
    out = {}
    for when in (NOW, NOW + timedelta(days=3), NOW + timedelta(days=30)):
        for scope in (
            {},
            {"unit": "SXD"},
            {"unit": "STP"},
            {"official": "chuyenvien"},
            {"state": "overdue"},
            {"state": "waiting"},
            {"state": "on_track"},
            {"state": "due_soon"},
        ):
            lines = board(store, settings, when, **scope)
            out[(when, tuple(scope.items()))] = [
                (x.case.case_code, x.status.state.value, x.status.due, x.status.remaining)
                for x in lines
            ] + [("counts", tuple(sorted(lines.by_state.items())))]
    return out


@pytest.fixture
def example(store: Store, tmp_path: Path) -> Settings:
    settings = example_settings(tmp_path)
    load_example(store, settings)
    return settings


def test_the_report_counted_by_the_database_is_the_one_computed_from_the_events(
    store: Store, example: Settings
) -> None:
    assert unplanned(store) == 10
    computed = reports(store, example)
    assert plan(store, example) == 10  # the closed ones too: their standing was missing
    assert unplanned(store) == 0
    assert reports(store, example) == computed
    touch(store, "P4")  # changed since its plan: computed, the others counted
    assert unplanned(store) == 1
    assert reports(store, example) == computed


def test_the_board_read_from_the_database_is_the_one_computed_from_the_events(
    store: Store, example: Settings
) -> None:
    computed = boards(store, example)
    assert any(len(lines) > 2 for lines in computed.values())  # the example has open cases
    plan(store, example)
    assert boards(store, example) == computed
    touch(store, "P8")
    assert boards(store, example) == computed


def test_the_stored_standing_is_the_one_of_the_events(store: Store, example: Settings) -> None:
    plan(store, example)
    stmt = select(
        _c.case_code,
        _c.plan_rank,
        _c.plan_due_at,
        _c.plan_due_soon_at,
        _c.plan_waiting_since,
        _c.plan_supplements,
    )
    with store.read() as conn:
        stored = {r[0]: tuple(r[1:]) for r in conn.execute(stmt)}
    for case, events in cases_received_between(store, *period_bounds(example, *NOVEMBER)):
        calendar = example.calendar_for(case.unit_code)
        tl = timeline(case, events, example.procedures.get(case.procedure_code), calendar)
        st = standing(case, tl, calendar)
        assert stored[case.case_code] == (
            int(st.rank),
            st.due,
            st.due_soon_at,
            st.waiting_since,
            st.supplements,
        ), case.case_code
    ranks = {code: Rank(v[0]) for code, v in stored.items()}
    assert ranks["P9"] is Rank.CLOSED and ranks["P8"] is Rank.WAITING
    assert ranks["P6"] is Rank.RUNNING and stored["P4"][4] == 2


def test_pages_of_the_board_follow_one_another(store: Store, example: Settings) -> None:
    plan(store, example)
    touch(store, "P6")
    later = NOW + timedelta(days=3)
    whole = [line.case.case_code for line in board(store, example, later)]
    pages = [
        [line.case.case_code for line in board(store, example, later, limit=2, offset=o)]
        for o in range(0, len(whole), 2)
    ]
    assert [code for page in pages for code in page] == whole
    first = board(store, example, later, limit=2)
    assert len(first) == 2 and first.total == len(whole)
    lines, skipped = iter_board(store, example, later)
    assert [line.case.case_code for line in lines] == whole and skipped == []


def test_simulate_from_the_next_checks_says_what_evaluating_every_case_says(
    store: Store, example: Settings
) -> None:
    """Planned under the current rules, simulate reads only the cases whose next check falls
    before T2 and looks at each first at that check; with the rules hash gone it evaluates every
    open case from T1. Both see the same firings already written by the plan."""
    rules = load_rules(example, env={})
    plan(store, example)
    start, end, step = NOW + timedelta(hours=1), NOW + timedelta(days=10), timedelta(minutes=15)
    planned = simulate(store, example, rules, start, end, step)
    with store.begin() as conn:
        conn.execute(delete(schema.engine_state).where(schema.engine_state.c.key == "rules_hash"))
    everything = simulate(store, example, rules, start, end, step)

    def seen(messages):
        return [(m.at, m.recipient, m.channel, m.case_codes, m.stages) for m in messages]

    assert everything  # the example's open cases are warned about in those ten days
    assert seen(planned) == seen(everything)


def test_a_plan_of_three_fields_leaves_the_standing_to_the_reads(
    store: Store, example: Settings
) -> None:
    """`set_next_checks` (the old three-field plan) marks the case unplanned for the reads."""
    from watchdog.store.plans import set_next_checks

    plan(store, example)
    with store.read() as conn:
        case_id, version = conn.execute(select(_c.id, _c.version).where(_c.case_code == "P6")).one()
    with store.begin() as conn:
        assert set_next_checks(conn, [(case_id, version, NOW)]) == {case_id}
    assert unplanned(store) == 1


def test_a_case_that_cannot_be_computed_is_skipped_by_both_paths(
    store: Store, example: Settings
) -> None:
    with store.begin() as conn:
        conn.execute(
            update(schema.cases)
            .where(_c.case_code == "P7")
            .values(received_at=NOW.replace(year=2201))
        )
    before = board(store, example, NOW)
    assert [s.case.case_code for s in before.skipped] == ["P7"]
    plan(store, example)
    after = board(store, example, NOW)
    assert [s.case.case_code for s in after.skipped] == ["P7"]
    assert [x.case.case_code for x in after] == [x.case.case_code for x in before]


def test_counts_by_unit_and_official_are_the_board_grouped(store: Store, example: Settings) -> None:
    from collections import Counter

    from watchdog.reports.board import board_counts_by

    def grouped(by: str, **scope) -> Counter:
        lines = board(store, example, NOW, **scope)
        key = (lambda x: x.case.unit_code) if by == "unit" else (lambda x: x.case.assignee or "")
        return Counter((key(x), x.status.state.value) for x in lines)

    for when in ("before the plan", "planned", "one case changed since"):
        if when == "planned":
            plan(store, example)
        elif when == "one case changed since":
            touch(store, "P7")
        assert board_counts_by(store, example, NOW, "unit") == grouped("unit"), when
        assert board_counts_by(store, example, NOW, "assignee", unit="STP") == grouped(
            "assignee", unit="STP"
        ), when


def test_a_report_of_one_unit_counts_its_subtree_only(store: Store, example: Settings) -> None:
    plan(store, example)
    whole = build_report(store, example, *NOVEMBER, now=NOW)
    one = build_report(store, example, *NOVEMBER, now=NOW, unit="STP")
    rows = {r.key: r.counts for r in whole.rows}
    mine = {r.key: r.counts for r in one.rows}
    assert mine["STP"] == rows["STP"] and mine["STP.HC"] == rows["STP.HC"]
    assert mine["SXD"].received == 0 < rows["SXD"].received
    assert one.total == rows["STP"]


def test_a_plan_of_mostly_unplanned_cases_builds_the_board_indexes_again(
    store: Store, example: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite drops the board's and the next checks' indexes for such a plan and builds them
    after: the standings and next checks written are the same as a plan without, the indexes
    are there again, and the board and the tick read through them."""
    from watchdog.store import plans

    computed = boards(store, example)
    plan(store, example)  # an ordinary plan first: what the bulk one must write too
    checks = next_checks(store)
    touch_all(store)  # every case changed since: all unplanned again
    monkeypatch.setattr(plans, "BULK_MIN", 1)
    seen: list[bool] = []
    real = plans.bulk_standings

    @contextmanager
    def watched(s):
        with real(s) as bulk:
            seen.append(bulk)
            yield bulk

    monkeypatch.setattr("watchdog.engine.runner.bulk_standings", watched)
    plan(store, example)
    assert seen == [store.dialect == "sqlite"]
    with store.read() as conn:
        names = {i["name"] for i in inspect(conn).get_indexes("cases")}
    assert set(plans.BULK_INDEXES) <= names
    assert unplanned(store) == 0
    assert boards(store, example) == computed
    assert next_checks(store) == checks
    soonest = min(t for t in checks.values() if t is not None)
    with Engine(store, example, load_rules(example, env={})) as engine:
        assert engine.tick(soonest).evaluated >= 1  # claimed through the rebuilt index


def next_checks(store: Store) -> dict[int, datetime | None]:
    with store.read() as conn:
        return {i: t for i, t in conn.execute(select(_c.id, _c.next_check_at))}


def touch_all(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(update(schema.cases).values(version=_c.version + 1))
