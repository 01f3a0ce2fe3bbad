"""Reading someone else's database: the one-stop system an SQL poll source queries.

Not our store: any SQLAlchemy URL (PostgreSQL, MySQL/MariaDB, SQL Server, Oracle, SQLite) with
its driver installed. One connection per poll, no pool, so nothing is held open between polls
and a server that was down is simply reached again next time. The query runs in a read-only
transaction where the server has one (PostgreSQL, MySQL/MariaDB, SQLite) and is never
committed; the real guarantee is a login that may only SELECT (docs/sql-poll.md).

Rows are fetched in pages from a server-side cursor where the driver has one (psycopg, PyMySQL),
so a first poll of a million rows never sits in memory. Every expected problem is an
ExternalSourceError whose message is one line naming the source and its URL, password masked.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from watchdog.store.db import StoreError, _connection_failed, _one_line, display_url

PAGE_ROWS = 1000
# A server that does not answer (a firewall dropping packets) fails the poll after this long
# instead of holding the poller's thread for the system's TCP timeout.
CONNECT_TIMEOUT_S = 15
# Driver -> its keyword for the connect timeout, when the URL does not set one itself.
_CONNECT_TIMEOUT_ARG = {
    "psycopg": "connect_timeout",
    "psycopg2": "connect_timeout",
    "pymysql": "connect_timeout",
    "mysqldb": "connect_timeout",
    "pyodbc": "timeout",
    "pymssql": "login_timeout",
}
# What to install for a driver that is missing, by the module Python could not find.
_INSTALL = {
    "pymysql": "pip install 'tthc-watchdog[mysql]'",
    "MySQLdb": "use mysql+pymysql:// and pip install 'tthc-watchdog[mysql]'",
    "pyodbc": "pip install pyodbc (and Microsoft's ODBC driver for SQL Server)",
    "pymssql": "pip install pymssql",
    "oracledb": "pip install oracledb",
    "psycopg2": "use postgresql+psycopg:// (installed with watchdog)",
}
URL_EXAMPLES = (
    "postgresql+psycopg://USER:PASSWORD@HOST/DB, mysql+pymysql://USER:PASSWORD@HOST/DB "
    "or mssql+pyodbc://USER:PASSWORD@DSN"
)


class ExternalSourceError(StoreError):
    """An external database could not be read: the server, the driver, the URL or the query.
    The message is one line: `source NAME (URL): what went wrong: what to do`."""


class ExternalRows:
    """The result of the query: `columns` as the database names them (PostgreSQL folds unquoted
    names to lower case), then the rows as dicts, page by page (`pages`) or one by one."""

    def __init__(
        self,
        columns: tuple[str, ...],
        result: CursorResult,
        page_rows: int,
        fail: Callable[[BaseException], ExternalSourceError],
    ):
        self.columns = columns
        self._result = result
        self._page_rows = page_rows
        self._fail = fail

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        columns = self.columns
        while True:
            try:
                page = self._result.fetchmany(self._page_rows)
            except SQLAlchemyError as e:
                raise self._fail(e) from e
            if not page:
                return
            yield [dict(zip(columns, row, strict=True)) for row in page]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page


@contextmanager
def read_query(
    source: str,
    url: str,
    query: str,
    params: Mapping[str, Any] | None = None,
    *,
    page_rows: int = PAGE_ROWS,
) -> Iterator[ExternalRows]:
    """Run `query` (named parameters as `:name`, given in `params`) on the database at `url`
    and hand over its rows; the connection is closed, never committed, when the block ends.

    Raises ExternalSourceError for the URL, a missing driver, a server that cannot be reached
    or refuses the login, a query it refuses, and a connection lost while reading. Problems of
    the caller's own block pass through untouched.
    """
    shown = f"source {source} ({display_url(url)})"
    engine = _engine(url, shown)
    conn: Connection | None = None
    try:
        try:
            conn = engine.connect()
        except SQLAlchemyError as e:
            raise _error(e, shown, connecting=True) from e
        try:
            _read_only(conn)
            result = conn.execution_options(yield_per=page_rows).execute(
                text(query), dict(params or {})
            )
        except SQLAlchemyError as e:
            raise _error(e, shown, select=_looks_like_select(query)) from e
        if not result.returns_rows:
            raise ExternalSourceError(
                f"{shown}: the query returns no rows: write a SELECT (the query is never "
                "committed, so nothing it changed was kept)",
                exit_code=2,
            )
        columns = tuple(map(str, result.keys()))
        try:
            yield ExternalRows(columns, result, page_rows, lambda e: _error(e, shown, reading=True))
        except BaseException:
            # left in the middle of the rows: a streaming result is read to its end (MySQL
            # takes no other command before) and dropped, then the transaction rolled back
            with contextlib.suppress(SQLAlchemyError):
                result.close()
            raise
    finally:
        if conn is not None:
            with contextlib.suppress(SQLAlchemyError):  # a connection already lost
                conn.close()
        engine.dispose()


def _engine(url: str, shown: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ExternalSourceError(
            f"{shown}: not a database URL: use {URL_EXAMPLES}", exit_code=2
        ) from None
    parsed = _default_driver(parsed)
    try:
        connect_args: dict[str, Any] = {}
        timeout_arg = _CONNECT_TIMEOUT_ARG.get(parsed.get_driver_name())
        if timeout_arg and timeout_arg not in parsed.query:
            connect_args[timeout_arg] = CONNECT_TIMEOUT_S
        return create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except NoSuchModuleError:
        raise ExternalSourceError(
            f"{shown}: unknown database URL scheme {parsed.drivername!r}: use {URL_EXAMPLES}",
            exit_code=2,
        ) from None
    except ImportError as e:
        module = e.name or str(e)
        hint = _INSTALL.get(module, f"install the Python package that provides {module}")
        raise ExternalSourceError(
            f"{shown}: the database driver {module} is not installed: {hint}", exit_code=2
        ) from e
    except ArgumentError as e:
        raise ExternalSourceError(
            f"{shown}: {_one_line(e)}: use {URL_EXAMPLES}", exit_code=2
        ) from e


def _default_driver(parsed: URL) -> URL:
    """`postgresql://` and `mysql://` (`mariadb://`) name the drivers watchdog installs, psycopg
    and PyMySQL, rather than SQLAlchemy's defaults (psycopg2, mysqlclient)."""
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("mysql", "mariadb"):
        return parsed.set(drivername=parsed.drivername + "+pymysql")
    return parsed


