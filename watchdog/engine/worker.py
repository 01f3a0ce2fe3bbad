"""The evaluation of the engine's batches, in a worker process or in the main one.

A batch comes as the store claimed it (`store.plans.Claim`): the case rows as the database
driver returned them (the fields of `CaseRecord` in order, instants as the driver gives them),
their events and earlier firings. What goes back is what the store writes, already in the form
it writes (`store.plans` describes it): the plans and the firings as JSON arrays with instants
as naive-UTC text, the findings as tuples, and the firings themselves only when an `on_firings`
hook needs them. Plain strings and tuples are pickled far faster than records and firings,
so the main process, which does every read and write, has little else to do.

This module imports no store and no SQLAlchemy: the worker processes (spawned) import it and
the pure engine only, about 30 MB less each than the runner with the store would cost.
"""

from __future__ import annotations

import gc
import json
import logging
import pickle
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from watchdog.config import Settings
from watchdog.domain import RECORD_FIELDS, CaseEvent, CaseRecord, Fired, Status
from watchdog.engine.evaluate import Evaluation, Finding, Firing, evaluate
from watchdog.engine.rules import RuleSet

log = logging.getLogger(__name__)

RETRY_LATER = timedelta(minutes=1)
_STATUS_AT = RECORD_FIELDS.index("status")
_STATUSES = {int(s): s for s in Status}
_fromisoformat = datetime.fromisoformat

# (case rows, their events by case id, earlier firings by case id, positions of the instants
# in a row, whether the driver hands instants back as text (SQLite) or naive datetimes)
Work = tuple[
    Sequence[tuple],
    Mapping[int, tuple[CaseEvent, ...]],
    Mapping[int, dict[tuple, Fired]],
    tuple[int, ...],
    bool,
]
# (plans JSON, firings JSON, findings (kind, subject, detail, case id), the firings themselves
# when asked for, warnings for the main process's log)
Done = tuple[str, str, list[tuple[str, str, str, int]], list[Firing] | None, list[str]]


def instant_text(t: datetime) -> str:
    """An instant as the store writes it: naive UTC, `YYYY-MM-DD HH:MM:SS.ffffff` (the text
    SQLite holds, and a timestamp literal PostgreSQL reads)."""
    return t.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def records(rows: Sequence[tuple], instants: tuple[int, ...], text: bool) -> list[CaseRecord]:
    """CaseRecords from driver rows whose leading values are the record's fields, in order.
    This runs a million times in a plan: it only types the instants and the status."""
    out = []
    for row in rows:
        values = list(row)
        for i in instants:
            v = values[i]
            if v is not None:
                values[i] = _fromisoformat(v + "+00:00") if text else v.replace(tzinfo=UTC)
        values[_STATUS_AT] = _STATUSES[values[_STATUS_AT]]
        out.append(CaseRecord(*values[: len(RECORD_FIELDS)]))
    return out


def evaluate_facts(
    settings: Settings,
    rules: RuleSet,
    facts: Sequence[tuple[CaseRecord, Sequence[CaseEvent]]],
    fired: Mapping[int, dict[tuple, Fired]],
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


def evaluate_work(
    settings: Settings, rules: RuleSet, work: Work, now: datetime, keep: bool
) -> Done:
    """Evaluate a claimed batch (or a slice of one) and return what the store writes."""
    rows, events, fired, instants, text = work
    recs = records(rows, instants, text)
    evaluations = evaluate_facts(
        settings, rules, [(r, events.get(r.id, ())) for r in recs], fired, now
    )
    plans: list[list[Any]] = []
    firings: list[list[Any]] = []
    findings: list[tuple[str, str, str, int]] = []
    kept: list[Firing] | None = [] if keep else None
    notes: list[str] = []
    texts: dict[datetime, str] = {}  # the cases of a batch share many instants

    def text_of(t: datetime | None) -> str | None:
        if t is None:
            return None
        found = texts.get(t)
        if found is None:
            found = texts[t] = instant_text(t)
        return found

    for record, ev in zip(recs, evaluations, strict=True):
        nxt = ev.next_check_at
        if nxt is not None and nxt <= now:  # never spin on a case: look again shortly
            notes.append(f"case {record.case_code}: next check {nxt} is not after {now}")
            nxt = now + RETRY_LATER
        st = ev.standing
        if st is None:  # it cannot be computed: the finding says why
            plans.append([record.id, record.version, text_of(nxt), None, None, None, 4, 0])
        else:
            plans.append(
                [
                    record.id,
                    record.version,
                    text_of(nxt),
                    text_of(st.due),
                    text_of(st.due_soon_at),
                    text_of(st.waiting_since),
                    int(st.rank),
                    st.supplements,
                ]
            )
        for f in ev.firings:
            k = f.key
            firings.append(
                [
                    f.case_id,
                    k.stage,
                    k.step,
                    k.version,
                    k.repeat_no,
                    text_of(f.fire_at),
                    [[d.recipient, d.channel, d.address] for d in f.deliveries],
                    f.urgent,
                    f.template,
                    f.attach,
                    text_of(f.due),
                ]
            )
        if kept is not None:
            kept.extend(ev.firings)
        findings.extend((x.kind, x.subject, x.detail, record.id) for x in ev.findings)
    return json.dumps(plans), json.dumps(firings), findings, kept, notes


# ----- in a worker process -----------------------------------------------------------------

_STATE: tuple[Settings, RuleSet] | None = None


def init(payload: bytes) -> None:
    """Runs once in each worker process: the settings and rules, pickled by the engine."""
    global _STATE
    _STATE = pickle.loads(payload)
    # The settings (20,000 officials in a country) live as long as the process: out of the
    # garbage collector's sight, its collections cost 3% of a worker instead of 8%. What an
    # evaluation allocates is freed by reference counting; collected only every 20,000 net
    # allocations (not 700), the young objects are gone before a collection looks at them.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def run(work: Work, now: datetime, keep: bool) -> Done:
    assert _STATE is not None, "worker not initialised"
    settings, rules = _STATE
    return evaluate_work(settings, rules, work, now, keep)
