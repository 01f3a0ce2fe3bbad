"""Reads the web dashboard needs that no other part of the product asks for: one case by its
code with its events, and the open findings an account may see (those about cases of its
units or its own cases), a page at a time.

The board of open cases, the on-time report and the message history come from their own
modules (`reports.board`, `reports.ontime`, `store.outbox.history`); nothing here scans cases.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from watchdog.store import Store, schema
from watchdog.store.cases import Facts, select_records, with_events

_c = schema.cases.c
_f = schema.findings.c


def case_with_events(store: Store, case_code: str) -> Facts | None:
    """The case with this code and its events in order; None when there is none."""
    with store.read() as conn:
        row = conn.execute(select_records().where(_c.case_code == case_code)).first()
        if row is None:
            return None
        return with_events(conn, [row])[0]


@dataclass(frozen=True, slots=True)
class FindingRow:
    kind: str
    subject: str
    detail: str
    found_at: datetime
    case_code: str | None  # None for a finding about something else than a stored case
    unit_code: str | None


def open_findings_in_scope(
    store: Store,
    *,
    units: Collection[str] | None = None,
    official: str | None = None,
    case_code: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[FindingRow], int]:
    """Open findings, newest first, with how many there are in all. `units` keeps those about
    cases of these units, `official` those about cases it is assignee or step handler of
    (either one leaves out findings that are about no case); None for both: every finding."""
    stmt = (
        select(_f.kind, _f.subject, _f.detail, _f.found_at, _c.case_code, _c.unit_code)
        .select_from(schema.findings.outerjoin(schema.cases, _c.id == _f.case_id))
        .where(_f.resolved_at.is_(None))
    )
    if units is not None:
        stmt = stmt.where(_c.unit_code.in_(sorted(units)))
    if official is not None:
        stmt = stmt.where(or_(_c.assignee == official, _c.step_handler == official))
    if case_code is not None:
        stmt = stmt.where(_c.case_code == case_code)
    if kind is not None:
        stmt = stmt.where(_f.kind == kind)
    counted = select(func.count()).select_from(stmt.subquery())
    page = stmt.order_by(_f.found_at.desc(), _f.id.desc()).limit(limit).offset(offset)
    with store.read() as conn:
        total = conn.execute(counted).scalar_one()
        rows = [FindingRow(*r) for r in conn.execute(page)]
    return rows, total
