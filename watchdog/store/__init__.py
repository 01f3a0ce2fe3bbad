"""The one port to the database. Everything else asks the Store; nobody else writes SQL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from watchdog.store import schema
from watchdog.store.db import WRITE, open_database, upgrade

__all__ = ["Store", "schema"]

_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def _naive_utc(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(UTC).replace(tzinfo=None)


def _sqlite_text(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).strftime(_SQLITE_DATETIME)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        # Transactions of this engine take SQLite's write lock when they begin (db._sqlite_begin)
        self._writer = engine.execution_options(**{WRITE: True})

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open a database; a SQLite file is created and migrated on first use."""
        return cls(open_database(url, migrate=migrate))

    def upgrade(self) -> None:
        upgrade(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: on SQLite it holds the write lock from its first statement, so
        what it reads stays true until it commits (BEGIN IMMEDIATE)."""
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (a deferred transaction: it never blocks a writer)."""
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    def upsert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[dict[str, Any]],
        keys: Sequence[str],
        update: Iterable[str] | None = None,
    ) -> None:
        """INSERT ... ON CONFLICT (keys) DO UPDATE, on SQLite and PostgreSQL alike.

        With `update` empty the conflict is ignored (DO NOTHING): an idempotent insert.
        """
        if not rows:
            return
        cols = list(update) if update is not None else [c for c in rows[0] if c not in keys]
        if not cols:
            conn.execute(self.insert_ignoring(conn, table, keys), list(rows))
            return
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols}
        )
        conn.execute(stmt, list(rows))

    def _insert(self, table: Table):
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    def insert_ignoring(self, conn: Connection, table: Table, keys: Sequence[str]):
        """INSERT ... ON CONFLICT (keys) DO NOTHING; add .returning() to learn what was new."""
        return self._insert(table).on_conflict_do_nothing(index_elements=list(keys))

    def set_next_checks(
        self,
        conn: Connection,
        plans: Sequence[tuple[int, datetime | None, datetime]],
    ) -> None:
        """Set many cases' next_check_at at once: the engine's hottest write.

        Each plan is (case id, next instant, the case's updated_at when it was read). A case
        changed since it was read (an import, an event) keeps the `now` its change set, so it
        is evaluated again rather than planned from stale data.
        On SQLite the values go straight to the driver in the text form SQLAlchemy stores
        DATETIME in (tests/integration/test_store.py checks they read back the same).
        """
        if not plans:
            return
        if self.dialect == "sqlite":
            rows = [(_sqlite_text(t), i, _sqlite_text(seen)) for i, t, seen in plans]
            conn.exec_driver_sql(
                "UPDATE cases SET next_check_at = ? WHERE id = ? AND updated_at = ?", rows
            )
            return
        if self.dialect == "postgresql":  # one statement for the whole batch
            conn.exec_driver_sql(
                "UPDATE cases SET next_check_at = v.t"
                " FROM unnest(%s::bigint[], %s::timestamp[], %s::timestamp[]) AS v(id, t, seen)"
                " WHERE cases.id = v.id AND cases.updated_at = v.seen",
                (
                    [i for i, _, _ in plans],
                    [_naive_utc(t) for _, t, _ in plans],
                    [_naive_utc(seen) for _, _, seen in plans],
                ),
            )
            return
        c = schema.cases.c
        conn.execute(
            update(schema.cases)
            .where(c.id == bindparam("case_id"), c.updated_at == bindparam("seen"))
            .values(next_check_at=bindparam("next_at")),
            [{"case_id": i, "next_at": t, "seen": seen} for i, t, seen in plans],
        )

    def existing(self, conn: Connection, column, values: Sequence[Any]) -> dict[Any, Any]:
        """Map key -> row for the rows whose `column` is in `values` (chunked for SQLite)."""
        out: dict[Any, Any] = {}
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            for row in conn.execute(select(column.table).where(column.in_(chunk))):
                out[row._mapping[column.name]] = row
        return out
