"""Row versions: nothing computed from a stale read is written (issue 10, item 2 and 3).

Each test lands a change to a case while the engine evaluates it, the way an import or an HTTP
push does during a tick, on SQLite and on PostgreSQL:
- on SQLite the engine holds no lock while it evaluates, so the change commits between its
  read and its write: the version guard must write no firing, finding or plan from the stale
  read, leave the case due, and the next tick evaluates the new state;
- on PostgreSQL the batch's rows stay locked (FOR UPDATE) until written, so the change waits
  and commits just after the batch: what the batch wrote was true when it committed, and the
  change makes the case due again.
Either way no state is lost and the final firings are those of the true history.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from watchdog.config import load_settings
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import DryRun, upsert_cases
from watchdog.store import Store, schema
from watchdog.store.cases import case_versions, write_cases
from watchdog.store.findings import open_findings
from watchdog.store.firings import firing_keys

VN = timezone(timedelta(hours=7))

RULES = """\
policies:
  - name: p
    stages:
      - {id: due_soon, when: {remaining: "3 working_days"}, notify: [assignee]}
      - {id: overdue, when: {overdue: "0 working_days"}, notify: [assignee, unit_head],
         repeat: "1 working_day"}
"""

# 10 working days from Mon 02/11/2026 09:00: due Mon 16/11/2026 09:00.
CASE = {
    "case_code": "HS-1",
    "procedure_code": "2.000488",
    "unit_code": "STP.HC",
    "received_at": "02/11/2026 09:00",
    "status": 4,
    "assignee": "chuyenvien",
}


def at(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=VN)


@pytest.fixture
def settings(tmp_path: Path, small_config: Path):
    text = small_config.read_text(encoding="utf-8") + "rules: [rules.yaml]\n"
    small_config.write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return load_settings(small_config, env={})


def load(store: Store, settings, rows: list[dict], now: datetime, **kw):
    records = []
    for raw in rows:
        problems = RowProblems()
        records.append(normalize_case(raw, settings, problems))
        assert not problems, problems.problems
    return upsert_cases(store, records, now, **kw)


class RacingEngine(Engine):
    """An engine during whose evaluation another source writes: `between` starts in its own
    thread after the batch was read and evaluated, before its results are written. It gets up
    to 2 s to commit (SQLite: it does at once; PostgreSQL: it waits for the batch's locks)."""

    def __init__(self, *args, between: Callable[[], None], **kw):
        super().__init__(*args, **kw)
        self.between: Callable[[], None] | None = between
        self.thread: threading.Thread | None = None

    def _submit(self, batch, now):
        results = super()._submit(batch, now)
        if self.between is not None:
            self.thread = threading.Thread(target=self.between)
            self.between = None
            self.thread.start()
            self.thread.join(0.5)
        return results

    def tick(self, now, **kw):
        report = super().tick(now, **kw)
        if self.thread is not None:
            self.thread.join(10)
            assert not self.thread.is_alive(), "the concurrent write never committed"
        return report


def racing(store: Store, settings, between: Callable[[], None]) -> RacingEngine:
    return RacingEngine(store, settings, load_rules(settings, env={}), between=between)


def locks(store: Store) -> bool:
    """Whether the engine's batches lock their rows (PostgreSQL) rather than rely on the guard."""
    return store.dialect == "postgresql"


def next_check(store: Store) -> datetime | None:
    with store.engine.connect() as conn:
        return conn.execute(select(schema.cases.c.next_check_at)).scalar_one()


def test_a_case_finished_while_evaluated_gets_no_overdue_warning(store: Store, settings) -> None:
    """Read overdue at 16/11 10:00 (due 16/11 09:00); meanwhile an import says it was finished
    at 08:30, on time. The stale read would fire `overdue`; nothing may be written."""
    load(store, settings, [CASE], at("02/11/2026 09:00"))
    finished = CASE | {"status": 9, "finished_at": "16/11/2026 08:30"}
    e = racing(store, settings, lambda: load(store, settings, [finished], at("16/11/2026 10:00")))
    report = e.tick(at("16/11/2026 10:00"))
    if locks(store):  # the import waited for the batch: the warning was true when written
        assert report.stale == 0 and len(report.fired) == 1
    else:
        assert report.stale == 1 and report.fired == [] and firing_keys(store) == []
    assert next_check(store) == at("16/11/2026 10:00")  # due again: read again next tick
    again = Engine(store, settings, load_rules(settings, env={}))
    assert again.tick(at("16/11/2026 10:01")).evaluated == 1
    assert next_check(store) is None  # closed on time
    assert len(firing_keys(store)) == (1 if locks(store) else 0)


def test_a_due_extended_while_evaluated_gets_no_warning_for_the_old_due(
    store: Store, settings
) -> None:
    """Read at Wed 11/11 09:30, three working days before the due 16/11 09:00: due_soon.
    Meanwhile an import moves the appointment to 30/11 (recorded three working days ahead).
    No due_soon of the old due version; the next tick plans for the new due."""
    load(store, settings, [CASE | {"due_at": "16/11/2026 09:00"}], at("02/11/2026 09:00"))
    extended = CASE | {"due_at": "30/11/2026 09:00", "updated_at": "11/11/2026 09:00"}
    e = racing(store, settings, lambda: load(store, settings, [extended], at("11/11/2026 09:30")))
    report = e.tick(at("11/11/2026 09:30"))
    assert report.stale == (0 if locks(store) else 1)
    Engine(store, settings, load_rules(settings, env={})).tick(at("11/11/2026 09:31"))
    # no due_soon of the old due version unless it was committed before the extension
    assert [k[1:3] for k in firing_keys(store)] == ([("p/due_soon", "0")] if locks(store) else [])
    # three working days before 30/11 09:00 is Wed 25/11 09:00
    assert next_check(store) == at("25/11/2026 09:00")


def test_a_case_reopened_while_evaluated_keeps_its_plan(store: Store, settings) -> None:
    """Read as finished (closed: no plan); meanwhile the one-stop software re-opens it. The
    stale read would write next_check_at = NULL and the case would never warn again."""
    load(store, settings, [CASE], at("02/11/2026 09:00"))
    closed = CASE | {"status": 9, "finished_at": "10/11/2026 10:00"}
    load(store, settings, [closed], at("10/11/2026 10:00"))
    e = racing(store, settings, lambda: load(store, settings, [CASE], at("10/11/2026 10:05")))
    assert e.tick(at("10/11/2026 10:00")).stale == (0 if locks(store) else 1)
    assert next_check(store) == at("10/11/2026 10:05")
    Engine(store, settings, load_rules(settings, env={})).tick(at("16/11/2026 10:00"))
    assert [k[1] for k in firing_keys(store)] == ["p/overdue"]


def test_two_writes_in_one_import_run_with_the_same_clock(store: Store, settings) -> None:
    """One import run (one clock) writes the case twice: finished in one batch, open again in
    the next; the engine reads between them. Our updated_at is the same both times, so only
    the row version tells the two apart; before it the open case lost its plan for good."""
    now = at("10/11/2026 10:00")
    load(store, settings, [CASE], at("02/11/2026 09:00"))
    load(store, settings, [CASE | {"status": 9, "finished_at": "10/11/2026 09:00"}], now)
    before = case_versions(store, ["HS-1"])["HS-1"]
    e = racing(store, settings, lambda: load(store, settings, [CASE], now))
    assert e.tick(now).stale == (0 if locks(store) else 1)
    assert case_versions(store, ["HS-1"])["HS-1"] == before + 1
    assert next_check(store) == now
    Engine(store, settings, load_rules(settings, env={})).tick(at("16/11/2026 10:00"))
    assert [k[1] for k in firing_keys(store)] == ["p/overdue"]


def test_no_finding_from_a_stale_read(store: Store, settings) -> None:
    """Read without an assignee (a no_assignee finding); meanwhile the case is assigned."""
    load(store, settings, [CASE | {"assignee": None}], at("02/11/2026 09:00"))
    e = racing(store, settings, lambda: load(store, settings, [CASE], at("02/11/2026 09:05")))
    assert e.tick(at("02/11/2026 09:00")).stale == (0 if locks(store) else 1)
    # PostgreSQL: the assignment waited for the batch, whose finding was true when written;
    # SQLite: the stale read wrote nothing. Either way the next evaluation must clear it.
    kinds = [f["kind"] for f in open_findings(store)]
    assert kinds == (["no_assignee"] if locks(store) else [])
    Engine(store, settings, load_rules(settings, env={})).tick(at("02/11/2026 09:10"))
    assert open_findings(store) == []  # the next evaluation sees the assignee


def test_every_change_bumps_the_version_and_nothing_else_does(store: Store, settings) -> None:
    load(store, settings, [CASE], at("02/11/2026 09:00"))
    assert case_versions(store, ["HS-1"]) == {"HS-1": 1}
    load(store, settings, [CASE], at("02/11/2026 09:10"))  # unchanged: not written
    Engine(store, settings, load_rules(settings, env={})).tick(at("02/11/2026 09:20"))
    assert case_versions(store, ["HS-1"]) == {"HS-1": 1}  # the engine's plan is no change
    load(store, settings, [CASE | {"applicant_name": "Lê Thị Mới"}], at("02/11/2026 09:30"))
    assert case_versions(store, ["HS-1"]) == {"HS-1": 2}


# ----- imports under concurrency (item 3) ---------------------------------------------------


def test_two_sources_never_derive_events_from_the_same_before(store: Store, settings) -> None:
    """Two sources report the same supplement request at once (different source times). The
    second must read what the first wrote: one `supplement_requested`, not two waits."""
    load(store, settings, [CASE], at("02/11/2026 09:00"))
    from watchdog.sources.ingest import _changes, _stored_form  # the ingest's own decision

    first_read = threading.Event()
    results, errors = {}, []

    def source(name: str, updated: str, wait: bool) -> None:
        raw = CASE | {"status": 5, "updated_at": updated}
        problems = RowProblems()
        row = _stored_form(normalize_case(raw, settings, problems))
        decide_changes = _changes(at("05/11/2026 10:00"))

        def decide(before, new):
            first_read.set()
            if wait:  # hold the transaction open: the other source tries to read meanwhile
                threading.Event().wait(0.5)
            return decide_changes(before, new)

        try:
            other = Store.open(str(store.engine.url.render_as_string(False)), migrate=False)
            results[name] = write_cases(other, [row], decide, at("05/11/2026 10:00"), source=name)
            other.close()
        except Exception as e:  # surfaced below
            errors.append(e)

    a = threading.Thread(target=source, args=("a", "05/11/2026 09:00", True))
    a.start()
    first_read.wait(5)
    b = threading.Thread(target=source, args=("b", "05/11/2026 09:30", False))
    b.start()
    a.join()
    b.join()
    assert errors == []
    e = schema.case_events.c
    with store.engine.connect() as conn:
        kinds = conn.execute(select(e.kind)).scalars().all()
    assert kinds == ["supplement_requested"]
    assert results["a"].updated == results["b"].updated == 1  # b saw a's row: only a time


def test_a_dry_run_counts_exactly_what_the_import_writes(store: Store, settings) -> None:
    """A code repeated in a later batch is one new case and one update, dry or real."""
    first = [CASE | {"case_code": f"HS-{i}"} for i in range(3)]
    second = [CASE | {"case_code": "HS-1", "status": 5}, CASE | {"case_code": "HS-9"}]
    now = at("02/11/2026 09:00")
    dry = DryRun()
    d1 = load(store, settings, first, now, dry_run=dry)
    d2 = load(store, settings, second, now, dry_run=dry)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.cases)).scalar_one() == 0
    r1 = load(store, settings, first, now)
    r2 = load(store, settings, second, now)
    counts = [(x.inserted, x.updated, x.unchanged) for x in (d1, d2)]
    assert counts == [(x.inserted, x.updated, x.unchanged) for x in (r1, r2)]
    assert counts == [(3, 0, 0), (1, 1, 0)]
