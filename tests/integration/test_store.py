"""Storage contract, run on SQLite and PostgreSQL alike (the `store` fixture is parametrised)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from watchdog.config import load_settings
from watchdog.store import Store, schema
from watchdog.store.db import current_revision, head_revision, is_outage
from watchdog.store.directory import sync_directory
from watchdog.store.plans import set_next_checks

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def case_row(code: str, **over) -> dict:
    row = {
        "case_code": code,
        "procedure_code": "2.000488",
        "unit_code": "STP.HC",
        "received_at": datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=7))),
        "status": 4,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return row | over


def test_migrations_reach_head(store: Store) -> None:
    assert current_revision(store.engine) == head_revision(store.engine) is not None


def test_instants_round_trip_as_utc(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row("A")])
    with store.engine.connect() as conn:
        got = conn.execute(select(schema.cases.c.received_at)).scalar_one()
    assert got == datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    assert got.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive"), store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row("A", received_at=datetime(2026, 1, 1))])


def test_upsert_updates_and_do_nothing_variant(store: Store) -> None:
    with store.begin() as conn:
        store.upsert(conn, schema.cases, [case_row("A"), case_row("B")], ["case_code"])
        store.upsert(conn, schema.cases, [case_row("A", status=9)], ["case_code"], ["status"])
        store.upsert(conn, schema.cases, [case_row("B", status=10)], ["case_code"], [])
    with store.engine.connect() as conn:
        rows = dict(conn.execute(select(schema.cases.c.case_code, schema.cases.c.status)).all())
    assert rows == {"A": 9, "B": 4}


def test_event_ids_are_unique_per_case(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row("A")])
        case_id = conn.execute(select(schema.cases.c.id)).scalar_one()
        event = {
            "case_id": case_id,
            "event_id": "e1",
            "kind": "assigned",
            "at": NOW,
            "data": {"to": "x"},
            "recorded_at": NOW,
        }
        store.upsert(
            conn,
            schema.case_events,
            [event, event | {"event_id": "e2"}],
            ["case_id", "event_id"],
            [],
        )
        store.upsert(conn, schema.case_events, [event], ["case_id", "event_id"], [])
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.case_events)).scalar_one() == 2


STEPS = """\
  - code: "3.000001"
    name: Thủ tục có bước
    limit: 5 working_days
    steps:
      - {code: B1, name: Tiếp nhận, allot: 1 working_day}
      - {code: B2, name: Thẩm định, allot: 4 working_hours}
"""


def test_sync_directory_marks_removed_entries_inactive(
    store: Store, small_config: Path, tmp_path: Path
) -> None:
    small_config.write_text(small_config.read_text(encoding="utf-8") + STEPS, encoding="utf-8")
    settings = load_settings(small_config, env={})
    assert sync_directory(store, settings) == {"units": 4, "officials": 3, "procedures": 4}
    p = schema.procedure_steps.c
    with store.engine.connect() as conn:
        steps = conn.execute(select(p.procedure_code, p.seq, p.code, p.allot).order_by(p.seq))
        assert [tuple(r) for r in steps] == [
            ("3.000001", 1, "B1", "1 working_days"),
            ("3.000001", 2, "B2", "4 working_hours"),
        ]
    # SXD, the official chuyenvien and the procedure with steps leave the YAML
    smaller = (
        small_config.read_text(encoding="utf-8")
        .replace("  - {code: SXD, name: Sở Xây dựng, parent: T}\n", "")
        .replace(STEPS, "")
    )
    smaller = "\n".join(line for line in smaller.splitlines() if "id: chuyenvien" not in line)
    smaller = smaller.replace(", deputy: chuyenvien", "")
    path = tmp_path / "smaller.yaml"
    path.write_text(smaller + "\n", encoding="utf-8")
    assert sync_directory(store, load_settings(path, env={})) == {
        "units": 3,
        "officials": 2,
        "procedures": 3,
    }
    u, o, pr = schema.units.c, schema.officials.c, schema.procedures.c
    with store.engine.connect() as conn:
        active = dict(conn.execute(select(u.code, u.active)).all())
        officials = dict(conn.execute(select(o.id, o.active)).all())
        procedures = dict(conn.execute(select(pr.code, pr.active)).all())
        heads = conn.execute(select(u.heads).where(u.code == "STP")).scalar_one()
        steps = conn.execute(select(func.count()).select_from(schema.procedure_steps)).scalar_one()
    assert active == {"T": True, "STP": True, "STP.HC": True, "SXD": False}
    assert officials == {"lanhdao": True, "truongphong": True, "chuyenvien": False}
    assert procedures == {"2.000488": True, "1.000001": True, "1.000002": True, "3.000001": False}
    assert heads == ["lanhdao"]
    assert steps == 0  # the steps of a procedure no longer configured are gone


def test_a_sqlite_write_transaction_holds_the_write_lock_from_its_begin(tmp_path: Path) -> None:
    """store.begin() is BEGIN IMMEDIATE on SQLite: what it reads stays true until it commits,
    because no other writer can start in between; store.read() blocks no writer. (The import's
    row-by-row retry hides a deferred BEGIN from the concurrency tests, so it is checked here.)"""
    import sqlite3

    db = tmp_path / "lock.db"
    store = Store.open(f"sqlite:///{db}")
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        with store.begin() as conn:
            conn.execute(select(func.count()).select_from(schema.cases)).scalar_one()  # a read
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once committed
        other.execute("ROLLBACK")
        with store.read() as conn:
            conn.execute(select(func.count()).select_from(schema.cases)).scalar_one()
            other.execute("BEGIN IMMEDIATE")  # a reader does not hold the write lock
            other.execute("ROLLBACK")
    finally:
        other.close()
        store.close()


def test_a_missing_index_is_a_fault_and_a_held_lock_an_outage(tmp_path: Path) -> None:
    """The daemon waits out an outage (probing, then resuming every job) and logs anything
    else. SQLite reports a statement about a missing table or index as an OperationalError
    like a locked file; taken for an outage, the daemon probed, resumed and failed again every
    second at half a core."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    db = tmp_path / "faults.db"
    store = Store.open(f"sqlite:///{db}")
    try:
        for sql in (
            "SELECT count(*) FROM cases INDEXED BY ix_no_such_index",
            "SELECT count(*) FROM no_such_table",
            "SELECT no_such_column FROM cases",
        ):
            with store.read() as conn, pytest.raises(OperationalError) as caught:
                conn.exec_driver_sql(sql)
            assert not is_outage(caught.value), sql
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            locked = create_engine(f"sqlite:///{db}", connect_args={"timeout": 0})
            with locked.connect() as conn, pytest.raises(OperationalError) as caught:
                conn.exec_driver_sql("INSERT INTO engine_state VALUES ('k', 'v', '2026-01-01')")
            locked.dispose()
            assert "locked" in str(caught.value)
            assert is_outage(caught.value)
        finally:
            other.execute("ROLLBACK")
            other.close()
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode_and_migrates_on_first_use(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'new' / 'w.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() >= 5000
    assert current_revision(store.engine) == head_revision(store.engine)
    store.close()


def test_postgres_is_not_migrated_silently(postgres_url: str) -> None:
    from watchdog.store.db import SchemaOutdated

    with pytest.raises(SchemaOutdated, match="watchdog db upgrade"):
        Store.open(postgres_url)
    engine = create_engine(postgres_url)
    try:  # and it did not migrate before saying so: the schema is still empty
        assert current_revision(engine) is None
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
            ).scalar_one()
        assert tables == 0
    finally:
        engine.dispose()


