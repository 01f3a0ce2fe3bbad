"""Opening the database: engine set-up, SQLite pragmas, schema migrations (Alembic), and the
one-line messages for what can go wrong on the way (`StoreError`)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Key of the PostgreSQL advisory lock held while one process checks and upgrades the schema.
MIGRATION_LOCK_KEY = 0x7774_6468_6D69_6772  # "wtdhmigr"
SUPPORTED = ("sqlite", "postgresql")
URL_FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DATABASE"


class StoreError(RuntimeError):
    """An expected problem with the database; the message is one line for the user.

    `exit_code` is 2 when the configuration is wrong (the URL, the driver, the login) and 1 when
    the database cannot be used right now (server down, read-only, not a database, locked)."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class SchemaOutdated(StoreError):
    """The database needs `watchdog db upgrade` before the daemon can use it."""

    exit_code = 2


def display_url(url: str | URL) -> str:
    """The URL as the user may see it: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", str(url))


# ----- opening ----------------------------------------------------------------------------------


def open_database(url: str, *, migrate: bool = True) -> Engine:
    """The engine for a database URL, ready for use: a SQLite file is created and migrated on
    first use (with `migrate`); other databases must be at the latest schema already. Every
    expected problem is raised as a StoreError with a one-line message."""
    engine = create_db_engine(url, create_folder=True)
    try:
        if migrate:
            ensure_schema(engine, url)
        else:
            with engine.connect():
                pass  # connect now: a wrong URL is reported here, not by the first query
    except Exception as e:
        engine.dispose()
        error = as_store_error(e, url)
        if error is None or error is e:
            raise
        raise error from e
    return engine


def create_db_engine(url: str, *, create_folder: bool = False) -> Engine:
    """An engine with the settings we rely on: WAL and a busy timeout on SQLite. Raises
    StoreError for a URL that cannot work (unknown scheme, missing driver, a folder)."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            parsed = _sqlite_url(parsed, url, create_folder=create_folder)
            engine = create_engine(
                parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, future=True
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No server-side prepared statements: a plan made while a table is empty (a seq scan)
        # would be kept for the whole import. See bench/import.py.
        connect_args = {"prepare_threshold": None} if parsed.drivername.endswith("psycopg") else {}
        return create_engine(parsed, pool_pre_ping=True, future=True, connect_args=connect_args)
    except ImportError as e:
        driver = e.name or str(e)
        raise StoreError(
            f"{display_url(url)}: the database driver {driver} is not installed: install it, "
            f"or use postgresql+psycopg:// (installed with watchdog) or sqlite:///",
            exit_code=2,
        ) from e
    except ArgumentError as e:
        raise StoreError(f"{display_url(url)}: {_one_line(e)}: use {URL_FORMS}", exit_code=2) from e


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StoreError(
            f"database.url {display_url(url)!r} is not a database URL: use {URL_FORMS}",
            exit_code=2,
        ) from e
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        what = f"watchdog does not support {backend} databases"  # one SQLAlchemy knows
        try:
            parsed.get_dialect()
        except NoSuchModuleError:
            what = f"unknown database URL scheme {parsed.drivername!r}"
        except Exception:  # a dialect SQLAlchemy knows but cannot load: still not supported
            pass
        raise StoreError(f"{display_url(url)}: {what}: use {URL_FORMS}", exit_code=2)
    return parsed


def sqlite_file(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for other databases and for memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    name = parsed.database
    if name.startswith("file:"):
        name = name[len("file:") :]
        if name.startswith("//"):  # file://host/path: only an empty host or localhost is valid
            name = "/" + name[2:].partition("/")[2]
    if name in ("", ":memory:") or parsed.query.get("mode") == "memory":
        return None
    return Path(name)


def _sqlite_url(parsed: URL, url: str, *, create_folder: bool) -> URL:
    path = sqlite_file(parsed)
    if path is not None:
        if path.is_dir():
            raise StoreError(
                f"{display_url(url)}: is a directory, not a database file: "
                "give a file path in database.url, e.g. sqlite:///var/watchdog.db",
                exit_code=2,
            )
        if create_folder and not path.parent.is_dir():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"{display_url(url)}: cannot create the folder {path.parent}: "
                    f"{e.strerror or e}: create it, or give another path in database.url"
                ) from e
    # With uri=true SQLite reads the name as a URI only when it begins with "file:"; without
    # that, `?mode=ro` would become part of a new file's name.
    if parsed.query.get("uri") in ("true", "1") and not (parsed.database or "").startswith("file:"):
        parsed = parsed.set(database="file:" + quote(parsed.database or ""))
    return parsed


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # We issue BEGIN ourselves (below): pysqlite's own transaction handling would begin
    # lazily and deferred, so a read-then-write transaction could act on a stale read.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# Execution option that makes a SQLite transaction take the write lock when it begins.
WRITE = "watchdog_write"


def _sqlite_begin(conn) -> None:
    """The SQLAlchemy pysqlite recipe: write transactions start with BEGIN IMMEDIATE, so what
    they read cannot change before they write; reads start deferred and never block a writer."""
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# ----- errors -----------------------------------------------------------------------------------


def _one_line(e: BaseException | str) -> str:
    text = str(getattr(e, "orig", None) or e)
    text = text.split("\n(Background on this error", 1)[0].split("\n[SQL:", 1)[0]
    return " ".join(text.split())


def as_store_error(e: BaseException, url: str | None) -> StoreError | None:
    """The one-line StoreError for a database problem raised anywhere (connect, first query,
    a write deep inside a command); None when `e` is not a problem of the database."""
    if isinstance(e, StoreError):
        return e
    shown = display_url(url) if url else "the database"
    if isinstance(e, ArgumentError):
        return StoreError(f"{shown}: {_one_line(e)}: use {URL_FORMS}", exit_code=2)
    if not isinstance(e, DBAPIError):
        return None
    why = _one_line(e)
    low = why.lower()
    if "file is not a database" in low or "file is encrypted" in low:
        path = sqlite_file(url) if url else None
        return StoreError(
            f"{shown}: {path or 'the file'} is not a SQLite database: point database.url at "
            "the watchdog database or at a new file"
        )
    if "readonly database" in low or "read-only transaction" in low:
        return StoreError(
            f"{shown}: the database is read-only: let the watchdog user write to it "
            "(and, for SQLite, to its folder)"
        )
    if "database is locked" in low:
        return StoreError(
            f"{shown}: the database stayed locked by another process for "
            f"{SQLITE_BUSY_TIMEOUT_MS // 1000} s: try again when it has finished"
        )
    if "unable to open database file" in low:
        return StoreError(
            f"{shown}: cannot open the database file: check that its folder exists and "
            "that the watchdog user may write there"
        )
    if "disk is full" in low or "disk i/o error" in low:
        return StoreError(f"{shown}: {why}: free space or check the disk, then try again")
    if "password authentication failed" in low or ("role " in low and "does not exist" in low):
        reason = why.rsplit("FATAL:", 1)[-1].strip()
        return StoreError(
            f"{shown}: the server refused the login ({reason}): "
            "check the user and password in database.url",
            exit_code=2,
        )
    if "database " in low and "does not exist" in low:
        reason = why.rsplit("FATAL:", 1)[-1].strip()
        return StoreError(
            f"{shown}: {reason}: create it (createdb) or correct database.url", exit_code=2
        )
    if _connection_failed(low):
        reason = why.split(" failed: ", 1)[-1] if " failed: " in why else why
        reason = reason.split(" Is the server running", 1)[0]
        return StoreError(
            f"{shown}: cannot connect to the database server ({reason}): check that it is "
            "running and that database.url names it"
        )
    return StoreError(f"{shown}: database error: {why} (set WATCHDOG_DEBUG=1 for the traceback)")


def is_outage(e: BaseException) -> bool:
    """Whether `e` says the database cannot be used right now (gone, restarting, locked, the
    disk full): worth waiting for. A refused value, a broken constraint or a bug is not."""
    if isinstance(e, StoreError):
        return e.exit_code != 2
    if isinstance(e, DBAPIError) and e.connection_invalidated:
        return True
    if isinstance(e, OperationalError) and _schema_problem(str(e.orig).lower()):
        return False  # SQLite reports these as operational too: waiting mends nothing
    return isinstance(e, OperationalError | InterfaceError)


# SQLite's OperationalErrors about the statement, the schema or a damaged file, which waiting
# does not mend: a daemon that took them for an outage probed, resumed and failed again every
# second.
_SCHEMA_PROBLEMS = (
    "no such table",
    "no such index",
    "no such column",
    "no such function",
    "has no column named",
    "syntax error",
    "ambiguous column name",
    "malformed",
)


def _schema_problem(low: str) -> bool:
    return any(s in low for s in _SCHEMA_PROBLEMS)


def _connection_failed(low: str) -> bool:
    return any(
        s in low
        for s in (
            "connection failed",
            "connection refused",
            "failed to resolve host",
            "could not translate host name",
            "server closed the connection",
            "timeout expired",
            "connection timed out",
            "no route to host",
            "network is unreachable",
            "terminating connection",
            "consuming input failed",
            "the connection is lost",
        )
    )


# ----- migrations -------------------------------------------------------------------------------


# Alembic (90 ms of imports) is loaded only to migrate: every command checks the schema, so the
# check reads the revision table and the migration files' names itself.


def _alembic_config(engine: Engine, connection: Connection | None = None):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("watchdog.store") / "migrations"))
    cfg.attributes["engine"] = engine
    if connection is not None:
        cfg.attributes["connection"] = connection  # migrations/env.py runs on it
    return cfg


