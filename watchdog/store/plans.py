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

A million cases go through here in a full plan, so both directions skip SQLAlchemy's row
processing: the claim hands over the case rows as the driver returns them (the fields of
`CaseRecord` in order; `Claim.instants` says where the instants are, `Claim.text_instants`
whether they are text, as on SQLite, or naive UTC datetimes), and the commit takes each
batch's writes as two JSON arrays, written by one statement each:

- plans: `[[case id, version read, next check or null, due, due soon at, waiting since, rank,
  supplements], ...]`: what the reads need (`engine.deadline.Standing`) after the next check;
  a plan of three leaves them empty (`plan_version` null: computed on the fly by the reads)
- firings: `[[case id, stage, step, version, repeat number, fire_at, recipients, urgent,
  template, attach, due_at or null], ...]`, recipients as `[[recipient, channel, address]]`

with every instant as naive-UTC text `YYYY-MM-DD HH:MM:SS.ffffff` (`instant_text`), the form
SQLite stores and compares and PostgreSQL reads as a timestamp.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, literal_column, or_, select, tuple_

from watchdog.domain import OPEN_STATUSES, RECORD_FIELDS, CaseEvent, Fired
from watchdog.store import Store, schema
from watchdog.store.cases import events_of
from watchdog.store.findings import NewFinding, resolve_case_findings, write_findings
from watchdog.store.firings import fired_of
from watchdog.store.schema import UTCDateTime

_c = schema.cases.c
_s = schema.engine_state.c
_OPEN = [int(s) for s in OPEN_STATUSES]
_ID_AT = RECORD_FIELDS.index("id")

# The record's fields as the driver returns them: untyped, so SQLAlchemy processes none of them
# (a million rows in a plan); the worker types them (`watchdog.engine.worker.records`).
RAW_RECORD_COLUMNS = tuple(literal_column(f"cases.{name}") for name in RECORD_FIELDS)
INSTANTS = tuple(
    i for i, name in enumerate(RECORD_FIELDS) if isinstance(_c[name].type, UTCDateTime)
)

# (case id, version read, next instant or None)
Plan = tuple[int, int, datetime | None]
# (firing id, (case id, stage, step, version, repeat number)) of each firing written
Written = list[tuple[int, tuple[int, str, str, str, int]]]


def instant_text(t: datetime) -> str:
    """An instant in the form the commit's JSON carries: naive UTC, microseconds always."""
    return t.astimezone(UTC).isoformat(" ", "microseconds")[:26]


class Claim:
    """A batch of cases claimed for evaluation; `commit` writes its results, `release` drops it."""

    def __init__(
        self,
        store: Store,
        rows: list[tuple],
        events: Mapping[int, Sequence[CaseEvent]],
        fired: dict[int, dict[tuple, Fired]],
        cursor: Any,
        conn: Connection | None,
        txn: Any,
    ):
        self.store = store
        self.rows = rows  # CaseRecord fields, in order, as the driver returned them
        self.events = events
        self.fired = fired
        self.cursor = cursor
        self.instants = INSTANTS
        self.text_instants = store.dialect == "sqlite"
        self._conn = conn
        self._txn = txn

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[int]:
        return [r[_ID_AT] for r in self.rows]

    def commit(
        self,
        plans: str,
        firings: str,
        findings: Sequence[NewFinding],
        now: datetime,
        rules_hash: str,
        on_written: Callable[[Connection, Written], None] | None = None,
        *,
        every_standing: bool = False,
    ) -> tuple[list[int], set[int]]:
        """Write the plans (JSON, see above), then the firings (JSON) and findings of the cases
        whose version still matches. Returns the ids of the firings written and the ids of the
        cases found changed (stale). `on_written` runs in the same transaction with the
        firings just written, with their keys. `every_standing`: write each standing without
        comparing it with the stored one (a bulk plan, `bulk_standings`)."""
        if self._conn is None:
            self._conn = self.store.write_connection()
            self._txn = self._conn.begin()
        conn = self._conn
        try:
            current = set_next_checks_json(conn, plans, every_standing=every_standing)
            stale = set(self.ids) - current
            written = insert_firings_json(
                conn, firings, stale, now, rules_hash, keys=on_written is not None
            )
            resolve_case_findings(conn, sorted(current), now)
            write_findings(self.store, conn, [x for x in findings if x.case_id in current], now)
            if on_written and written:
                on_written(conn, written)
            self._txn.commit()
        finally:
            self.release()
        return [w[0] for w in written], stale

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()  # rolls back whatever was not committed
            self._conn = None


