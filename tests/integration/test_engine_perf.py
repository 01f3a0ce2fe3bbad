"""The engine's fast path between the store and the workers (issue 10): claimed batches travel
as driver rows and come back as JSON writes. What goes through it must read back exactly as
the typed path reads and writes it, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from watchdog.config import load_settings
from watchdog.domain import RECORD_FIELDS
from watchdog.engine import worker
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.store import Store, plans, schema
from watchdog.store.cases import open_cases

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 11, 16, 3, 0, tzinfo=UTC)

RULES = """\
policies:
  - name: p
    stages:
      - {id: due_soon, when: {remaining: "3 working_days"}, notify: [assignee]}
      - {id: overdue, when: {overdue: "0 working_days"}, notify: [assignee, unit_head],
         urgent: true}
"""


def case_row(code: str, **over) -> dict:
    row = {
        "case_code": code,
        "procedure_code": "2.000488",
        "unit_code": "STP.HC",
        "received_at": datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=VN),
        "status": 4,
        "assignee": "chuyenvien",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return row | over


@pytest.fixture
def settings(tmp_path: Path, small_config: Path):
    text = small_config.read_text(encoding="utf-8") + "rules: [rules.yaml]\n"
    small_config.write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return load_settings(small_config, env={})


def test_instant_text_is_the_stores_form() -> None:
    """The worker writes instants in the text the store's commit expects (two copies: the
    store imports nothing of the engine)."""
    for t in (
        datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=VN),
        datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    ):
        text = worker.instant_text(t)
        assert text == plans.instant_text(t)
        assert text == t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_claimed_rows_become_the_records_the_typed_path_reads(store: Store) -> None:
    """Every field where it belongs, instants aware in UTC with their microseconds."""
    with store.begin() as conn:
        conn.execute(
            schema.cases.insert(),
            case_row(
                "A",
                due_at=datetime(2026, 11, 16, 9, tzinfo=VN),
                current_step="B2",
                step_started_at=datetime(2026, 11, 3, 8, 0, 0, 5, tzinfo=VN),
                step_handler="truongphong",
                applicant_name="Nguyễn Văn A",
                submission_channel="online",
                source_updated_at=datetime(2026, 11, 3, 8, 30, tzinfo=VN),
                version=7,
            ),
        )
        conn.execute(schema.cases.insert(), case_row("B", status=5))
    claim = plans.claim_open(store, None, 10)
    assert claim is not None
    claim.release()
    got = worker.records(claim.rows, claim.instants, claim.text_instants)
    expected = [record for record, _ in open_cases(store)]
    assert got == expected
    for g, e in zip(got, expected, strict=True):
        for name in RECORD_FIELDS:
            value = getattr(g, name)
            assert value == getattr(e, name) and type(value) is type(getattr(e, name)), name
            if isinstance(value, datetime):
                assert value.tzinfo is UTC


def test_firings_written_from_json_read_back_field_by_field(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row("A"), case_row("B")])
        ids = dict(conn.execute(select(schema.cases.c.case_code, schema.cases.c.id)).all())
    fire_at = datetime(2026, 11, 16, 9, 0, 0, 250, tzinfo=VN)
    due = datetime(2026, 11, 16, 9, tzinfo=VN)
    rows = [
        [ids["A"], "p/overdue", "", "1", 0, worker.instant_text(fire_at),
         [["chuyenvien", "email", "cv@example.vn"], ["x@y.vn", "file", None]],
         True, "overdue", None, worker.instant_text(due)],
        [ids["B"], "p/due_soon", "B2", "1@1762", 3, worker.instant_text(fire_at), [],
         False, "due_soon", "pdf", None],
    ]  # fmt: skip
    with store.begin() as conn:
        written = plans.insert_firings_json(conn, json.dumps(rows), set(), NOW, "abc123", keys=True)
        again = plans.insert_firings_json(conn, json.dumps(rows), set(), NOW, "abc123")
    assert sorted(key for _, key in written) == [
        (ids["A"], "p/overdue", "", "1", 0),
        (ids["B"], "p/due_soon", "B2", "1@1762", 3),
    ]
    assert again == []  # the unique key: written once
    f = schema.firings.c
    with store.engine.connect() as conn:
        stored = {r.case_id: r for r in conn.execute(select(schema.firings))}
        assert conn.execute(select(f.id).where(f.fire_at <= fire_at)).scalars().all()
    a, b = stored[ids["A"]], stored[ids["B"]]
    assert (a.fire_at, a.due_at, a.created_at) == (fire_at, due, NOW)
    assert a.recipients == [["chuyenvien", "email", "cv@example.vn"], ["x@y.vn", "file", None]]
    assert (a.urgent, a.attach, a.template, a.rules_hash) == (True, None, "overdue", "abc123")
    assert (b.urgent, b.attach, b.due_at, b.recipients) == (False, "pdf", None, [])
    assert (b.step, b.version, b.repeat_no, b.acknowledged_at) == ("B2", "1@1762", 3, None)


def test_firings_of_stale_cases_are_left_out(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row("A"), case_row("B")])
        ids = dict(conn.execute(select(schema.cases.c.case_code, schema.cases.c.id)).all())
    at = worker.instant_text(NOW)
    rows = [[ids[c], "p/overdue", "", "1", 0, at, [], False, "t", None, None] for c in "AB"]
    with store.begin() as conn:
        written = plans.insert_firings_json(conn, json.dumps(rows), {ids["B"]}, NOW, "h")
    assert len(written) == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(schema.firings.c.case_id)).scalars().all() == [ids["A"]]


def test_on_firings_gets_each_written_firing_with_its_id_from_worker_processes(
    store: Store, db_url: str, settings
) -> None:
    """With workers the firings come back only for the hook, matched to their ids by key."""
    with store.begin() as conn:
        conn.execute(schema.cases.insert(), [case_row(f"HS-{i}") for i in range(30)])
    seen: list[tuple[int, str, str]] = []

    def hook(conn, written) -> None:
        seen.extend((fid, f.case_code, f.key.stage) for fid, f in written)

    with Engine(
        Store.open(db_url, migrate=False),
        settings,
        load_rules(settings, env={}),
        batch_size=8,
        workers=2,
    ) as pooled:
        report = pooled.replan_all(NOW, on_firings=hook)
    assert report.evaluated == 30 and len(report.fired) == 30
    c, f = schema.cases.c, schema.firings.c
    with store.engine.connect() as conn:
        stored = conn.execute(
            select(f.id, c.case_code, f.stage).join(schema.cases, c.id == f.case_id)
        ).all()
    assert sorted(seen) == sorted(tuple(r) for r in stored)
    assert sorted(report.fired) == sorted(fid for fid, _, _ in seen)
    assert {stage for _, _, stage in seen} == {"p/overdue"}


def test_the_garbage_collector_runs_again_after_an_in_process_batch(
    store: Store, db_url: str, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluation pauses the collector for its batch, and gives it back even when it fails."""
    import gc

    with store.begin() as conn:
        conn.execute(
            schema.cases.insert(), [case_row(f"HS-{i}", next_check_at=NOW) for i in range(5)]
        )
    engine = Engine(Store.open(db_url, migrate=False), settings, load_rules(settings, env={}))
    assert engine.tick(NOW).evaluated == 5
    assert gc.isenabled()

    def broken(*args, **kwargs):
        raise RuntimeError("bug in the evaluation")

    with store.begin() as conn:
        conn.execute(schema.cases.update().values(next_check_at=NOW))
    monkeypatch.setattr(worker, "evaluate_facts", broken)
    with pytest.raises(RuntimeError):
        engine.tick(NOW)
    assert gc.isenabled()