@cache
def _script():
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(resources.files("watchdog.store") / "migrations"))


@cache
def head_revision(engine: Engine | None = None) -> str | None:
    """The latest migration: migrations/versions/NNNN_*.py, each with `revision = "NNNN"` and
    `down_revision` the one before (tests/integration/test_migrations.py checks this against
    Alembic's own reading)."""
    folder = resources.files("watchdog.store") / "migrations" / "versions"
    numbers = [
        f.name.split("_", 1)[0]
        for f in folder.iterdir()
        if f.name.endswith(".py") and f.name[:4].isdigit()
    ]
    return max(numbers) if numbers else None


def _revision(conn: Connection) -> str | None:
    from sqlalchemy import inspect

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return _revision(conn)


MIGRATION_LOCK_WAIT_S = 120


@contextmanager
def _file_lock(db_file: Path | None) -> Iterator[None]:
    """An OS lock on `<database>.migrate-lock` for the whole check-and-upgrade: SQLite's own
    write lock alone leaves windows (switching a new file to WAL, the first schema read) in
    which a second process can time out. Released by the OS if the process dies."""
    if db_file is None:
        yield
        return
    import fcntl
    import time

    path = db_file.with_name(db_file.name + ".migrate-lock")
    try:
        f = open(path, "a+b")  # noqa: SIM115 - closed below
    except OSError:  # a read-only folder: the database's own lock is all there is
        yield
        return
    with f:
        deadline = time.monotonic() + MIGRATION_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"{db_file}: another process has been migrating this database for "
                        f"{MIGRATION_LOCK_WAIT_S} s: try again when it has finished"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that only one process at a time holds for checking and
    changing the schema; the transaction commits when the block ends.

    SQLite: BEGIN IMMEDIATE (the write lock), inside the OS file lock its callers hold.
    PostgreSQL: a session advisory lock, taken and committed before the transaction of the
    migration begins, so what that transaction reads is what the previous holder committed.
    """
    if engine.dialect.name == "sqlite":
        with engine.execution_options(**{WRITE: True}).begin() as conn:
            yield conn
        return
    advisory = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if advisory:
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            if advisory and not conn.invalidated:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                conn.commit()


def _upgrade_locked(engine: Engine, revision: str) -> None:
    with _migration_lock(engine) as conn:
        current = _revision(conn)  # again: another process may have migrated while we waited
        if revision == "head" and current == head_revision():
            return
        if current is not None and not _known(current):
            raise StoreError(
                f"{display_url(engine.url)}: the database schema is at {current}, which this "
                f"version of watchdog does not know (latest {head_revision()}): run the newer "
                "version that wrote it"
            )
        from alembic import command

        command.upgrade(_alembic_config(engine, conn), revision)


def _known(revision: str) -> bool:
    from alembic.util.exc import CommandError

    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations; safe when several processes do it at once (they take turns)."""
    with _file_lock(sqlite_file(engine.url)):
        _upgrade_locked(engine, revision)