def test_set_next_checks_reads_back_as_written(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row("A"), case_row("B")])
        ids = dict(conn.execute(select(schema.cases.c.case_code, schema.cases.c.id)).all())
        when = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=7)))
        matched = set_next_checks(conn, [(ids["A"], 1, when), (ids["B"], 1, None)])
    assert matched == {ids["A"], ids["B"]}
    c = schema.cases.c
    with store.engine.connect() as conn:
        got = dict(conn.execute(select(c.case_code, c.next_check_at)).all())
        due = conn.execute(select(c.case_code).where(c.next_check_at <= when)).scalars().all()
    assert got == {"A": when, "B": None}
    assert due == ["A"]  # compares as an instant in SQL too


def test_set_next_checks_leaves_cases_changed_since_they_were_read(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row("A", next_check_at=NOW)])
        case_id = conn.execute(select(schema.cases.c.id)).scalar_one()
    later = NOW + timedelta(days=3)
    with store.begin() as conn:  # read at version 1, but an import changed the case since
        conn.execute(schema.cases.update().values(version=2))
    with store.begin() as conn:
        assert set_next_checks(conn, [(case_id, 1, later)]) == set()
    with store.engine.connect() as conn:
        assert conn.execute(select(schema.cases.c.next_check_at)).scalar_one() == NOW
    with store.begin() as conn:  # read at the current version: written
        assert set_next_checks(conn, [(case_id, 2, later)]) == {case_id}
    with store.engine.connect() as conn:
        assert conn.execute(select(schema.cases.c.next_check_at)).scalar_one() == later


def test_a_case_reads_back_field_by_field(store: Store) -> None:
    """RECORD_COLUMNS is built from CaseRecord's field names; a stored row comes back with
    every field where it belongs (none shifted, none swapped)."""
    from watchdog.domain import RECORD_FIELDS, Status
    from watchdog.store.cases import open_cases

    vn = timezone(timedelta(hours=7))
    row = case_row(
        "A",
        due_at=datetime(2026, 11, 16, 9, tzinfo=vn),
        finished_at=None,
        returned_at=None,
        assignee="chuyenvien",
        current_step="B2",
        step_started_at=datetime(2026, 11, 3, 8, tzinfo=vn),
        step_handler="truongphong",
        applicant_name="Nguyễn Văn A",
        submission_channel="online",
        source_updated_at=datetime(2026, 11, 3, 8, 30, tzinfo=vn),
        version=7,
    )
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [row])
    [(record, events)] = list(open_cases(store))
    assert events == ()
    for name in RECORD_FIELDS:
        if name in row and name != "status":
            assert getattr(record, name) == row[name], name
    assert record.status is Status.IN_PROGRESS and record.id is not None
