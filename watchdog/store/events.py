"""Events pushed by a source (HTTP push, SPEC 6): recorded once per (case, event_id), with the
change they make to the case's snapshot, in one write transaction.

What an event changes is decided by the caller (`watchdog.sources.push`), from the stored row
read under the write lock: the store decides nothing about kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy import text as sql_text

from watchdog.store import Store, schema
from watchdog.store.cases import _INGEST_LOCK, SOURCE_COLUMNS

_c = schema.cases.c
_e = schema.case_events.c

Outcome = Literal["applied", "duplicate", "unknown"]

# (stored source columns of the case, latest `at` recorded per event kind) ->
# (columns of the case to set, the event's `data`). May raise to refuse the event: nothing of
# it is written then, and the exception is its outcome.
Effect = Callable[
    [Mapping[str, Any], Mapping[str, datetime]], tuple[Mapping[str, Any], Mapping[str, Any]]
]

_SETTABLE = frozenset(SOURCE_COLUMNS) - {"case_code"}

# Statements built once: a batch of pushes is a handful of statements, and building them cost
# more than running them (bench/api.py). `_IN` ids or codes per IN list.
_IN = 500
_LOCK = sql_text("SELECT pg_advisory_xact_lock(:k)")
_INSERT = insert(schema.case_events)


@lru_cache(maxsize=64)
def _update(columns: frozenset[str]):
    """UPDATE of a case setting these columns (bound as v_<name>), its source, version + n and
    `updated_at = next_check_at = now`."""
    return (
        update(schema.cases)
        .where(_c.id == bindparam("case_id"))
        .values(
            {name: bindparam(f"v_{name}", type_=_c[name].type) for name in columns}
            | {
                "source": bindparam("source"),
                "updated_at": bindparam("now", type_=_c.updated_at.type),
                "next_check_at": bindparam("now", type_=_c.next_check_at.type),
                "version": _c.version + bindparam("n"),
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
    one commit and a few statements for many, bench/api.py).

    It takes the lock `write_cases` takes (PostgreSQL: the ingest advisory lock; SQLite: BEGIN
    IMMEDIATE), so an import and a push never derive from a stale "before". Per event, in the
    order given, each seeing the ones before it: "unknown": no case with this code;
    "duplicate": this case already has an event with this `event_id`, nothing changed;
    "applied": the case gets the columns `changes` gave, `source`, version + 1 and
    `updated_at = next_check_at = now` (the engine looks at it on its next tick). When
    `changes` raises, that exception is the event's outcome and nothing of it is written; the
    others are. A database error fails the whole batch (raised, nothing written).
    """
    out: list[Outcome | Exception] = []
    if not writes:
        return out
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK, {"k": _INGEST_LOCK})
        cases = _read_cases(conn, {w.case_code for w in writes})
        ids = [case.id for case in cases.values()]
        seen = _seen(conn, ids, {w.event.event_id for w in writes})
        latest = _latest(conn, ids)
        events: list[dict[str, Any]] = []
        for w in writes:
            case = cases.get(w.case_code)
            if case is None:
                out.append("unknown")
                continue
            event = w.event
            if (case.id, event.event_id) in seen:
                out.append("duplicate")
                continue
            times = latest.setdefault(case.id, {})
            try:
                values, data = w.changes(MappingProxyType(case.row), MappingProxyType(times))
                unknown = set(values) - _SETTABLE
                if unknown:
                    raise ValueError(f"not a column a source sets: {sorted(unknown)}")
            except Exception as e:  # the caller's refusal: nothing of this event is written
                out.append(e)
                continue
            case.row.update(values)
            case.changed.update(values)
            case.applied += 1
            case.source = w.source
            if event.kind not in times or times[event.kind] < event.at:
                times[event.kind] = event.at
            seen.add((case.id, event.event_id))
            events.append(
                {
                    "case_id": case.id,
                    "event_id": event.event_id,
                    "kind": event.kind,
                    "at": event.at,
                    "data": dict(data),
                    "recorded_at": now,
                }
            )
            out.append("applied")
        updates: dict[frozenset[str], list[dict[str, Any]]] = {}
        for case in cases.values():
            if case.applied:
                updates.setdefault(frozenset(case.changed), []).append(
                    {f"v_{k}": case.row[k] for k in case.changed}
                    | {"case_id": case.id, "now": now, "source": case.source, "n": case.applied}
                )
        for columns, params in updates.items():
            conn.execute(_update(columns), params)
        if events:
            conn.execute(_INSERT, events)
    return out


@dataclass(slots=True)
class _Case:
    id: int
    row: dict[str, Any]  # source columns, as the events of the batch so far leave them
    changed: dict[str, Any] = field(default_factory=dict)
    applied: int = 0
    source: str = ""


def _read_cases(conn: Connection, codes: set[str]) -> dict[str, _Case]:
    cols = [_c.id, *(_c[name] for name in SOURCE_COLUMNS)]
    out: dict[str, _Case] = {}
    wanted = sorted(codes)
    for i in range(0, len(wanted), _IN):
        for row in conn.execute(select(*cols).where(_c.case_code.in_(wanted[i : i + _IN]))):
            values = dict(zip(SOURCE_COLUMNS, row[1:], strict=True))
            out[values["case_code"]] = _Case(row.id, values)
    return out


def _seen(conn: Connection, ids: list[int], event_ids: set[str]) -> set[tuple[int, str]]:
    """(case id, event_id) pairs already recorded, among these."""
    out: set[tuple[int, str]] = set()
    wanted = sorted(event_ids)
    for i in range(0, len(ids), _IN):
        for j in range(0, len(wanted), _IN):
            stmt = select(_e.case_id, _e.event_id).where(
                _e.case_id.in_(ids[i : i + _IN]), _e.event_id.in_(wanted[j : j + _IN])
            )
            out.update((case_id, event_id) for case_id, event_id in conn.execute(stmt))
    return out


def _latest(conn: Connection, ids: list[int]) -> dict[int, dict[str, datetime]]:
    """The latest `at` recorded per case and event kind."""
    out: dict[int, dict[str, datetime]] = {}
    for i in range(0, len(ids), _IN):
        stmt = (
            select(_e.case_id, _e.kind, func.max(_e.at))
            .where(_e.case_id.in_(ids[i : i + _IN]))
            .group_by(_e.case_id, _e.kind)
        )
        for case_id, kind, at in conn.execute(stmt):
            out.setdefault(case_id, {})[kind] = _aware(at)
    return out


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
