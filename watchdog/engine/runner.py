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
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from watchdog.config import Settings
from watchdog.domain import CaseRecord, Fired
from watchdog.engine.evaluate import Evaluation, Finding, Firing, evaluate
from watchdog.engine.rules import RuleSet
from watchdog.store import Store
from watchdog.store.cases import Facts
from watchdog.store.findings import NewFinding
from watchdog.store.firings import FiringRow
from watchdog.store.plans import Claim, Plan, claim_due, claim_open, get_state, set_state

log = logging.getLogger(__name__)

RULES_HASH_KEY = "rules_hash"
# Runs inside a batch's write transaction with the firings just written: (id, firing) pairs.
OnFirings = Callable[[Any, list[tuple[int, Firing]]], None]
RETRY_LATER = timedelta(minutes=1)


@dataclass
class TickReport:
    evaluated: int = 0
    fired: list[int] = field(default_factory=list)  # ids of the firings this tick wrote
    batches: int = 0
    stale: int = 0  # cases changed between read and write: not written, read again next tick


@dataclass
class _Batch:
    claim: Claim
    results: Callable[[], list[Evaluation]] = field(default=lambda: [])

    @property
    def facts(self) -> list[Facts]:
        return self.claim.facts


def evaluate_facts(
    settings: Settings,
    rules: RuleSet,
    facts: Sequence[Facts],
    fired: dict[int, dict[tuple, Fired]],
    now: datetime,
) -> list[Evaluation]:
    out = []
    for record, events in facts:
        stages = rules.stages_for(
            settings, record.procedure_code, record.unit_code, record.submission_channel
        )
        try:
            known = fired.get(record.id, {})
            out.append(evaluate(record, events, stages, settings, known, now))
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
        return get_state(self.store, RULES_HASH_KEY) != self.rules.hash

    def replan_all(
        self,
        now: datetime,
        progress: Callable[[int], None] | None = None,
        on_firings: OnFirings | None = None,
    ) -> TickReport:
        """Evaluate every open case under the current rules, in batches walked by id (each its
        own short transaction, so ticks interleave), then record the rules hash. A crash half
        way leaves the old hash: the plan runs again, and firings already written stay once.
        `progress` is told the number of cases evaluated after each batch."""
        report = self._run(
            now,
            lambda after: claim_open(self.store, after, self.batch_size),
            progress=progress,
            on_firings=on_firings,
        )
        set_state(self.store, RULES_HASH_KEY, self.rules.hash, now)
        log.info("rules %s: %d open cases re-planned", self.rules.hash, report.evaluated)
        return report

    def ensure_planned(
        self,
        now: datetime,
        progress: Callable[[int], None] | None = None,
        on_firings: OnFirings | None = None,
    ) -> TickReport:
        """Re-plan everything when the rules (or procedures, calendars) changed since last time;
        returns what the planning evaluated and fired (nothing when the rules are the same)."""
        if not self.rules_changed():
            return TickReport()
        return self.replan_all(now, progress, on_firings)

    # ----- ticks -------------------------------------------------------------------------

    def tick(
        self,
        now: datetime,
        *,
        max_batches: int | None = None,
        on_firings: OnFirings | None = None,
    ) -> TickReport:
        """Evaluate every case whose next_check_at <= now; returns what was written.

        `on_firings` runs inside each batch's transaction with the firings just written, so
        whatever it adds (the outbox) commits or rolls back with them. With worker processes
        the next batches are evaluated while the main process writes the previous one.
        """
        return self._run(
            now,
            lambda after: claim_due(self.store, now, after, self.batch_size),
            max_batches=max_batches,
            on_firings=on_firings,
        )

    def _run(
        self,
        now: datetime,
        claim_next: Callable[[Any], Claim | None],
        *,
        max_batches: int | None = None,
        on_firings: OnFirings | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> TickReport:
        report = TickReport()
        inflight: deque[_Batch] = deque()
        cursor: Any = None
        try:
            while max_batches is None or report.batches + len(inflight) < max_batches:
                claim = claim_next(cursor)
                if claim is None:
                    break
                cursor = claim.cursor
                batch = _Batch(claim)
                inflight.append(batch)  # from here on `finally` releases it, whatever happens
                batch.results = self._submit(batch, now)
                if len(inflight) > self.workers:
                    self._finish(inflight.popleft(), now, report, on_firings)
                    if progress:
                        progress(report.evaluated)
                if len(batch.facts) < self.batch_size:
                    break
            while inflight:
                self._finish(inflight.popleft(), now, report, on_firings)
                if progress:
                    progress(report.evaluated)
        finally:
            for batch in inflight:
                batch.claim.release()
        return report

    def _submit(self, batch: _Batch, now: datetime) -> Callable[[], list[Evaluation]]:
        facts, fired = batch.facts, batch.claim.fired
        if self._pool is None:
            results = evaluate_facts(self.settings, self.rules, facts, fired, now)
            return lambda: results
        n = max(1, -(-len(facts) // self.workers))
        futures = [
            self._pool.submit(_worker_evaluate, facts[i : i + n], fired, now)
            for i in range(0, len(facts), n)
        ]
        return lambda: [
            Evaluation(firings, next_at, findings)
            for f in futures
            for firings, next_at, findings in f.result()
        ]

    def _finish(self, batch: _Batch, now: datetime, report: TickReport, on_firings) -> None:
        try:
            evaluations = batch.results()
        except BaseException:
            batch.claim.release()
            raise
        plans: list[Plan] = []
        firings: list[FiringRow] = []
        findings: list[NewFinding] = []
        by_key: dict[tuple, Firing] = {}
        for (record, _), ev in zip(batch.facts, evaluations, strict=True):
            plans.append((record.id, record.version, self._next_check(record, ev, now)))
            for f in ev.firings:
                row = self._firing_row(f)
                firings.append(row)
                by_key[row.key] = f
            findings.extend(NewFinding(x.kind, x.subject, x.detail, record.id) for x in ev.findings)
        callback = None
        if on_firings is not None:

            def callback(conn, written) -> None:
                on_firings(conn, [(fid, by_key[row.key]) for fid, row in written])

        written, stale = batch.claim.commit(plans, firings, findings, now, callback)
        if stale:
            log.info("%d case(s) changed while evaluated: read again next tick", len(stale))
        report.evaluated += len(batch.facts)
        report.fired.extend(fid for fid, _ in written)
        report.batches += 1
        report.stale += len(stale)

    @staticmethod
    def _next_check(record: CaseRecord, ev: Evaluation, now: datetime) -> datetime | None:
        nxt = ev.next_check_at
        if nxt is not None and nxt <= now:  # never spin on a case: look again shortly
            log.warning("case %s: next check %s is not after %s", record.case_code, nxt, now)
            nxt = now + RETRY_LATER
        return nxt

    def _firing_row(self, f: Firing) -> FiringRow:
        return FiringRow(
            case_id=f.case_id,
            stage=f.key.stage,
            step=f.key.step,
            version=f.key.version,
            repeat_no=f.key.repeat_no,
            fire_at=f.fire_at,
            recipients=[[d.recipient, d.channel, d.address] for d in f.deliveries],
            urgent=f.urgent,
            template=f.template,
            attach=f.attach,
            due_at=f.due,
            rules_hash=self.rules.hash,
        )