def ensure_schema(engine: Engine, url: str | None = None) -> None:
    """SQLite files are migrated on first use; other databases must be upgraded explicitly.

    On SQLite the first connection (which switches a new file to WAL) and the check happen
    under the OS file lock too, so processes opening a brand-new file take turns."""
    if engine.dialect.name == "sqlite":
        with _file_lock(sqlite_file(engine.url)):
            if current_revision(engine) != head_revision():
                _upgrade_locked(engine, "head")
        return
    current = current_revision(engine)
    if current == head_revision():
        return
    raise SchemaOutdated(_outdated(display_url(url or engine.url), current))


def _outdated(shown: str, current: str | None) -> str:
    state = f"is at schema {current}" if current else "has no watchdog tables yet"
    return f"{shown}: the database {state}, expected {head_revision()}: run `watchdog db upgrade`"


def check_database(url: str) -> str:
    """What `watchdog check` says about the database, one line; raises StoreError. A SQLite file
    that does not exist yet is not created."""
    shown = display_url(url)
    path = sqlite_file(_parse(url))
    if path is not None and not path.exists() and not path.is_symlink():
        folder = next(p for p in (path.parent, *path.parent.parents) if p.exists())
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise StoreError(
                f"{shown}: cannot create the database file: {folder} is not a writable folder"
            )
        return f"database: OK ({shown}: a new file, created on first use)"
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            current = _revision(conn)
            read_only = engine.dialect.name == "postgresql" and (
                conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
            )
        if read_only:
            raise StoreError(f"{shown}: the database is read-only (a standby server?)")
        if engine.dialect.name == "sqlite":
            # A write that changes nothing, rolled back: a read-only file fails here rather than
            # in the middle of the first import. (BEGIN IMMEDIATE alone succeeds on one.)
            with engine.execution_options(**{WRITE: True}).connect() as conn:
                version = conn.exec_driver_sql("PRAGMA user_version").scalar()
                conn.exec_driver_sql(f"PRAGMA user_version = {int(version or 0)}")
                conn.rollback()
    except Exception as e:
        error = as_store_error(e, url)
        if error is None or error is e:
            raise
        raise error from e
    finally:
        engine.dispose()
    head = head_revision()
    if current == head:
        return f"database: OK ({shown}, schema {head})"
    if engine.dialect.name == "sqlite":
        return (
            f"database: OK ({shown}, schema {current or 'empty'}: upgraded to {head} on first use)"
        )
    raise SchemaOutdated(_outdated(shown, current))
