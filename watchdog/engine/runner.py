"""The engine's I/O: ticks over the cases whose `next_check_at` has come, and re-planning.

A tick reads only due cases, through the `next_check_at` index, in batches; each batch is one
transaction that writes the new firings (idempotent insert on their unique key), the findings
and each case's next instant. On PostgreSQL the batch is claimed with FOR UPDATE SKIP LOCKED,
so several replicas share the work; on any database the unique key means a firing is written
once whatever happens (crash, restart, reload, re-import, second replica).
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, tuple_, update

from watchdog.config import Settings
from watchdog.domain import OPEN_STATUSES
from watchdog.engine.deadline import CaseRecord
from watchdog.engine.evaluate import Evaluation, Finding, Fired, Firing, evaluate
from watchdog.engine.rules import RuleSet
from watchdog.store import Store, schema
from watchdog.store.cases import (
    CODE,
    ID,
    IN_CHUNK,
    RawFacts,
    id_in,
    raw_with_events,
    select_records,
)
from watchdog.store.schema import UTCDateTime

log = logging.getLogger(__name__)

_c = schema.cases.c
_f = schema.firings.c
RULES_HASH_KEY = "rules_hash"
RETRY_LATER = timedelta(minutes=1)
_OPEN = [int(s) for s in OPEN_STATUSES]


@dataclass
class TickReport:
    evaluated: int = 0
    fired: list[int] = field(default_factory=list)  # ids of the firings this tick wrote
    batches: int = 0


def fired_of(
    conn: Connection, case_ids: Sequence[int]
) -> dict[int, dict[tuple[str, str, str], Fired]]:
    """Per case: the last repeat written and whether it was acknowledged, per stage episode."""
    out: dict[int, dict[tuple[str, str, str], Fired]] = {}
    for i in range(0, len(case_ids), IN_CHUNK):
        stmt = (
            select(
                _f.case_id,
                _f.stage,
                _f.step,
                _f.version,
                func.max(_f.repeat_no),
                func.max(_f.acknowledged_at),
                func.max(_f.fire_at),
            )
            .where(id_in(conn, _f.case_id, case_ids[i : i + IN_CHUNK]))
            .group_by(_f.case_id, _f.stage, _f.step, _f.version)
        )
        for case_id, stage, step, version, last, acked, fire_at in conn.execute(stmt):
            if isinstance(fire_at, str):  # SQLite hands aggregates back untyped
                fire_at = datetime.fromisoformat(fire_at).replace(tzinfo=UTC)
            elif fire_at is not None and fire_at.tzinfo is None:
                fire_at = fire_at.replace(tzinfo=UTC)
            fired = Fired(last, acked is not None, fire_at)
            out.setdefault(case_id, {})[(stage, step, version)] = fired
    return out


@dataclass
class _Batch:
    facts: list[RawFacts]
    fired: dict[int, dict[tuple[str, str, str], Fired]]
    cursor: Any
    read_versions: dict[int, datetime]  # case id -> updated_at when read
    conn: Connection | None = None
    txn: Any = None
    results: Callable[[], list[Evaluation]] = field(default=lambda: [])

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()  # rolls back whatever was not committed
            self.conn = None


def evaluate_facts(
    settings: Settings,
    rules: RuleSet,
    facts: Sequence[RawFacts],
    fired: dict[int, dict[tuple[str, str, str], Fired]],
    now: datetime,
) -> list[Evaluation]:
    out = []
    for row, events in facts:
        record = CaseRecord.from_row(row)
        stages = rules.stages_for(
            settings, record.procedure_code, record.unit_code, record.submission_channel
        )
        try:
            out.append(evaluate(record, events, stages, settings, fired.get(record.id, {}), now))
        except Exception as e:  # one broken case must not stop the others
            log.exception("case %s cannot be evaluated", record.case_code)
            problem = Finding("evaluation_error", record.case_code, f"{type(e).__name__}: {e}")
            out.append(Evaluation(findings=[problem]))  # not planned again until it changes
    return out


_WORKER_STATE: tuple[Settings, RuleSet] | None = None


def _worker_init(payload: bytes) -> None:
    global _WORKER_STATE
    _WORKER_STATE = pickle.loads(payload)


def _worker_evaluate(facts, fired, now) -> list[tuple]:
    """Evaluate in a worker; the answer travels as plain tuples (pickled far faster)."""
    assert _WORKER_STATE is not None, "worker not initialised"
    settings, rules = _WORKER_STATE
    return [
        (ev.firings, ev.next_check_at, ev.findings)
        for ev in evaluate_facts(settings, rules, facts, fired, now)
    ]


class Engine:
    """Ticks and planning over one store. `workers` > 0 evaluates batches in that many worker
    processes (the evaluation is pure); 0 evaluates in this process."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        rules: RuleSet,
        batch_size: int = 2000,
        workers: int = 0,
    ):
        self.store = store
        self.settings = settings
        self.rules = rules
        self.batch_size = batch_size
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            payload = pickle.dumps((settings, rules))
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init,
                initargs=(payload,),
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- planning ----------------------------------------------------------------------

    def rules_changed(self) -> bool:
        with self.store.engine.connect() as conn:
            stored = conn.execute(
                select(schema.engine_state.c.value).where(
                    schema.engine_state.c.key == RULES_HASH_KEY
                )
            ).scalar()
        return stored != self.rules.hash

    def replan_all(self, now: datetime) -> int:
        """Evaluate every open case under the current rules, in batches walked by id (each its
        own short transaction, so ticks interleave), then record the rules hash. A crash half
        way leaves the old hash: the plan runs again, and firings already written stay once."""
        report = self._run(now, self._open_batch)
        with self.store.begin() as conn:
            self.store.upsert(
                conn,
                schema.engine_state,
                [{"key": RULES_HASH_KEY, "value": self.rules.hash, "updated_at": now}],
                ["key"],
            )
        log.info("rules %s: %d open cases re-planned", self.rules.hash, report.evaluated)
        return report.evaluated

    def ensure_planned(self, now: datetime) -> int:
        """Re-plan everything when the rules (or procedures, calendars) changed since last time."""
        return self.replan_all(now) if self.rules_changed() else 0

    # ----- ticks -------------------------------------------------------------------------

    def tick(
        self,
        now: datetime,
        *,
        max_batches: int | None = None,
        on_firings: Callable[[Connection, list[tuple[int, Firing]]], None] | None = None,
    ) -> TickReport:
        """Evaluate every case whose next_check_at <= now; returns what was written.

        `on_firings` runs inside each batch's transaction with the firings just written, so
        whatever it adds (the outbox) commits or rolls back with them. With worker processes
        the next batches are evaluated while the main process writes the previous one.
        """
        return self._run(now, self._due_batch, max_batches=max_batches, on_firings=on_firings)

    def _run(
        self,
        now: datetime,
        query: Callable[[datetime, Any], Any],
        *,
        max_batches: int | None = None,
        on_firings: Callable[[Connection, list[tuple[int, Firing]]], None] | None = None,
    ) -> TickReport:
        report = TickReport()
        inflight: deque[_Batch] = deque()
        cursor: Any = None
        try:
            while max_batches is None or report.batches + len(inflight) < max_batches:
                batch = self._claim(query(now, cursor))
                if batch is None:
                    break
                cursor = batch.cursor
                inflight.append(batch)  # from here on `finally` closes it, whatever happens
                batch.results = self._submit(batch, now)
                if len(inflight) > self.workers:
                    self._finish(inflight.popleft(), now, report, on_firings)
                if len(batch.facts) < self.batch_size:
                    break
            while inflight:
                self._finish(inflight.popleft(), now, report, on_firings)
        finally:
            for batch in inflight:
                batch.close()
        return report

    def _due_batch(self, now: datetime, cursor: tuple[datetime, int] | None):
        """Cases whose next_check_at has come, in that order (the index), after `cursor`."""
        stmt = select_records().where(_c.next_check_at <= now)
        if cursor is not None:
            # typed like the column: naive UTC, whatever the server's time zone
            after = tuple_(bindparam(None, cursor[0], UTCDateTime()), bindparam(None, cursor[1]))
            stmt = stmt.where(tuple_(_c.next_check_at, _c.id) > after)
        stmt = stmt.order_by(_c.next_check_at, _c.id).limit(self.batch_size)
        return stmt, lambda row: (row.next_check_at, row.id)

    def _open_batch(self, now: datetime, cursor: int | None):
        """Every open case, by id."""
        stmt = select_records().where(_c.status.in_(_OPEN), _c.id > (cursor or 0))
        return stmt.order_by(_c.id).limit(self.batch_size), lambda row: row.id

    def _claim(self, query) -> _Batch | None:
        """The next batch of a query, with the cases' events and earlier firings.

        On PostgreSQL the rows stay locked (FOR UPDATE SKIP LOCKED) in the batch's own
        transaction until it is written; SQLite has one writer anyway, so it reads and lets go.
        """
        stmt, cursor_of = query
        locking = self.store.dialect == "postgresql"
        if locking:
            stmt = stmt.with_for_update(skip_locked=True, of=schema.cases)
        conn = self.store.engine.connect()
        try:
            txn = conn.begin()
            rows = conn.execute(stmt).all()
            if not rows:
                txn.rollback()
                conn.close()
                return None
            facts = raw_with_events(conn, rows)
            fired = fired_of(conn, [row[ID] for row, _ in facts])
            batch = _Batch(facts, fired, cursor_of(rows[-1]), {r.id: r.updated_at for r in rows})
            if locking:
                batch.conn, batch.txn = conn, txn
            else:
                txn.rollback()
                conn.close()
            return batch
        except BaseException:
            conn.close()
            raise

    def _submit(self, batch: _Batch, now: datetime) -> Callable[[], list[Evaluation]]:
        if self._pool is None:
            results = evaluate_facts(self.settings, self.rules, batch.facts, batch.fired, now)
            return lambda: results
        n = max(1, -(-len(batch.facts) // self.workers))
        futures = [
            self._pool.submit(_worker_evaluate, batch.facts[i : i + n], batch.fired, now)
            for i in range(0, len(batch.facts), n)
        ]
        return lambda: [
            Evaluation(firings, next_at, findings)
            for f in futures
            for firings, next_at, findings in f.result()
        ]

    def _finish(self, batch: _Batch, now: datetime, report: TickReport, on_firings) -> None:
        evaluations = batch.results()
        if batch.conn is None:
            batch.conn = self.store.engine.connect()
            batch.txn = batch.conn.begin()
        try:
            written = self._apply(batch.conn, batch.facts, evaluations, now, batch.read_versions)
            if on_firings and written:
                on_firings(batch.conn, written)
            batch.txn.commit()
        finally:
            batch.close()
        report.evaluated += len(batch.facts)
        report.fired.extend(fid for fid, _ in written)
        report.batches += 1

    def _apply(
        self,
        conn: Connection,
        facts: Sequence[RawFacts],
        evaluations: Sequence[Evaluation],
        now: datetime,
        read_versions: dict[int, datetime],
    ) -> list[tuple[int, Firing]]:
        firings = [f for ev in evaluations for f in ev.firings]
        written = self._write_firings(conn, firings, now)
        self._write_findings(conn, facts, evaluations, now)
        updates = []
        for (row, _), ev in zip(facts, evaluations, strict=True):
            nxt = ev.next_check_at
            if nxt is not None and nxt <= now:  # never spin on a case: look again shortly
                log.warning("case %s: next check %s is not after %s", row[CODE], nxt, now)
                nxt = now + RETRY_LATER
            updates.append((row[ID], nxt, read_versions[row[ID]]))
        self.store.set_next_checks(conn, updates)
        return written

    def _write_firings(
        self, conn: Connection, firings: Iterable[Firing], now: datetime
    ) -> list[tuple[int, Firing]]:
        rows = [
            {
                "case_id": f.case_id,
                "stage": f.key.stage,
                "step": f.key.step,
                "version": f.key.version,
                "repeat_no": f.key.repeat_no,
                "fire_at": f.fire_at,
                "created_at": now,
                "recipients": [[d.recipient, d.channel, d.address] for d in f.deliveries],
                "urgent": f.urgent,
                "template": f.template,
                "attach": f.attach,
                "due_at": f.due,
                "rules_hash": self.rules.hash,
            }
            for f in firings
        ]
        if not rows:
            return []
        by_key = {
            (f.case_id, f.key.stage, f.key.step, f.key.version, f.key.repeat_no): f for f in firings
        }
        insert = self.store.insert_ignoring(
            conn, schema.firings, ["case_id", "stage", "step", "version", "repeat_no"]
        )
        returned = conn.execute(
            insert.returning(_f.id, _f.case_id, _f.stage, _f.step, _f.version, _f.repeat_no), rows
        ).all()
        return [
            (r.id, by_key[(r.case_id, r.stage, r.step, r.version, r.repeat_no)]) for r in returned
        ]

    def _write_findings(
        self,
        conn: Connection,
        facts: Sequence[RawFacts],
        evaluations: Sequence[Evaluation],
        now: datetime,
    ) -> None:
        f = schema.findings.c
        ids = [row[ID] for row, _ in facts]
        for i in range(0, len(ids), IN_CHUNK):
            conn.execute(
                update(schema.findings)
                .where(id_in(conn, f.case_id, ids[i : i + IN_CHUNK]), f.resolved_at.is_(None))
                .values(resolved_at=now)
            )
        rows = [
            {
                "case_id": row[ID],
                "kind": x.kind,
                "subject": x.subject,
                "detail": x.detail,
                "found_at": now,
                "resolved_at": None,
            }
            for (row, _), ev in zip(facts, evaluations, strict=True)
            for x in ev.findings
        ]
        for i in range(0, len(rows), 1000):
            self.store.upsert(
                conn,
                schema.findings,
                rows[i : i + 1000],
                ["kind", "subject"],
                ["detail", "resolved_at", "case_id"],
            )
