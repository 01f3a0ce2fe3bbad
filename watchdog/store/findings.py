"""Reading the admin's findings back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from watchdog.store import Store, schema


def open_findings(store: Store, kind: str | None = None) -> list[dict[str, Any]]:
    f = schema.findings.c
    stmt = select(f.kind, f.subject, f.detail, f.found_at).where(f.resolved_at.is_(None))
    if kind:
        stmt = stmt.where(f.kind == kind)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt.order_by(f.kind, f.subject))]
