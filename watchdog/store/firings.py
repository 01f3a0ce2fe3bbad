"""Firings: each stage fired for a case, once per unique key (case, stage, step, due version,
repeat number), so a restart, a reload or a second replica never records one twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select

from watchdog.domain import Fired
from watchdog.store import Store, schema
from watchdog.store.cases import IN_CHUNK, id_in

_f = schema.firings.c


def fired_of(conn: Connection, case_ids: Sequence[int]) -> dict[int, dict[tuple, Fired]]:
    """Per case: what was fired so far, per (stage, step, version)."""
    out: dict[int, dict[tuple[str, str, str], Fired]] = {}
    for i in range(0, len(case_ids), IN_CHUNK):
        stmt = (
            select(
                _f.case_id,
                _f.stage,
                _f.step,
                _f.version,
                func.max(_f.repeat_no).label("last_repeat"),
                func.max(_f.acknowledged_at).label("acknowledged_at"),
                func.max(_f.fire_at).label("fire_at"),
            )
            .where(id_in(conn, _f.case_id, case_ids[i : i + IN_CHUNK]))
            .group_by(_f.case_id, _f.stage, _f.step, _f.version)
        )
        for row in conn.execute(stmt):
            fire_at = row.fire_at
            if isinstance(fire_at, str):  # SQLite hands aggregates back untyped
                fire_at = datetime.fromisoformat(fire_at).replace(tzinfo=UTC)
            elif fire_at is not None and fire_at.tzinfo is None:
                fire_at = fire_at.replace(tzinfo=UTC)
            so_far = Fired(row.last_repeat, row.acknowledged_at is not None, fire_at)
            out.setdefault(row.case_id, {})[(row.stage, row.step, row.version)] = so_far
    return out


def fired_so_far(store: Store, case_ids: Sequence[int]) -> dict[int, dict[tuple, Fired]]:
    with store.read() as conn:
        return fired_of(conn, case_ids)


def firing_keys(store: Store) -> list[tuple[str, str, str, int]]:
    """(case code, stage, version, repeat number) of every firing, sorted (tests and tools)."""
    c = schema.cases.c
    stmt = select(c.case_code, _f.stage, _f.version, _f.repeat_no).join(
        schema.cases, c.id == _f.case_id
    )
    with store.read() as conn:
        return sorted(tuple(r) for r in conn.execute(stmt))