def claim_due(
    store: Store, now: datetime, after: tuple[datetime, int] | None, limit: int
) -> Claim | None:
    """Cases whose next_check_at has come, in that order (the index), after `after`."""
    stmt = (
        select(*RAW_RECORD_COLUMNS, _c.next_check_at)
        .select_from(schema.cases)
        .where(_c.next_check_at <= now)
    )
    if after is not None:
        # typed like the column: naive UTC, whatever the server's time zone
        key = tuple_(bindparam(None, after[0], UTCDateTime()), bindparam(None, after[1]))
        stmt = stmt.where(tuple_(_c.next_check_at, _c.id) > key)
    stmt = stmt.order_by(_c.next_check_at, _c.id).limit(limit)
    return _claim(store, stmt, lambda row: (row[-1], row[_ID_AT]))


def claim_open(store: Store, after: int | None, limit: int) -> Claim | None:
    """Every open case, and every closed one whose standing is not stored for its version
    (the reads need it: after migration 0006, or a case closed without a plan), by id, after
    `after`."""
    unplanned = or_(_c.plan_version.is_(None), _c.plan_version != _c.version)
    stmt = select(*RAW_RECORD_COLUMNS).select_from(schema.cases)
    stmt = stmt.where(or_(_c.status.in_(_OPEN), unplanned), _c.id > (after or 0))
    return _claim(store, stmt.order_by(_c.id).limit(limit), lambda row: row[_ID_AT])


def _claim(store: Store, stmt, cursor_of) -> Claim | None:
    locking = store.dialect == "postgresql"
    if locking:
        stmt = stmt.with_for_update(skip_locked=True, of=schema.cases)
    conn = store.engine.connect()
    try:
        txn = conn.begin()
        rows = [tuple(r) for r in conn.execute(stmt).all()]
        if not rows:
            conn.close()
            return None
        ids = [r[_ID_AT] for r in rows]
        events = events_of(conn, ids)
        fired = fired_of(conn, ids)
        if not locking:
            conn.close()
            conn = txn = None
        return Claim(store, rows, events, fired, cursor_of(rows[-1]), conn, txn)
    except BaseException:
        if conn is not None:
            conn.close()
        raise


def set_next_checks(conn: Connection, plans: Sequence[Plan]) -> set[int]:
    """Set next_check_at where the version is still the one read; returns those case ids."""
    if not plans:
        return set()
    payload = [[i, v, None if t is None else instant_text(t)] for i, v, t in plans]
    return set_next_checks_json(conn, json.dumps(payload))


def set_next_checks_json(conn: Connection, plans: str, *, every_standing: bool = False) -> set[int]:
    """`set_next_checks` for plans already in the commit's JSON form (SQLite: inside a BEGIN
    IMMEDIATE transaction): the next checks, written only where the version still matches,
    returning the ids written (the engine's hottest write); then the standing of the cases
    whose standing changed (few after a rules change, none in most ticks: rewriting an unchanged
    standing would cost the board's indexes a delete and an insert each)."""
    pg = conn.dialect.name == "postgresql"
    if every_standing:  # all of them new (a bulk plan): one statement writes everything
        return set(conn.exec_driver_sql(_EVERYTHING[pg], (plans,)).scalars().all())
    rows = conn.exec_driver_sql(_NEXT_CHECKS[pg], (plans,))
    written = set(rows.scalars().all())
    if written:
        conn.exec_driver_sql(_STANDINGS[pg], (plans,))
    return written


