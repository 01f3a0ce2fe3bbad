"""Firings: each stage fired for a case, once per unique key (case, stage, step, due version,
repeat number), so a restart, a reload or a second replica never records one twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from watchdog.domain import Fired
from watchdog.store import Store, schema
from watchdog.store.cases import IN_CHUNK, id_in

_f = schema.firings.c
KEY = ("case_id", "stage", "step", "version", "repeat_no")


@dataclass(frozen=True, slots=True)
class FiringRow:
    """A firing to record, as the table holds it."""

    case_id: int
    stage: str
    step: str
    version: str
    repeat_no: int
    fire_at: datetime
    recipients: list[list[str]]  # [[recipient, channel, address], ...]
    urgent: bool
    template: str
    attach: str | None
    due_at: datetime | None
    rules_hash: str

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.case_id, self.stage, self.step, self.version, self.repeat_no)


_FIELDS = tuple(f.name for f in fields(FiringRow))


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


def insert_firings(
    store: Store, conn: Connection, firings: Sequence[FiringRow], now: datetime
) -> list[tuple[int, FiringRow]]:
    """Insert firings whose key is new; returns (id, firing) of those actually written."""
    if not firings:
        return []
    # by hand: dataclasses.asdict deep-copies every recipients list (a third of a plan's time)
    rows = [{name: getattr(f, name) for name in _FIELDS} | {"created_at": now} for f in firings]
    by_key = {f.key: f for f in firings}
    stmt = store.insert_ignoring(schema.firings, KEY).returning(
        _f.id, _f.case_id, _f.stage, _f.step, _f.version, _f.repeat_no
    )
    returned = conn.execute(stmt, rows).all()
    return [(r.id, by_key[(r.case_id, r.stage, r.step, r.version, r.repeat_no)]) for r in returned]


def firing_keys(store: Store) -> list[tuple[str, str, str, int]]:
    """(case code, stage, version, repeat number) of every firing, sorted (tests and tools)."""
    c = schema.cases.c
    stmt = select(c.case_code, _f.stage, _f.version, _f.repeat_no).join(
        schema.cases, c.id == _f.case_id
    )
    with store.read() as conn:
        return sorted(tuple(r) for r in conn.execute(stmt))
