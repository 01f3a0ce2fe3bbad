"""Opening the database: engine set-up, SQLite pragmas, and schema migrations (Alembic)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 10_000


class StoreError(RuntimeError):
    """An expected problem with the database; the message is one line for the user."""


class SchemaOutdated(StoreError):
    """The database needs `watchdog db upgrade` before the daemon can use it."""


def open_database(url: str, *, migrate: bool = True) -> Engine:
    """The engine for a database URL, ready for use: a SQLite file is created and migrated on
    first use (with `migrate`); other databases must be at the latest schema already."""
    engine = create_db_engine(url)
    if migrate:
        ensure_schema(engine)
    return engine


def create_db_engine(url: str) -> Engine:
    """An engine with the settings we rely on: WAL and a busy timeout on SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, future=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    # No server-side prepared statements: a plan made while a table is empty (a seq scan)
    # would be kept for the whole import. See bench/import.py.
    connect_args = {"prepare_threshold": None} if parsed.drivername.endswith("psycopg") else {}
    return create_engine(parsed, pool_pre_ping=True, future=True, connect_args=connect_args)


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


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("watchdog.store") / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(_alembic_config(engine), revision)


def ensure_schema(engine: Engine) -> None:
    """SQLite files are migrated on first use; other databases must be upgraded explicitly."""
    if current_revision(engine) == head_revision(engine):
        return
    if engine.dialect.name == "sqlite":
        upgrade(engine)
        return
    raise SchemaOutdated(
        f"database schema is at {current_revision(engine) or 'nothing'}, "
        f"expected {head_revision(engine)}: run `watchdog db upgrade`"
    )