_NEXT_CHECKS = {
    True: "UPDATE cases SET next_check_at = (p.value ->> 2)::timestamp"
    " FROM json_array_elements(%s::json) AS p(value)"
    " WHERE cases.id = (p.value ->> 0)::bigint"
    " AND cases.version = (p.value ->> 1)::integer RETURNING cases.id",
    # SQLite >= 3.38 (->>, and RETURNING since 3.35)
    False: "UPDATE cases SET next_check_at = p.value ->> 2"
    " FROM json_each(?) AS p"
    " WHERE cases.id = p.value ->> 0 AND cases.version = p.value ->> 1"
    " RETURNING cases.id",
}
_EVERYTHING = {
    True: "UPDATE cases SET next_check_at = (p.value ->> 2)::timestamp,"
    " plan_due_at = (p.value ->> 3)::timestamp, plan_due_soon_at = (p.value ->> 4)::timestamp,"
    " plan_waiting_since = (p.value ->> 5)::timestamp, plan_rank = (p.value ->> 6)::smallint,"
    " plan_supplements = (p.value ->> 7)::smallint,"
    " plan_version = CASE WHEN p.value ->> 6 IS NULL THEN NULL ELSE cases.version END"
    " FROM json_array_elements(%s::json) AS p(value)"
    " WHERE cases.id = (p.value ->> 0)::bigint"
    " AND cases.version = (p.value ->> 1)::integer RETURNING cases.id",
    False: "UPDATE cases SET next_check_at = p.value ->> 2,"
    " plan_due_at = p.value ->> 3, plan_due_soon_at = p.value ->> 4,"
    " plan_waiting_since = p.value ->> 5, plan_rank = p.value ->> 6,"
    " plan_supplements = p.value ->> 7,"
    " plan_version = CASE WHEN p.value ->> 6 IS NULL THEN NULL ELSE cases.version END"
    " FROM json_each(?) AS p"
    " WHERE cases.id = p.value ->> 0 AND cases.version = p.value ->> 1"
    " RETURNING cases.id",
}
# A plan of three fields (no standing: rank null) marks the case unplanned for the reads.
_STANDINGS = {
    True: "UPDATE cases SET plan_due_at = s.due, plan_due_soon_at = s.soon,"
    " plan_waiting_since = s.waiting, plan_rank = s.rank, plan_supplements = s.supplements,"
    " plan_version = CASE WHEN s.rank IS NULL THEN NULL ELSE cases.version END"
    " FROM (SELECT (p.value ->> 0)::bigint AS id, (p.value ->> 1)::integer AS version,"
    " (p.value ->> 3)::timestamp AS due, (p.value ->> 4)::timestamp AS soon,"
    " (p.value ->> 5)::timestamp AS waiting, (p.value ->> 6)::smallint AS rank,"
    " (p.value ->> 7)::smallint AS supplements"
    " FROM json_array_elements(%s::json) AS p(value)) AS s"
    " WHERE cases.id = s.id AND cases.version = s.version AND ("
    " cases.plan_version IS DISTINCT FROM (CASE WHEN s.rank IS NULL THEN NULL"
    " ELSE cases.version END)"
    " OR cases.plan_rank IS DISTINCT FROM s.rank OR cases.plan_due_at IS DISTINCT FROM s.due"
    " OR cases.plan_due_soon_at IS DISTINCT FROM s.soon"
    " OR cases.plan_waiting_since IS DISTINCT FROM s.waiting"
    " OR cases.plan_supplements IS DISTINCT FROM s.supplements)",
    False: "UPDATE cases SET plan_due_at = s.due, plan_due_soon_at = s.soon,"
    " plan_waiting_since = s.waiting, plan_rank = s.rank, plan_supplements = s.supplements,"
    " plan_version = CASE WHEN s.rank IS NULL THEN NULL ELSE cases.version END"
    " FROM (SELECT p.value ->> 0 AS id, p.value ->> 1 AS version, p.value ->> 3 AS due,"
    " p.value ->> 4 AS soon, p.value ->> 5 AS waiting, p.value ->> 6 AS rank,"
    " p.value ->> 7 AS supplements FROM json_each(?) AS p) AS s"
    " WHERE cases.id = s.id AND cases.version = s.version AND ("
    " cases.plan_version IS NOT (CASE WHEN s.rank IS NULL THEN NULL ELSE cases.version END)"
    " OR cases.plan_rank IS NOT s.rank OR cases.plan_due_at IS NOT s.due"
    " OR cases.plan_due_soon_at IS NOT s.soon OR cases.plan_waiting_since IS NOT s.waiting"
    " OR cases.plan_supplements IS NOT s.supplements)",
}


