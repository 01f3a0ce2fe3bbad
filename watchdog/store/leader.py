"""Who does the work only one process may do: poll Telegram (one poller per bot token) and
the SQL sources on PostgreSQL replicas; and one daemon per SQLite file.

PostgreSQL: a session advisory lock held on a connection of its own. If the leader dies its
connection closes and the server releases the lock; another replica's next try takes it.
SQLite: the database has one writer anyway; a second daemon on the same file is refused by an
OS lock beside the file (released by the OS when the process dies, even by kill -9).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy import Connection, text

from watchdog.store import Store
from watchdog.store.db import StoreError, sqlite_file

TELEGRAM_POLLER = 0x7774_7467  # "wttg"
SQL_POLLER = 0x7774_7371  # "wtsq"


class Leadership:
    def __init__(self, store: Store, key: int):
        self.store = store
        self.key = key
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self.store.dialect != "postgresql"

    def try_acquire(self) -> bool:
        """Take the lock if free; True while this process holds it."""
        if self.store.dialect != "postgresql":
            return True
        if self._conn is not None:
            return self.still_held()
        conn = self.store.engine.connect()
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        """False when the lock's connection is gone (the server restarted): lead no more."""
        if self._conn is None:
            return self.store.dialect != "postgresql"
        try:
            self._conn.execute(text("SELECT 1")).scalar()
            self._conn.commit()
            return True
        except Exception:
            self._drop()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        except Exception:
            pass  # the connection is gone, and the lock with it
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class DaemonLock:
    """One daemon per SQLite file: an OS lock on `<database>.daemon-lock`; nothing to hold on
    PostgreSQL, where replicas share the work."""

    def __init__(self, store: Store):
        self.path: Path | None = None
        db = sqlite_file(store.engine.url)
        if db is not None:
            self.path = db.with_name(db.name + ".daemon-lock")
        self._file = None

    def acquire(self) -> None:
        if self.path is None:
            return
        import fcntl

        f = open(self.path, "a+")  # noqa: SIM115 - held for the daemon's life
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            f.close()
            raise StoreError(
                f"{self.path.with_suffix('')}: another watchdog daemon (pid {pid}) already runs "
                "on this SQLite database; run one daemon per SQLite file, or use PostgreSQL for "
                "several replicas",
                exit_code=1,
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None