def _read_only(conn: Connection) -> None:
    """Ask the server for a read-only transaction where it has one."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execution_options(postgresql_readonly=True)
    elif dialect in ("mysql", "mariadb"):
        try:
            conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
            conn.commit()
        except DBAPIError as e:
            if e.connection_invalidated or _connection_failed(_one_line(e).lower()):
                raise
            conn.rollback()  # a server too old for it: the login's grants are what remains
    elif dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")


def _reason(e: BaseException) -> str:
    """The server's complaint on one line, without PostgreSQL's excerpt of the statement (which
    shows the DECLARE of our cursor, not the user's query) or SQLAlchemy's link."""
    why = _one_line(e)
    why = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", why)
    return re.split(r" LINE \d+: ", why, maxsplit=1)[0]


def _looks_like_select(query: str) -> bool:
    words = re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL).split(None, 1)
    return bool(words) and words[0].lstrip("(").lower() in ("select", "with", "values", "table", "")


def _error(
    e: BaseException,
    shown: str,
    *,
    connecting: bool = False,
    reading: bool = False,
    select: bool = True,
) -> ExternalSourceError:
    why = _reason(e)
    low = why.lower()
    lost = isinstance(e, DBAPIError) and e.connection_invalidated
    if isinstance(e, DBAPIError) and (connecting or lost or _connection_failed(low)):
        if (
            "password authentication failed" in low
            or "access denied" in low
            or ("role " in low and "does not exist" in low)
        ):
            reason = why.rsplit("FATAL:", 1)[-1].strip()
            return ExternalSourceError(
                f"{shown}: the server refused the login ({reason}): check the user and "
                "password in the source's url",
                exit_code=2,
            )
        if ("database " in low and "does not exist" in low) or "unknown database" in low:
            reason = why.rsplit("FATAL:", 1)[-1].strip()
            return ExternalSourceError(f"{shown}: {reason}: correct the source's url", exit_code=2)
        if connecting or _connection_failed(low):
            reason = why.split(" failed: ", 1)[-1] if " failed: " in why else why
            reason = reason.split(" Is the server running", 1)[0]
            return ExternalSourceError(
                f"{shown}: cannot connect to the database server ({reason}): check that it "
                "is running and that the source's url names it; the next poll tries again"
            )
        return ExternalSourceError(
            f"{shown}: the connection was lost ({why}); the next poll tries again"
        )
    if reading:
        return ExternalSourceError(f"{shown}: reading the query's rows failed: {why}")
    if "required for bind parameter" in low:
        return ExternalSourceError(
            f"{shown}: the query failed: {why}: the only parameter given is :watermark",
            exit_code=2,
        )
    hint = "try it in the database's own client" if select else "the query must be a SELECT"
    return ExternalSourceError(f"{shown}: the query failed: {why}: {hint}", exit_code=2)