_FIRING_COLUMNS = (
    "case_id, stage, step, version, repeat_no, fire_at, recipients, urgent, template, attach,"
    " due_at, rules_hash, created_at"
)
_KEY_COLUMNS = "id, case_id, stage, step, version, repeat_no"
_INSERT_FIRINGS = {
    "postgresql": (
        f"INSERT INTO firings ({_FIRING_COLUMNS})"
        " SELECT (v ->> 0)::bigint, v ->> 1, v ->> 2, v ->> 3, (v ->> 4)::integer,"
        " (v ->> 5)::timestamp, v -> 6, (v ->> 7)::boolean, v ->> 8, v ->> 9,"
        " (v ->> 10)::timestamp, %s, %s::timestamp"
        " FROM json_array_elements(%s::json) AS v"
        " WHERE (v ->> 0)::bigint <> ALL (%s::bigint[])"
        " ON CONFLICT (case_id, stage, step, version, repeat_no) DO NOTHING RETURNING "
    ),
    "sqlite": (
        f"INSERT INTO firings ({_FIRING_COLUMNS})"
        " SELECT p.value ->> 0, p.value ->> 1, p.value ->> 2, p.value ->> 3, p.value ->> 4,"
        " p.value ->> 5, p.value -> 6, p.value ->> 7, p.value ->> 8, p.value ->> 9,"
        " p.value ->> 10, ?, ?"
        " FROM json_each(?) AS p"
        " WHERE p.value ->> 0 NOT IN (SELECT value FROM json_each(?))"  # WHERE: see ON CONFLICT
        " ON CONFLICT (case_id, stage, step, version, repeat_no) DO NOTHING RETURNING "
    ),
}


def insert_firings_json(
    conn: Connection,
    firings: str,
    stale: Collection[int],
    now: datetime,
    rules_hash: str,
    *,
    keys: bool = False,
) -> Written:
    """Insert the firings of a commit's JSON (see above) whose key is new, except those of
    the `stale` cases; one statement. Returns (id, key) of each firing written (the key is
    () unless `keys`: the ids alone are cheaper to return)."""
    if firings == "[]":
        return []
    dialect = conn.dialect.name
    sql = _INSERT_FIRINGS[dialect] + (_KEY_COLUMNS if keys else "id")
    if dialect == "postgresql":
        params: tuple = (rules_hash, instant_text(now), firings, sorted(stale))
    else:
        params = (rules_hash, instant_text(now), firings, json.dumps(sorted(stale)))
    rows = conn.exec_driver_sql(sql, params).all()
    if keys:
        return [(r[0], tuple(r[1:])) for r in rows]
    return [(r[0], ()) for r in rows]


# ----- the engine's own small facts -----------------------------------------------------------


# The indexes a plan of mostly unplanned cases (at least BULK_MIN of them) rewrites in every
# entry: the board's two and the next checks'; built again at once after it.
BULK_INDEXES = ("ix_cases_board", "ix_cases_unit_board", "ix_cases_open_next_check")
BULK_MIN = 50_000


@contextmanager
def bulk_standings(store: Store) -> Iterator[bool]:
    """Around a re-plan: on SQLite, when most cases have no standing yet (the first plan of
    imported cases, the first after migration 0006), the board's indexes and the next checks'
    are dropped for the plan and built again after it (yields True then). Inserting a million
    standings one by one into two B-trees larger than the cache cost the plan 50 s of writes,
    a million next checks in random order 6 s of the main process; building the three sorted
    takes 3 s. The reads stay correct meanwhile, only slower, and so would a tick of another
    process (a SQLite file has one daemon; its own ticks wait for the plan). A plan that dies
    half way leaves the rules hash unrecorded: the next start plans again and rebuilds them."""
    indexes = [i for i in schema.cases.indexes if i.name in BULK_INDEXES]
    if store.dialect != "sqlite":
        yield False
        return
    with store.read() as conn:
        unplanned = conn.exec_driver_sql(
            "SELECT count(*) FROM cases INDEXED BY ix_cases_unplanned"
            " WHERE plan_version IS NULL OR plan_version <> version"
        ).scalar_one()
        top = conn.execute(select(func.max(_c.id))).scalar_one() or 0
    bulk = unplanned >= BULK_MIN and unplanned * 2 >= top
    if bulk:
        with store.begin() as conn:
            for index in indexes:
                index.drop(conn, checkfirst=True)
    try:
        yield bulk
    finally:
        with store.begin() as conn:
            for index in indexes:
                index.create(conn, checkfirst=True)


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
