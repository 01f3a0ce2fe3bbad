"""The engine against a real database (SQLite and PostgreSQL): every firing is written once,
whatever happens around it: restart, rules reload, re-import, a crash mid-batch, two replicas."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from watchdog.config import load_settings
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store, schema

VN = timezone(timedelta(hours=7))

RULES = """\
policies:
  - name: p
    stages:
      - {id: due_soon, when: {remaining: "1 working_day"}, notify: [assignee]}
      - {id: overdue, when: {overdue: "0 working_days"}, notify: [assignee, unit_head],
         repeat: "1 working_day"}
"""
EXTRA_STAGE = """\
      - {id: overdue_agency, when: {overdue: "2 working_days"}, notify: [agency_head]}
"""


def at(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=VN)


@pytest.fixture
def province(tmp_path: Path, small_config: Path) -> Path:
    text = small_config.read_text(encoding="utf-8")
    text += "rules: [rules.yaml]\nchannels: {file: {dir: out}}\n"
    small_config.write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return small_config


def load(store: Store, settings, rows: list[dict], now: datetime):
    records = []
    for raw in rows:
        problems = RowProblems()
        records.append(normalize_case(raw, settings, problems))
        assert not problems, problems.problems
    return upsert_cases(store, records, now)


# 10 working days from Mon 02/11 09:00 -> due Mon 16/11 09:00.
CASE = {
    "case_code": "HS-1",
    "procedure_code": "2.000488",
    "unit_code": "STP.HC",
    "received_at": "02/11/2026 09:00",
    "status": 4,
    "assignee": "chuyenvien",
}


def firing_keys(store: Store) -> list[tuple]:
    f = schema.firings.c
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(f.stage, f.version, f.repeat_no)).all())


def engine(store_url: str, province: Path) -> Engine:
    settings = load_settings(province, env={})
    store = Store.open(store_url, migrate=False)
    return Engine(store, settings, load_rules(settings, env={}), batch_size=50)


def test_fires_once_across_restart_and_repeats(store: Store, db_url: str, province: Path) -> None:
    e = engine(db_url, province)
    load(store, e.settings, [CASE], at("02/11/2026 09:00"))
    e.ensure_planned(at("02/11/2026 09:00"))
    assert e.tick(at("02/11/2026 09:00")).fired == []
    r = e.tick(at("13/11/2026 09:30"))  # one working day before the due
    assert len(r.fired) == 1
    again = engine(db_url, province)  # a restarted daemon
    assert again.ensure_planned(at("13/11/2026 09:31")).evaluated == 0
    assert again.tick(at("13/11/2026 09:31")).fired == []
    assert again.tick(at("16/11/2026 09:05")).evaluated == 1
    again.tick(at("17/11/2026 09:05"))  # one working day later: repeat 1
    again.tick(at("17/11/2026 10:00"))
    assert firing_keys(store) == [
        ("p/due_soon", "0", 0),
        ("p/overdue", "0", 0),
        ("p/overdue", "0", 1),
    ]


def test_reload_and_reimport_do_not_fire_twice(store: Store, db_url: str, province: Path) -> None:
    e = engine(db_url, province)
    load(store, e.settings, [CASE], at("02/11/2026 09:00"))
    e.ensure_planned(at("16/11/2026 10:00"))
    e.tick(at("16/11/2026 10:00"))
    assert [k[0] for k in firing_keys(store)] == ["p/overdue"]  # due_soon's window has closed

    # The same rules reloaded: nothing to re-plan, nothing new.
    same = engine(db_url, province)
    assert same.ensure_planned(at("16/11/2026 10:05")).evaluated == 0
    # A re-import of the same case, and of a changed one: re-planned, not re-fired.
    assert load(store, same.settings, [CASE], at("16/11/2026 10:05")).unchanged == 1
    assert (
        load(
            store, same.settings, [CASE | {"applicant_name": "Lê Thị Mới"}], at("16/11/2026 10:06")
        ).updated
        == 1
    )
    assert same.tick(at("16/11/2026 10:06")).fired == []

    # Changed rules: every open case is re-planned; only the new stage fires.
    rules = province.parent / "rules.yaml"
    rules.write_text(RULES + EXTRA_STAGE, encoding="utf-8")
    changed = engine(db_url, province)
    assert changed.ensure_planned(at("18/11/2026 10:00")).evaluated == 1
    changed.tick(at("18/11/2026 10:00"))
    # two working days after the due: repeat 2 of overdue (repeat 1 was never due at a tick;
    # no backlog), and the new stage.
    assert firing_keys(store) == [
        ("p/overdue", "0", 0),
        ("p/overdue", "0", 2),
        ("p/overdue_agency", "0", 0),
    ]


def test_extension_starts_a_new_due_version(store: Store, db_url: str, province: Path) -> None:
    e = engine(db_url, province)
    first = CASE | {"due_at": "16/11/2026 09:00"}
    load(store, e.settings, [first], at("02/11/2026 09:00"))
    e.ensure_planned(at("13/11/2026 09:00"))
    e.tick(at("13/11/2026 09:00"))  # one working day before the due: due_soon
    # The appointment is reset to 20/11 (gia hạn), recorded at 09:00 by the source: exactly one
    # working day before the due it replaces (SPEC 4), so it counts, and warnings apply again
    # to the new date. The import runs at 11:00; the source's time is what counts.
    reset = first | {"due_at": "20/11/2026 17:00", "updated_at": "13/11/2026 09:00"}
    load(store, e.settings, [reset], at("13/11/2026 11:00"))
    e.tick(at("13/11/2026 11:00"))
    assert firing_keys(store) == [("p/due_soon", "0", 0)]
    e.tick(at("19/11/2026 17:00"))
    assert firing_keys(store) == [("p/due_soon", "0", 0), ("p/due_soon", "1", 0)]


def test_a_crash_mid_batch_loses_and_duplicates_nothing(
    store: Store, db_url: str, province: Path
) -> None:
    e = engine(db_url, province)
    cases = [CASE | {"case_code": f"HS-{i}"} for i in range(120)]
    load(store, e.settings, cases, at("02/11/2026 09:00"))  # new cases: due for a look now

    def crash(conn, written):
        raise RuntimeError("power cut while delivering")

    with pytest.raises(RuntimeError):
        e.tick(at("16/11/2026 10:00"), on_firings=crash)
    assert firing_keys(store) == []  # the batch rolled back whole
    report = engine(db_url, province).tick(at("16/11/2026 10:00"))
    assert len(report.fired) == 120 and report.batches == 3
    assert engine(db_url, province).tick(at("16/11/2026 10:00")).fired == []


def test_two_replicas_share_the_work_and_never_fire_twice(
    store: Store, db_url: str, province: Path
) -> None:
    """Two daemons tick at once over 300 overdue cases in batches of 50. On PostgreSQL the
    batches are claimed FOR UPDATE SKIP LOCKED: each replica evaluates a share, no case is
    evaluated by both (the evaluated counts add up to exactly 300), no firing key is written
    twice, and both replicas hold a batch at the same moment. Without SKIP LOCKED each replica
    waits on the other's locks, so they take turns and never work at once (checked by hand:
    the test fails on `max(inflight)`). SQLite has one writer and
    no row locks: replicas are not supported there (docs/engine.md); the unique firing key
    still writes each firing once."""
    e = engine(db_url, province)
    cases = [CASE | {"case_code": f"HS-{i}"} for i in range(300)]
    load(store, e.settings, cases, at("02/11/2026 09:00"))
    replicas = [engine(db_url, province) for _ in range(2)]
    reports, errors, written = {}, [], {0: [], 1: []}
    start, guard = threading.Barrier(2), threading.Lock()
    inflight = [0]  # batches inside their write transaction right now, and the most seen
    most = [0]

    def work(n: int, r: Engine) -> None:
        def slow_delivery(conn, fired) -> None:  # keeps each batch's locks a little while
            written[n].extend(fid for fid, _ in fired)
            with guard:
                inflight[0] += 1
                most[0] = max(most[0], inflight[0])
            threading.Event().wait(0.05)
            with guard:
                inflight[0] -= 1

        try:
            start.wait(5)
            reports[n] = r.tick(at("16/11/2026 10:00"), on_firings=slow_delivery)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, r)) for n, r in enumerate(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    f = schema.firings.c
    with store.engine.connect() as conn:
        keys = conn.execute(select(f.case_id, f.stage, f.step, f.version, f.repeat_no)).all()
    assert len(keys) == len(set(keys)) == 300  # every case's overdue, each key once
    assert sorted(written[0] + written[1]) == sorted({*written[0], *written[1]})
    if store.dialect == "postgresql":
        evaluated = [reports[0].evaluated, reports[1].evaluated]
        assert min(evaluated) > 0, f"one replica did all the work: {evaluated}"
        assert sum(evaluated) == 300, f"some case was evaluated twice: {evaluated}"
        assert min(len(written[0]), len(written[1])) > 0
        assert most[0] == 2, "the replicas never held a batch at the same time"


def test_findings_are_recorded_and_resolved(store: Store, db_url: str, province: Path) -> None:
    from watchdog.store.findings import open_findings

    e = engine(db_url, province)
    load(
        store,
        e.settings,
        [CASE | {"assignee": None, "procedure_code": "9.9"}],
        at("02/11/2026 09:00"),
    )
    e.tick(at("02/11/2026 09:00"))
    assert {f["kind"] for f in open_findings(store)} == {"no_assignee", "unknown_procedure"}
    load(store, e.settings, [CASE], at("03/11/2026 09:00"))
    e.tick(at("03/11/2026 09:00"))
    assert open_findings(store) == []


def test_next_check_at_is_indexed_and_closed_cases_drop_out(
    store: Store, db_url: str, province: Path
) -> None:
    e = engine(db_url, province)
    load(store, e.settings, [CASE], at("02/11/2026 09:00"))
    e.tick(at("02/11/2026 09:00"))
    c = schema.cases.c
    with store.engine.connect() as conn:
        nxt = conn.execute(select(c.next_check_at)).scalar_one()
    assert nxt == at("13/11/2026 09:00")  # due_soon: 1 working day before 16/11 09:00
    load(
        store,
        e.settings,
        [CASE | {"status": 9, "finished_at": "05/11/2026 10:00"}],
        at("05/11/2026 10:00"),
    )
    e.tick(at("05/11/2026 10:00"))
    with store.engine.connect() as conn:
        assert conn.execute(select(c.next_check_at)).scalar_one() is None


def test_worker_processes_write_what_one_process_writes(
    store: Store, db_url: str, province: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from watchdog.engine import worker

    settings = load_settings(province, env={})
    cases = [
        CASE | {"case_code": f"HS-{i}", "received_at": f"0{1 + i % 9}/11/2026 09:00"}
        for i in range(150)
    ]
    load(store, settings, cases, at("02/11/2026 09:00"))

    def not_here(*args, **kwargs):
        raise AssertionError("evaluated in the main process, not in a worker")

    # The workers are new interpreters (spawn) with the real function: with workers=2 nothing
    # may be evaluated here, or the test would pass with the pool unused.
    monkeypatch.setattr(worker, "evaluate_facts", not_here)
    with Engine(
        Store.open(db_url, migrate=False),
        settings,
        load_rules(settings, env={}),
        batch_size=40,
        workers=2,
    ) as pooled:
        report = pooled.tick(at("16/11/2026 10:00"))
        assert (
            pooled.replan_all(at("16/11/2026 10:00")).evaluated == 150
        )  # nothing new: written once
    monkeypatch.undo()
    assert report.evaluated == 150 and report.batches == 4
    pooled_keys = firing_keys(store)

    other = tmp_path / "other.db"
    single_store = Store.open(f"sqlite:///{other}")
    load(single_store, settings, cases, at("02/11/2026 09:00"))
    single = Engine(single_store, settings, load_rules(settings, env={}), batch_size=40)
    single.tick(at("16/11/2026 10:00"))
    assert pooled_keys == firing_keys(single_store) and len(pooled_keys) > 40


# ----- found in review ------------------------------------------------------------------------


def test_a_case_that_cannot_be_evaluated_does_not_stop_the_others(
    store: Store, db_url: str, province: Path
) -> None:
    e = engine(db_url, province)
    load(
        store,
        e.settings,
        [CASE | {"case_code": f"OK-{i}"} for i in range(3)],
        at("02/11/2026 09:00"),
    )
    with store.begin() as conn:  # a row no import would accept, written by another tool
        bad = {
            "case_code": "BAD",
            "procedure_code": "2.000488",
            "unit_code": "STP.HC",
            "received_at": datetime(1850, 1, 1, tzinfo=VN),
            "status": 4,
            "assignee": "chuyenvien",
            "created_at": at("02/11/2026 09:00"),
            "updated_at": at("02/11/2026 09:00"),
            "next_check_at": at("02/11/2026 09:00"),
        }
        conn.execute(schema.cases.insert(), [bad])
    report = e.tick(at("13/11/2026 09:30"))
    assert report.evaluated == 4
    assert len(report.fired) == 3  # due_soon for the three good cases
    from watchdog.store.findings import open_findings

    assert [f["kind"] for f in open_findings(store)] == ["evaluation_error"]
    assert e.tick(at("13/11/2026 09:31")).evaluated == 0  # not retried in a loop


def test_a_tick_drains_every_batch_whatever_the_server_time_zone(
    store: Store, db_url: str, province: Path
) -> None:
    url = db_url
    if url.startswith("postgresql"):
        url += "%20" + "-ctimezone%3DAsia/Ho_Chi_Minh"  # a server set to Vietnam's zone
    e = Engine(
        Store.open(url, migrate=False),
        load_settings(province, env={}),
        load_rules(load_settings(province, env={}), env={}),
        batch_size=2,
    )
    if url.startswith("postgresql"):  # the option reached the server: not a silent UTC run
        with e.store.read() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Ho_Chi_Minh"
    load(
        store,
        e.settings,
        [CASE | {"case_code": f"HS-{i}"} for i in range(5)],
        at("02/11/2026 09:00"),
    )
    report = e.tick(at("02/11/2026 09:05"))
    assert (report.evaluated, report.batches) == (5, 3)


def test_an_appointment_given_later_starts_a_new_due_version(
    store: Store, db_url: str, province: Path
) -> None:
    e = engine(db_url, province)
    load(store, e.settings, [CASE], at("02/11/2026 09:00"))  # computed due 16/11 09:00
    e.tick(at("13/11/2026 09:30"))
    # the source now gives its appointment, 20/11 17:00: due_soon applies again to it
    load(store, e.settings, [CASE | {"due_at": "20/11/2026 17:00"}], at("13/11/2026 10:00"))
    e.tick(at("19/11/2026 17:00"))
    assert firing_keys(store) == [("p/due_soon", "0", 0), ("p/due_soon", "1", 0)]
    from watchdog.store.findings import open_findings

    assert [f["kind"] for f in open_findings(store)] == ["due_mismatch"]  # +3.x days, not gia hạn


def test_two_appointment_changes_at_one_instant_are_both_kept(
    store: Store, db_url: str, province: Path
) -> None:
    e = engine(db_url, province)
    first = CASE | {"due_at": "16/11/2026 09:00", "updated_at": "13/11/2026"}
    load(store, e.settings, [first], at("02/11/2026 09:00"))
    load(store, e.settings, [first | {"due_at": "30/12/2026 17:00"}], at("13/11/2026 10:00"))
    load(store, e.settings, [first | {"due_at": "20/11/2026 17:00"}], at("13/11/2026 10:05"))
    # Both changes are kept as events. The law allows one extension: the first (to 30/12)
    # counts, the second (to 20/11) leaves the due and is a finding (SPEC 4).
    from watchdog.store.findings import open_findings

    e.tick(at("19/11/2026 17:00"))
    assert [k for k in firing_keys(store) if k[0] == "p/due_soon"] == []
    assert [f["kind"] for f in open_findings(store)] == ["second_extension"]
    e.tick(at("29/12/2026 17:00"))  # one working day before the one valid extension
    assert ("p/due_soon", "1", 0) in firing_keys(store)


def test_a_failing_evaluation_releases_the_batch(
    store: Store, db_url: str, province: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while evaluating (a bug, not bad data) must not leave the batch's connection,
    and on PostgreSQL its row locks, behind: the next tick must be able to claim the cases."""
    from watchdog.engine import worker

    e = engine(db_url, province)
    load(store, e.settings, [CASE], at("02/11/2026 09:00"))

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the evaluation")

    monkeypatch.setattr(worker, "evaluate_facts", broken)
    with pytest.raises(RuntimeError):
        e.tick(at("02/11/2026 09:05"))
    monkeypatch.undo()
    assert engine(db_url, province).tick(at("02/11/2026 09:05")).evaluated == 1
