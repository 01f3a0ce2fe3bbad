"""Reading cases back: the queries that reports and the case board need."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime

from sqlalchemy import func, or_, select

from watchdog.domain import OPEN_STATUSES, Status
from watchdog.engine.deadline import CaseRecord
from watchdog.store import Store, schema

_c = schema.cases.c
_PAGE = 5000


def _paged(store: Store, stmt) -> Iterator[CaseRecord]:
    """Keyset-paged by id, so millions of cases never sit in memory at once."""
    last = 0
    while True:
        with store.engine.connect() as conn:
            rows = conn.execute(stmt.where(_c.id > last).order_by(_c.id).limit(_PAGE)).all()
        for row in rows:
            yield CaseRecord.from_row(row)
        if len(rows) < _PAGE:
            return
        last = rows[-1].id


def open_cases(
    store: Store,
    *,
    units: Collection[str] | None = None,
    official: str | None = None,
) -> Iterator[CaseRecord]:
    """Open cases, optionally of some units or of one official (as assignee or step handler)."""
    stmt = select(schema.cases).where(_c.status.in_([int(s) for s in OPEN_STATUSES]))
    if units is not None:
        stmt = stmt.where(_c.unit_code.in_(list(units)))
    if official is not None:
        stmt = stmt.where(or_(_c.assignee == official, _c.step_handler == official))
    return _paged(store, stmt)


def cases_received_between(store: Store, start: datetime, end: datetime) -> Iterator[CaseRecord]:
    """Cases received in [start, end), except those the desk did not accept."""
    stmt = select(schema.cases).where(
        _c.received_at >= start, _c.received_at < end, _c.status != int(Status.NOT_ACCEPTED)
    )
    return _paged(store, stmt)


def count_cases(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.cases)).scalar_one()
