"""Events pushed by a source (HTTP push, SPEC 6): recorded once per (case, event_id), with the
change they make to the case's snapshot, in one write transaction.

What an event changes is decided by the caller (`watchdog.sources.push`), from the stored row
read under the write lock: the store decides nothing about kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy import text as sql_text

from watchdog.store import Store, schema
from watchdog.store.cases import _INGEST_LOCK, SOURCE_COLUMNS

_c = schema.cases.c
_e = schema.case_events.c

Outcome = Literal["applied", "duplicate", "unknown"]

# (stored source columns of the case, latest `at` recorded per event kind) ->
# (columns of the case to set, the event's `data`). May raise to refuse the event: nothing is
# written then and the exception reaches the caller.
Effect = Callable[
    [Mapping[str, Any], Mapping[str, datetime]], tuple[Mapping[str, Any], Mapping[str, Any]]
]

_SETTABLE = frozenset(SOURCE_COLUMNS) - {"case_code"}

# Built once: a push is a handful of small statements, and building them cost more than
# running them (bench/api.py).
_LOCK = sql_text("SELECT pg_advisory_xact_lock(:k)")
_CASE = select(
    _c.id,
    *(_c[name] for name in SOURCE_COLUMNS),
    select(_e.id)
    .where(_e.case_id == _c.id, _e.event_id == bindparam("event_id"))
    .exists()
    .label("seen"),
).where(_c.case_code == bindparam("code"))
_LATEST = (
    select(_e.kind, func.max(_e.at)).where(_e.case_id == bindparam("case_id")).group_by(_e.kind)
)
_INSERT = insert(schema.case_events)


@lru_cache(maxsize=64)
def _update(columns: frozenset[str]):
    """UPDATE of a case setting these columns (bound as v_<name>) and the bookkeeping."""
    return (
        update(schema.cases)
        .where(_c.id == bindparam("case_id"))
        .values(
            {name: bindparam(f"v_{name}", type_=_c[name].type) for name in columns}
            | {
                "source": bindparam("source"),
                "updated_at": bindparam("now", type_=_c.updated_at.type),
                "next_check_at": bindparam("now", type_=_c.next_check_at.type),
                "version": _c.version + 1,
            }
        )
    )


@dataclass(frozen=True, slots=True)
class NewEvent:
    event_id: str
    kind: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event_id: str
    kind: str
    at: datetime
    data: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class EventWrite:
    """One event to record on the case `case_code`, with what it changes (see Effect)."""

    case_code: str
    event: NewEvent
    changes: Effect
    source: str


def apply_event(
    store: Store,
    case_code: str,
    event: NewEvent,
    changes: Effect,
    now: datetime,
    *,
    source: str,
) -> Outcome:
    """Record one event of a case and apply its change, in ONE write transaction (see
    apply_events); raises what `changes` raised, nothing written then."""
    (outcome,) = apply_events(store, [EventWrite(case_code, event, changes, source)], now)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def apply_events(
    store: Store, writes: Sequence[EventWrite], now: datetime
) -> list[Outcome | Exception]:
    """Record events of cases and apply their changes, in order, in ONE write transaction
    (the push API gathers the events that arrive while one batch is written into the next:
    one commit for many, bench/api.py).

    It takes the lock `write_cases` takes (PostgreSQL: the ingest advisory lock; SQLite: BEGIN
    IMMEDIATE), so an import and a push never derive from a stale "before". Per event:
    "unknown": no case with this code; "duplicate": this case already has an event with this
    `event_id` (an earlier one of the same batch included), nothing changed; "applied": the
    case got the columns `changes` gave, `source`, version + 1 and `updated_at = next_check_at
    = now` (the engine looks at it on its next tick). When `changes` raises, that exception is
    the event's outcome and nothing of it is written; the others are. A database error fails
    the whole batch (raised, nothing written).
    """
    out: list[Outcome | Exception] = []
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK, {"k": _INGEST_LOCK})
        for w in writes:
            try:
                out.append(_apply(conn, w, now))
            except _Refused as e:
                out.append(e.error)
    return out


class _Refused(Exception):
    def __init__(self, error: Exception):
        self.error = error


def _apply(conn: Connection, w: EventWrite, now: datetime) -> Outcome:
    event = w.event
    row = conn.execute(_CASE, {"code": w.case_code, "event_id": event.event_id}).first()
    if row is None:
        return "unknown"
    if row.seen:
        return "duplicate"
    case_id = row.id
    latest = {kind: _aware(at) for kind, at in conn.execute(_LATEST, {"case_id": case_id})}
    before = {name: row[i + 1] for i, name in enumerate(SOURCE_COLUMNS)}
    try:
        values, data = w.changes(before, latest)
        unknown = set(values) - _SETTABLE
        if unknown:
            raise ValueError(f"not a column a source sets: {sorted(unknown)}")
    except Exception as e:  # the caller's refusal: nothing of this event is written
        raise _Refused(e) from e
    conn.execute(
        _update(frozenset(values)),
        {
            **{f"v_{k}": v for k, v in values.items()},
            "case_id": case_id,
            "now": now,
            "source": w.source,
        },
    )
    conn.execute(
        _INSERT,
        {
            "case_id": case_id,
            "event_id": event.event_id,
            "kind": event.kind,
            "at": event.at,
            "data": dict(data),
            "recorded_at": now,
        },
    )
    return "applied"


def stored_events(store: Store, case_code: str) -> list[StoredEvent]:
    """The events recorded for a case, in order of `at` (tests, tools, the push benchmark)."""
    stmt = (
        select(_e.event_id, _e.kind, _e.at, _e.data, _e.recorded_at)
        .join(schema.cases, _c.id == _e.case_id)
        .where(_c.case_code == case_code)
        .order_by(_e.at, _e.id)
    )
    with store.read() as conn:
        return [
            StoredEvent(r.event_id, r.kind, r.at, r.data or {}, r.recorded_at)
            for r in conn.execute(stmt)
        ]


def ping(store: Store) -> None:
    """One trivial query: raises when the database cannot be reached (the health check)."""
    with store.read() as conn:
        conn.execute(select(1)).scalar()


def _aware(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite hands aggregates back untyped
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
