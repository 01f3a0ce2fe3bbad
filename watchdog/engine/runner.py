"""The engine's I/O: ticks over the cases whose `next_check_at` has come, and re-planning.

A tick reads only due cases, through the `next_check_at` index, in batches; each batch is one
transaction that writes the new firings (idempotent insert on their unique key), the findings
and each case's next instant. On PostgreSQL the batch is claimed with FOR UPDATE SKIP LOCKED,
so several replicas share the work; on any database the unique key means a firing is written
once whatever happens (crash, restart, reload, re-import, second replica).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import pickle
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watchdog.config import Settings
from watchdog.domain import RECORD_FIELDS
from watchdog.engine import worker
from watchdog.engine.evaluate import Firing
from watchdog.engine.rules import RuleSet
from watchdog.store import Store
from watchdog.store.findings import NewFinding
from watchdog.store.plans import (
    Claim,
    bulk_standings,
    claim_due,
    claim_open,
    get_state,
    set_state,
)

log = logging.getLogger(__name__)

RULES_HASH_KEY = "rules_hash"
# Runs inside a batch's write transaction with the firings just written: (id, firing) pairs.
OnFirings = Callable[[Any, list[tuple[int, Firing]]], None]
_ID_AT = RECORD_FIELDS.index("id")


@dataclass
class TickReport:
    evaluated: int = 0
    fired: list[int] = field(default_factory=list)  # ids of the firings this tick wrote
    batches: int = 0
    stale: int = 0  # cases changed between read and write: not written, read again next tick


@dataclass
class _Batch:
    claim: Claim
    keep: bool = False  # the firings themselves come back too (an on_firings hook wants them)
    results: Callable[[], list[worker.Done]] = field(default=lambda: [])


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
        self._bulk = False  # a bulk plan (bulk_standings) writes every standing as it comes
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            payload = pickle.dumps((settings, rules))
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=worker.init,
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
        with bulk_standings(self.store) as bulk:
            self._bulk = bulk
            try:
                report = self._run(
                    now,
                    lambda after: claim_open(self.store, after, self.batch_size),
                    progress=progress,
                    on_firings=on_firings,
                )
            finally:
                self._bulk = False
        set_state(self.store, RULES_HASH_KEY, self.rules.hash, now)
        log.info(
            "rules %s: %d cases re-planned (open ones, closed ones not planned yet)",
            self.rules.hash,
            report.evaluated,
        )
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
                batch = _Batch(claim, keep=on_firings is not None)
                inflight.append(batch)  # from here on `finally` releases it, whatever happens
                batch.results = self._submit(batch, now)
                if len(inflight) > self.workers:
                    self._finish(inflight.popleft(), now, report, on_firings)
                    if progress:
                        progress(report.evaluated)
                if len(claim) < self.batch_size:
                    break
            while inflight:
                self._finish(inflight.popleft(), now, report, on_firings)
                if progress:
                    progress(report.evaluated)
        finally:
            for batch in inflight:
                batch.claim.release()
        return report

    def _submit(self, batch: _Batch, now: datetime) -> Callable[[], list[worker.Done]]:
        claim, keep = batch.claim, batch.keep
        rows, events, fired = claim.rows, claim.events, claim.fired
        text = claim.text_instants
        if self._pool is None:
            work = (rows, events, fired, claim.instants, text)
            # What an evaluation allocates is freed by reference counting; the collector's
            # passes over this process's long-lived objects (settings, SQLAlchemy) meanwhile
            # cost 10% of an in-process plan. Paused for the batch, it runs again after it.
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                done = worker.evaluate_work(self.settings, self.rules, work, now, keep)
            finally:
                if was_enabled:
                    gc.enable()
            return lambda: [done]
        n = max(1, -(-len(rows) // self.workers))
        futures = []
        for i in range(0, len(rows), n):
            part = rows[i : i + n]
            ids = [r[_ID_AT] for r in part]
            work = (
                part,
                {c: events[c] for c in ids if c in events},
                {c: fired[c] for c in ids if c in fired},
                claim.instants,
                text,
            )
            futures.append(self._pool.submit(worker.run, work, now, keep))
        return lambda: [f.result() for f in futures]

    def _finish(self, batch: _Batch, now: datetime, report: TickReport, on_firings) -> None:
        try:
            parts = batch.results()
        except BaseException:
            batch.claim.release()
            raise
        plans = _join([p for p, _, _, _, _ in parts])
        firings = _join([f for _, f, _, _, _ in parts])
        findings = [NewFinding(*x) for _, _, found, _, _ in parts for x in found]
        for _, _, _, _, notes in parts:
            for note in notes:
                log.warning("%s", note)
        callback = None
        if on_firings is not None:
            by_key = {
                (f.case_id, f.key.stage, f.key.step, f.key.version, f.key.repeat_no): f
                for _, _, _, kept, _ in parts
                for f in kept or ()
            }

            def callback(conn, written) -> None:
                on_firings(conn, [(fid, by_key[key]) for fid, key in written])

        fired, stale = batch.claim.commit(
            plans, firings, findings, now, self.rules.hash, callback, every_standing=self._bulk
        )
        if stale:
            log.info("%d case(s) changed while evaluated: read again next tick", len(stale))
        report.evaluated += len(batch.claim)
        report.fired.extend(fired)
        report.batches += 1
        report.stale += len(stale)


def _join(arrays: list[str]) -> str:
    """One JSON array from the workers' arrays (each a slice of the batch)."""
    if len(arrays) == 1:
        return arrays[0]
    return "[" + ",".join(a[1:-1] for a in arrays if a != "[]") + "]"
