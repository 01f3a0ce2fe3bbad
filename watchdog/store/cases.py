"""Cases and their events: read for the engine, the board and reports; written by sources.

Rows are read by name into `domain.CaseRecord`: the selected columns carry the record's field
names, so the mapping is `CaseRecord(**row)` and cannot drift from the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Connection, any_, bindparam, exists, func, or_, select
from sqlalchemy import column as sql_column
from sqlalchemy import text as sql_text

from watchdog.domain import OPEN_STATUSES, RECORD_FIELDS, CaseEvent, CaseRecord, Status
from watchdog.store import Store, schema

_c = schema.cases.c
_e = schema.case_events.c
_PAGE = 5000
# Ids per IN (...) list: one query for a whole engine batch; SQLite allows 32,766 parameters.
IN_CHUNK = 5000
_OPEN = [int(s) for s in OPEN_STATUSES]
# Ingest writes are serialised on PostgreSQL by this transaction-scoped advisory lock (SQLite
# serialises them by BEGIN IMMEDIATE), so two sources never derive events from one "before".
_INGEST_LOCK = 0x7774_6367  # "wtcg"

Facts = tuple[CaseRecord, tuple[CaseEvent, ...]]

# The columns of a CaseRecord, each under the record's field name.
RECORD_COLUMNS = tuple(_c[name].label(name) for name in RECORD_FIELDS)


_STATUS_AT = RECORD_FIELDS.index("status")
_STATUSES = {int(s): s for s in Status}


_N = len(RECORD_FIELDS)


def record_of(row: Any) -> CaseRecord:
    """A CaseRecord from a row selected with RECORD_COLUMNS (extra columns may follow).

    RECORD_COLUMNS is built from the record's own field names, in its field order, so the
    row's leading values ARE the record's fields: no position constant can drift from the
    table (tests/integration/test_store.py checks a record reads back field by field). This
    runs a million times in a plan, so it takes the values as they come."""
    values = list(row[:_N])
    values[_STATUS_AT] = _STATUSES[values[_STATUS_AT]]
    return CaseRecord(*values)


def select_records():
    return select(*RECORD_COLUMNS)


def id_in(conn: Connection, column, ids: Sequence[int]):
    """`column IN (ids)` as ONE parameter: `= ANY(array)` on PostgreSQL, a JSON array read by
    `json_each` on SQLite (thousands of expanded parameters cost more than the query)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    if conn.dialect.name == "sqlite":
        values = select(sql_column("value")).select_from(
            func.json_each(bindparam(None, json.dumps(list(ids))))
        )
        return column.in_(values.scalar_subquery())
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


def with_events(conn: Connection, rows: Sequence[Any]) -> list[Facts]:
    records = [record_of(r) for r in rows]
    events = events_of(conn, [r.id for r in records])
    return [(r, tuple(events.get(r.id, ()))) for r in records]


def _paged(store: Store, stmt) -> Iterator[Facts]:
    """Keyset-paged by id, so millions of cases never sit in memory at once."""
    last = 0
    while True:
        with store.read() as conn:
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
    stmt = select_records().where(_c.status.in_(_OPEN))
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
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(schema.cases)).scalar_one()


def has_cases_from(store: Store, source: str) -> bool:
    """Whether any case came from this source (the demo loads itself once)."""
    with store.read() as conn:
        return bool(conn.execute(select(exists().where(_c.source == source))).scalar())


def case_versions(store: Store, codes: Sequence[str]) -> dict[str, int]:
    """The current row version of each of these cases (tests and tools)."""
    out: dict[str, int] = {}
    with store.read() as conn:
        for i in range(0, len(codes), IN_CHUNK):
            stmt = select(_c.case_code, _c.version).where(_c.case_code.in_(codes[i : i + IN_CHUNK]))
            out.update({r.case_code: r.version for r in conn.execute(stmt)})
    return out


# ----- writing what sources bring -------------------------------------------------------------

# The columns a source writes (the rest is the engine's bookkeeping and our own timestamps).
SOURCE_COLUMNS = (
    "case_code",
    "procedure_code",
    "unit_code",
    "received_at",
    "due_at",
    "status",
    "finished_at",
    "returned_at",
    "assignee",
    "applicant_name",
    "applicant_phone",
    "submission_channel",
    "current_step",
    "step_started_at",
    "step_handler",
    "source_updated_at",
)


