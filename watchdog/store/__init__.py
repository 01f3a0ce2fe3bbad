"""The one port to the database. Nothing outside this package builds SQL, holds a connection or
sees the tables; it calls the named functions of the modules here, one per concern:

- `cases`: cases and their events (read for the engine, board and reports; written by sources)
- `plans`: the engine's batches: claim due or open cases, write plans, firings and findings
  guarded by the row version
- `firings`, `findings`, `directory`: what the engine fired, what the admin should look at,
  the units/officials/procedures mirrored from the configuration
- `db`: opening a database, migrations
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table

from watchdog.store import schema
from watchdog.store.db import WRITE, open_database, upgrade

__all__ = ["Store", "schema"]


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

    def write_connection(self) -> Connection:
        """A connection whose transactions are write transactions (see `begin`); the caller
        begins, commits and closes it (the engine's batches span evaluation this way)."""
        return self._writer.connect()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection (a deferred transaction: it never blocks a writer)."""
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    def optimize(self) -> None:
        """Keep the query planner's statistics current (SQLite: ANALYZE with `analysis_limit`,
        which samples each index, so it takes milliseconds on a million cases; `PRAGMA
        optimize` alone re-analyzes only tables whose row count changed tenfold). Without it,
        statistics taken before the cases were planned make SQLite scan the table for the board
        instead of reading its index. PostgreSQL's autovacuum does this itself."""
        if self.dialect != "sqlite":
            return
        with self.begin() as conn:
            conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
            conn.exec_driver_sql("ANALYZE")

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
            conn.execute(self.insert_ignoring(table, keys), list(rows))
            return
        stmt = self.insert_stmt(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols}
        )
        conn.execute(stmt, list(rows))

    def insert_stmt(self, table: Table):
        """INSERT for this database's dialect (it knows ON CONFLICT). The PostgreSQL dialect is
        imported only where it is used (40 ms of every SQLite command's start otherwise)."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def insert_ignoring(self, table: Table, keys: Sequence[str]):
        """INSERT ... ON CONFLICT (keys) DO NOTHING; add .returning() to learn what was new."""
        return self.insert_stmt(table).on_conflict_do_nothing(index_elements=list(keys))
