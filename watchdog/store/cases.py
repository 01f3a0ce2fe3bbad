"""Reading cases back with their events: the queries the engine, reports and the board need."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Connection, any_, bindparam, func, or_, select

from watchdog.domain import OPEN_STATUSES, Status
from watchdog.engine.deadline import CaseEvent, CaseRecord
from watchdog.store import Store, schema

_c = schema.cases.c
_e = schema.case_events.c
_PAGE = 5000
# Ids per IN (...) list: one query for a whole engine batch; SQLite allows 32,766 parameters.
IN_CHUNK = 5000

Facts = tuple[CaseRecord, tuple[CaseEvent, ...]]

# The columns a CaseRecord is made of, in its field order (CaseRecord.from_row relies on it),
# plus next_check_at for the engine's keyset paging and updated_at to write plans safely.
RECORD_COLUMNS = (
    _c.case_code,
    _c.procedure_code,
    _c.unit_code,
    _c.received_at,
    _c.status,
    _c.due_at,
    _c.finished_at,
    _c.returned_at,
    _c.assignee,
    _c.current_step,
    _c.step_started_at,
    _c.step_handler,
    _c.applicant_name,
    _c.submission_channel,
    _c.source_updated_at,
    _c.id,
    _c.next_check_at,
    _c.updated_at,
)


def select_records():
    return select(*RECORD_COLUMNS)


def id_in(conn: Connection, column, ids: Sequence[int]):
    """`column IN (ids)`; on PostgreSQL `= ANY(array)`, one parameter instead of thousands."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    return column.in_(ids)


def events_of(conn: Connection, case_ids: Sequence[int]) -> dict[int, list[CaseEvent]]:
    """Events of many cases at once, in order."""
    out: dict[int, list[CaseEvent]] = {}
    for i in range(0, len(case_ids), IN_CHUNK):
        stmt = (
            select(_e.case_id, _e.kind, _e.at, _e.data)
            .where(id_in(conn, _e.case_id, case_ids[i : i + IN_CHUNK]))
            .order_by(_e.case_id, _e.at, _e.id)
        )
        for row in conn.execute(stmt):
            out.setdefault(row.case_id, []).append(CaseEvent(row.kind, row.at, row.data or {}))
    return out


# A case as the engine's batches carry it: the RECORD_COLUMNS values as a plain tuple (cheap to
# send to a worker process, CaseRecord.from_row makes the record there) and its events.
RawFacts = tuple[tuple[Any, ...], tuple[CaseEvent, ...]]
ID, CODE = 15, 0  # positions in RECORD_COLUMNS


def raw_with_events(conn: Connection, rows: Sequence) -> list[RawFacts]:
    events = events_of(conn, [r[ID] for r in rows])
    return [(tuple(r[:16]), tuple(events.get(r[ID], ()))) for r in rows]


def with_events(conn: Connection, rows: Sequence) -> list[Facts]:
    return [(CaseRecord.from_row(row), events) for row, events in raw_with_events(conn, rows)]


def _paged(store: Store, stmt) -> Iterator[Facts]:
    """Keyset-paged by id, so millions of cases never sit in memory at once."""
    last = 0
    while True:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt.where(_c.id > last).order_by(_c.id).limit(_PAGE)).all()
            page = with_events(conn, rows)
        yield from page
        if len(rows) < _PAGE:
            return
        last = rows[-1].id


def open_cases(
    store: Store,
    *,
    units: Collection[str] | None = None,
    official: str | None = None,
) -> Iterator[Facts]:
    """Open cases, optionally of some units or of one official (as assignee or step handler)."""
    stmt = select_records().where(_c.status.in_([int(s) for s in OPEN_STATUSES]))
    if units is not None:
        stmt = stmt.where(_c.unit_code.in_(list(units)))
    if official is not None:
        stmt = stmt.where(or_(_c.assignee == official, _c.step_handler == official))
    return _paged(store, stmt)


def cases_received_between(store: Store, start: datetime, end: datetime) -> Iterator[Facts]:
    """Cases received in [start, end), except those the desk did not accept."""
    stmt = select_records().where(
        _c.received_at >= start, _c.received_at < end, _c.status != int(Status.NOT_ACCEPTED)
    )
    return _paged(store, stmt)


def count_cases(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.cases)).scalar_one()


def _text_limits() -> dict[str, int]:
    out = {}
    for col in schema.cases.columns:
        length = getattr(col.type, "length", None)
        if length:
            out[col.name] = length
    return out


# Longest value each text column of a case holds: the importer rejects a longer one by row and
# column instead of letting the database refuse the whole batch.
TEXT_LIMITS: dict[str, int] = _text_limits()