@dataclass
class CaseWrite:
    """What one ingest transaction did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # (index in the batch, reason) of each row the database refused; the rest was written
    refused: list[tuple[int, str]] = field(default_factory=list)


# Decides, from the stored row (None when new) and the incoming one, whether the case changed:
# None = unchanged; otherwise the events the change means (possibly none).
Decide = Callable[[Mapping[str, Any] | None, Mapping[str, Any]], list[dict[str, Any]] | None]


def stored_rows(conn: Connection, codes: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    """The source columns of the stored cases with these codes, by code."""
    cols = [_c[name] for name in SOURCE_COLUMNS]
    out: dict[str, Mapping[str, Any]] = {}
    for i in range(0, len(codes), 500):
        stmt = select(*cols).where(_c.case_code.in_(codes[i : i + 500]))
        for row in conn.execute(stmt):
            out[row.case_code] = dict(row._mapping)
    return out


def read_source_rows(store: Store, codes: Sequence[str]) -> dict[str, Mapping[str, Any]]:
    with store.read() as conn:
        return stored_rows(conn, codes)


def write_cases(
    store: Store,
    rows: Sequence[Mapping[str, Any]],
    decide: Decide,
    now: datetime,
    *,
    source: str,
) -> CaseWrite:
    """Upsert a batch of incoming cases (source columns, one row per code) in ONE write
    transaction: the stored "before" is read under the write lock, so events are derived from
    what is really there, and every changed row gets version + 1 and `next_check_at = now` (the
    engine looks at it on its next tick). When the database refuses a value the batch is
    retried row by row, so one bad row is refused alone.
    """
    try:
        return _write_cases(store, rows, decide, now, source)
    except _Refused:
        pass
    out = CaseWrite()
    for i, row in enumerate(rows):
        try:
            one = _write_cases(store, [row], decide, now, source)
        except _Refused as e:
            out.refused.append((i, str(e)))
            continue
        out.inserted += one.inserted
        out.updated += one.updated
        out.unchanged += one.unchanged
    return out


class _Refused(Exception):
    """The database refused a value of the batch (too long, NUL byte, out of range...)."""


def _write_cases(store, rows, decide, now, source) -> CaseWrite:
    from sqlalchemy.exc import (
        DataError,
        IntegrityError,
        InterfaceError,
        OperationalError,
        StatementError,
    )

    out = CaseWrite()
    if not rows:
        return out
    try:
        with store.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sql_text("SELECT pg_advisory_xact_lock(:k)"), {"k": _INGEST_LOCK})
            before = stored_rows(conn, [r["case_code"] for r in rows])
            changed, events = [], {}
            for row in rows:
                old = before.get(row["case_code"])
                derived = decide(old, row)
                if derived is None:
                    out.unchanged += 1
                    continue
                if old is None:
                    out.inserted += 1
                else:
                    out.updated += 1
                changed.append(
                    {
                        **row,
                        "source": source,
                        "created_at": now,
                        "updated_at": now,
                        "next_check_at": now,
                    }
                )
                if derived:
                    events[row["case_code"]] = derived
            _upsert_changed(store, conn, changed)
            if events:
                ids = dict(
                    conn.execute(
                        select(_c.case_code, _c.id).where(_c.case_code.in_(list(events)))
                    ).all()
                )
                event_rows = [
                    e | {"case_id": ids[code], "recorded_at": now}
                    for code, evs in events.items()
                    for e in evs
                ]
                store.upsert(conn, schema.case_events, event_rows, ["case_id", "event_id"], [])
    except (OperationalError, InterfaceError):
        raise  # the database itself is unwell (locked, gone): not a value it refused
    except (DataError, IntegrityError, StatementError) as e:
        # StatementError also covers a value our own column types refuse when binding
        raise _Refused(str(getattr(e, "orig", None) or e).splitlines()[0]) from e
    return out


_ON_CHANGE = (*SOURCE_COLUMNS[1:], "source", "updated_at", "next_check_at")


def _upsert_changed(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = store.insert_stmt(schema.cases)
    stmt = stmt.on_conflict_do_update(
        index_elements=["case_code"],
        set_={c: stmt.excluded[c] for c in _ON_CHANGE} | {"version": _c.version + 1},
    )
    for i in range(0, len(rows), 1000):
        conn.execute(stmt, rows[i : i + 1000])


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


def count_open_cases(store: Store) -> int:
    """How many cases are open (the total a re-plan walks)."""
    with store.read() as conn:
        stmt = select(func.count()).select_from(schema.cases).where(_c.status.in_(_OPEN))
        return conn.execute(stmt).scalar_one()
