"""The engine's port: claim a batch of cases, then write what their evaluation decided.

A batch is claimed (read with its events and earlier firings) and later committed. The write
is guarded by the row version of each case: first `next_check_at` is set only where
`version` is still the one read, then firings and findings are written only for those cases.
A case changed in between (an import, a push) keeps the `next_check_at = now` its change set
and is read again by the next tick; nothing computed from the stale read is recorded.

On PostgreSQL the claimed rows stay locked (FOR UPDATE SKIP LOCKED) in the batch's own
transaction until it is written, so replicas share the work and never evaluate one case at
once; SQLite has one writer: the batch is read, released, and written later in a transaction
that begins with BEGIN IMMEDIATE, under which the version check and the writes are atomic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_

from watchdog.domain import OPEN_STATUSES, Fired
from watchdog.store import Store, schema
from watchdog.store.cases import Facts, select_records, with_events
from watchdog.store.findings import NewFinding, resolve_case_findings, write_findings
from watchdog.store.firings import FiringRow, fired_of, insert_firings
from watchdog.store.schema import UTCDateTime

_c = schema.cases.c
_s = schema.engine_state.c
_OPEN = [int(s) for s in OPEN_STATUSES]
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"

# (case id, version read, next instant or None)
Plan = tuple[int, int, datetime | None]
Written = list[tuple[int, FiringRow]]


class Claim:
    """A batch of cases claimed for evaluation; `commit` writes its results, `release` drops it."""

    def __init__(
        self,
        store: Store,
        facts: list[Facts],
        fired: dict[int, dict[tuple, Fired]],
        cursor: Any,
        conn: Connection | None,
        txn: Any,
    ):
        self.store = store
        self.facts = facts
        self.fired = fired
        self.cursor = cursor
        self._conn = conn
        self._txn = txn

    def commit(
        self,
        plans: Sequence[Plan],
        firings: Sequence[FiringRow],
        findings: Sequence[NewFinding],
        now: datetime,
        on_written: Callable[[Connection, Written], None] | None = None,
    ) -> tuple[Written, set[int]]:
        """Write the plans, then the firings and findings of the cases whose version still
        matches. Returns the firings written and the ids of the cases found changed (stale).
        `on_written` runs in the same transaction with the firings just written."""
        if self._conn is None:
            self._conn = self.store.write_connection()
            self._txn = self._conn.begin()
        conn = self._conn
        try:
            current = set_next_checks(conn, plans)
            written = insert_firings(
                self.store, conn, [f for f in firings if f.case_id in current], now
            )
            resolve_case_findings(conn, sorted(current), now)
            write_findings(self.store, conn, [x for x in findings if x.case_id in current], now)
            if on_written and written:
                on_written(conn, written)
            self._txn.commit()
        finally:
            self.release()
        return written, {case_id for case_id, _, _ in plans} - current

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # rolls back whatever was not committed
            self._conn = None


def claim_due(
    store: Store, now: datetime, after: tuple[datetime, int] | None, limit: int
) -> Claim | None:
    """Cases whose next_check_at has come, in that order (the index), after `after`."""
    stmt = select_records().add_columns(_c.next_check_at).where(_c.next_check_at <= now)
    if after is not None:
        # typed like the column: naive UTC, whatever the server's time zone
        key = tuple_(bindparam(None, after[0], UTCDateTime()), bindparam(None, after[1]))
        stmt = stmt.where(tuple_(_c.next_check_at, _c.id) > key)
    stmt = stmt.order_by(_c.next_check_at, _c.id).limit(limit)
    return _claim(store, stmt, lambda row: (row.next_check_at, row.id))


def claim_open(store: Store, after: int | None, limit: int) -> Claim | None:
    """Every open case, by id, after `after`."""
    stmt = select_records().where(_c.status.in_(_OPEN), _c.id > (after or 0))
    return _claim(store, stmt.order_by(_c.id).limit(limit), lambda row: row.id)


def _claim(store: Store, stmt, cursor_of) -> Claim | None:
    locking = store.dialect == "postgresql"
    if locking:
        stmt = stmt.with_for_update(skip_locked=True, of=schema.cases)
    conn = store.engine.connect()
    try:
        txn = conn.begin()
        rows = conn.execute(stmt).all()
        if not rows:
            conn.close()
            return None
        facts = with_events(conn, rows)
        fired = fired_of(conn, [r.id for r, _ in facts])
        if not locking:
            conn.close()
            conn = txn = None
        return Claim(store, facts, fired, cursor_of(rows[-1]), conn, txn)
    except BaseException:
        if conn is not None:
            conn.close()
        raise


def set_next_checks(conn: Connection, plans: Sequence[Plan]) -> set[int]:
    """Set next_check_at where the version is still the one read; returns those case ids.

    The engine's hottest write: one statement per batch on both databases (PostgreSQL: arrays;
    SQLite: one JSON array, inside a BEGIN IMMEDIATE transaction), each instant in the form the
    column stores (SQLite: the text form SQLAlchemy stores DATETIME in).
    """
    if not plans:
        return set()
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "UPDATE cases SET next_check_at = v.t"
            " FROM unnest(%s::bigint[], %s::integer[], %s::timestamp[]) AS v(id, version, t)"
            " WHERE cases.id = v.id AND cases.version = v.version RETURNING cases.id",
            (
                [i for i, _, _ in plans],
                [v for _, v, _ in plans],
                [None if t is None else t.astimezone(UTC).replace(tzinfo=None) for *_, t in plans],
            ),
        )
        return {r[0] for r in rows}
    # One statement: the plans travel as one JSON array; SQLite >= 3.35 has RETURNING.
    payload = json.dumps(
        [
            [i, v, None if t is None else t.astimezone(UTC).strftime(_SQLITE_DATETIME)]
            for i, v, t in plans
        ]
    )
    rows = conn.exec_driver_sql(
        "UPDATE cases SET next_check_at = json_extract(p.value, '$[2]')"
        " FROM json_each(?) AS p"
        " WHERE cases.id = json_extract(p.value, '$[0]')"
        " AND cases.version = json_extract(p.value, '$[1]') RETURNING cases.id",
        (payload,),
    )
    return {r[0] for r in rows}


# ----- the engine's own small facts -----------------------------------------------------------


def get_state(store: Store, key: str) -> str | None:
    with store.read() as conn:
        return conn.execute(select(_s.value).where(_s.key == key)).scalar()


def set_state(store: Store, key: str, value: str, now: datetime) -> None:
    with store.begin() as conn:
        store.upsert(
            conn,
            schema.engine_state,
            [{"key": key, "value": value, "updated_at": now}],
            ["key"],
        )
