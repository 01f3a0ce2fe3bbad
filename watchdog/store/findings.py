"""Findings for the admin: data-quality problems and cases that cannot be computed.

A finding is keyed by (kind, subject): recording it again updates its detail; the engine
resolves a case's findings when it evaluates the case again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from watchdog.store import Store, schema
from watchdog.store.cases import IN_CHUNK, id_in

_f = schema.findings.c


@dataclass(frozen=True, slots=True)
class NewFinding:
    """A finding to record; `case_id` when it is about a stored case."""

    kind: str
    subject: str
    detail: str
    case_id: int | None = None


def open_findings(store: Store, kind: str | None = None) -> list[dict[str, Any]]:
    stmt = select(_f.kind, _f.subject, _f.detail, _f.found_at).where(_f.resolved_at.is_(None))
    if kind:
        stmt = stmt.where(_f.kind == kind)
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt.order_by(_f.kind, _f.subject))]


def record_findings(store: Store, found: Sequence[NewFinding], now: datetime) -> None:
    """Record findings outside the engine (the board, reports and imports meet them too)."""
    if not found:
        return
    with store.begin() as conn:
        write_findings(store, conn, found, now)


def write_findings(
    store: Store, conn: Connection, found: Sequence[NewFinding], now: datetime
) -> None:
    rows = [
        {
            "case_id": x.case_id,
            "kind": x.kind,
            "subject": x.subject[:160],
            "detail": x.detail,
            "found_at": now,
            "resolved_at": None,
        }
        for x in found
    ]
    for i in range(0, len(rows), 1000):
        store.upsert(
            conn,
            schema.findings,
            rows[i : i + 1000],
            ["kind", "subject"],
            ["detail", "resolved_at", "case_id"],
        )


def resolve_case_findings(conn: Connection, case_ids: Sequence[int], now: datetime) -> None:
    """Mark the open findings of these cases resolved (they are being evaluated again)."""
    for i in range(0, len(case_ids), IN_CHUNK):
        conn.execute(
            update(schema.findings)
            .where(id_in(conn, _f.case_id, case_ids[i : i + IN_CHUNK]), _f.resolved_at.is_(None))
            .values(resolved_at=now)
        )
