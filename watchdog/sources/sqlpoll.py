"""`sources: - {type: sql, ...}`: poll an existing one-stop database with an SQL query.

The query's columns are named as an import's headers (canonical, Vietnamese or national-portal
names, the same alias table), and its rows go through the same normalisation and upsert as an
import: a bad row is rejected with `row N, column X: reason` and never stops the poll.

With `watermark: <column>` the poll is incremental: the query gets `:watermark`, the highest
value of that column seen by earlier polls (None on the first), and the new highest value is
kept in the engine's state only once every row of the poll has been written. A crash in
between makes the next poll read those rows again, which is harmless: upserts are idempotent.
The value is handed back exactly as the source gave it (a naive DATETIME stays naive), because
it is compared by the source's database, not by us. See docs/sql-poll.md.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from watchdog.config import Settings
from watchdog.config.models import SqlSourceConfig
from watchdog.domain import fold
from watchdog.i18n import _
from watchdog.sources.fields import (
    ALIASES,
    REQUIRED,
    RowProblems,
    canonical_field,
    is_known_unused,
    normalize_case,
)
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store
from watchdog.store.db import as_store_error, display_url
from watchdog.store.external import ExternalSourceError, read_query
from watchdog.store.plans import get_state, set_state

# engine_state.key is at most this long; a longer source name is kept under its hash
_STATE_KEY_MAX = 64
_SOURCE_MAX = 64  # cases.source


@dataclass
class PollReport:
    """What one poll did. `error` is set when the source could not be read (or the query does
    not fit); rows written before a failure stay written, the watermark does not move."""

    source: str
    rows: int = 0  # rows the query returned
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)  # `NAME: row N, column X: reason`
    warnings: list[str] = field(default_factory=list)  # rows taken with a remark
    ignored_columns: list[str] = field(default_factory=list)
    watermark: Any = None  # the highest watermark value after this poll (None: none yet)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "watermark": _shown(self.watermark),
            "error": self.error,
        }


class QueryShapeError(Exception):
    """The query's columns do not fit a case (a required one missing, two meaning one field, the
    watermark column absent): a mistake of the configuration, one line naming the source."""


def watermark_key(name: str) -> str:
    """The engine_state key of a source's watermark: `source:<name>:watermark`."""
    key = f"source:{name}:watermark"
    if len(key) <= _STATE_KEY_MAX:
        return key
    return f"source:{hashlib.sha256(name.encode()).hexdigest()[:32]}:watermark"


class SqlPoller:
    """One `type: sql` source. `poll_once` is synchronous (the daemon runs it in a worker
    thread on the source's interval) and never raises for a source that cannot be read."""

    def __init__(
        self,
        config: SqlSourceConfig,
        store: Store,
        settings: Callable[[], Settings],
        clock: Callable[[], datetime],
        *,
        page_rows: int | None = None,
    ):
        self.config = config
        self.store = store
        self.settings = settings
        self.clock = clock
        self.page_rows = page_rows
        self._lock = threading.Lock()  # one poll of a source at a time

    @property
    def name(self) -> str:
        return self.config.name

    def watermark(self) -> Any:
        """The watermark value the next poll passes as :watermark (None: read everything)."""
        if not self.config.watermark:
            return None
        return _decode(get_state(self.store, watermark_key(self.name)), self.config.watermark)

    def poll_once(self) -> PollReport:
        with self._lock:
            report = PollReport(self.name)
            try:
                self._poll(report)
            except (ExternalSourceError, QueryShapeError) as e:
                report.error = str(e)
            except Exception as e:  # our own database failed while writing
                error = as_store_error(e, display_url(self.store.engine.url))
                if error is None:
                    raise
                report.error = f"source {self.name}: the watchdog database failed: {error}"
            return report

    def _poll(self, report: PollReport) -> None:
        config, store = self.config, self.store
        settings = self.settings()
        now = self.clock()
        previous = self.watermark()
        report.watermark = highest = previous
        params = {"watermark": previous}
        kw = {"page_rows": self.page_rows} if self.page_rows else {}
        with read_query(config.name, config.url, config.query, params, **kw) as result:
            fields, report.ignored_columns = self._fields(result.columns)
            mark = self._watermark_column(result.columns)
            n = 0
            for page in result.pages():
                batch: list[dict[str, Any]] = []
                batch_rows: list[int] = []
                for raw in page:
                    n += 1
                    if mark is not None:
                        highest = _higher(highest, raw[mark])
                    record = {canon: _sql_value(raw[column]) for column, canon in fields}
                    problems = RowProblems()
                    try:
                        case = normalize_case(record, settings, problems)
                    except Exception as e:  # a value of a type no file has: still one row
                        problems.add("", f"cannot be read: {type(e).__name__}: {e}")
                    if problems:
                        self._reject(report, fields, n, problems.problems)
                        continue
                    for canon, reason in problems.warnings:
                        report.warnings.append(
                            self._located(
                                fields, n, canon, _("warning: {problem}").format(problem=reason)
                            )
                        )
                    batch.append(case)
                    batch_rows.append(n)
                report.rows = n
                written = upsert_cases(store, batch, now, source=f"sql:{config.name}"[:_SOURCE_MAX])
                report.inserted += written.inserted
                report.updated += written.updated
                report.unchanged += written.unchanged
                for pos, reason in written.refused:
                    why = _("the database refused it: {why}").format(why=reason)
                    self._reject(report, fields, batch_rows[pos], [("", why)])
        # every row is written: only now may the next poll start after them
        if mark is not None and highest is not None and _encode(highest) != _encode(previous):
            set_state(store, watermark_key(config.name), _state(config.watermark, highest), now)
        report.watermark = highest

    def _fields(self, columns: tuple[str, ...]) -> tuple[list[tuple[str, str]], list[str]]:
        """(column, canonical field) of the columns kept, and the unknown columns."""
        kept: dict[str, str] = {}
        ignored = []
        for column in columns:
            canon = canonical_field(column)
            if canon is None:
                if not is_known_unused(column) and not self._is_watermark(column):
                    ignored.append(column)
                continue
            if canon in kept:
                raise QueryShapeError(
                    f"source {self.name}: the query's columns {kept[canon]!r} and {column!r} "
                    f"both mean {canon}: keep one"
                )
            kept[canon] = column
        missing = [f for f in REQUIRED if f not in kept]
        if missing:
            raise QueryShapeError(
                f"source {self.name}: the query returns no {', '.join(missing)} column "
                f"(it returns {', '.join(columns) or 'nothing'}): name the columns as an "
                "import's headers, e.g. SELECT MaHoSo, MaTTHC, DonViXuLy, NgayTiepNhan, ..."
            )
        return [(column, canon) for canon, column in kept.items()], ignored

    def _is_watermark(self, column: str) -> bool:
        return bool(self.config.watermark) and fold(column) == fold(self.config.watermark or "")

    def _watermark_column(self, columns: tuple[str, ...]) -> str | None:
        """The result column holding the watermark (matched as headers are: PostgreSQL returns
        NgayCapNhat as ngaycapnhat)."""
        wanted = self.config.watermark
        if not wanted:
            return None
        if wanted in columns:
            return wanted
        found = [c for c in columns if fold(c) == fold(wanted)]
        if len(found) != 1:
            raise QueryShapeError(
                f"source {self.name}: watermark column {wanted!r} is not among the query's "
                f"columns ({', '.join(columns)}): select it, or correct `watermark`"
            )
        return found[0]

    def _located(self, fields: list[tuple[str, str]], n: int, canon: str, reason: str) -> str:
        column = next((c for c, f in fields if f == canon), None)
        if column is None:
            return _("{file}: row {row}: {reason}").format(file=self.name, row=n, reason=reason)
        return _("{file}: row {row}, column {column}: {reason}").format(
            file=self.name, row=n, column=_column_name(column, canon), reason=reason
        )

    def _reject(
        self,
        report: PollReport,
        fields: list[tuple[str, str]],
        n: int,
        problems: list[tuple[str, str]],
    ) -> None:
        report.rejected += 1
        for canon, reason in problems:
            report.problems.append(self._located(fields, n, canon, reason))


# The spelling of each alias, by its folded form: PostgreSQL returns MaHoSo as mahoso, and the
# user who wrote MaHoSo in the query should read MaHoSo in the problem.
_SPELLING = {fold(a): a for name, aliases in ALIASES.items() for a in (name, *aliases)}


def _column_name(column: str, canon: str) -> str:
    if column.islower():
        column = _SPELLING.get(fold(column), column)
    return column if column == canon else f"{column} ({canon})"


def _sql_value(value: Any) -> Any:
    """A value as the database gave it, as normalize_case reads it: a naive DATETIME at
    midnight is a date without a time, as a spreadsheet's date cell is (so a NgayHenTra kept
    as 2026-03-20 00:00:00 means the close of that day, not its first second)."""
    if (
        value.__class__ is datetime
        and value.tzinfo is None
        and not (value.hour or value.minute or value.second or value.microsecond)
    ):
        return value.date()
    return value


def _higher(known: Any, value: Any) -> Any:
    if value is None:
        return known
    if known is None:
        return value
    try:
        return value if value > known else known
    except TypeError:  # the column changed type (or naive met aware): the source's value wins
        return value


# ----- the watermark in engine_state ------------------------------------------------------------

_KINDS: dict[str, Callable[[str], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "int": int,
    "decimal": Decimal,
    "float": float,
    "bytes": bytes.fromhex,  # e.g. SQL Server's rowversion
    "str": str,
}


def _encode(value: Any) -> tuple[str, str] | None:
    """(kind, text) of a watermark value, so it goes back to the source as the type it came."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return "datetime", value.isoformat()
    if isinstance(value, date):
        return "date", value.isoformat()
    if isinstance(value, time):
        return "time", value.isoformat()
    if isinstance(value, bool):
        return "int", str(int(value))
    if isinstance(value, int):
        return "int", str(value)
    if isinstance(value, Decimal):
        return "decimal", str(value)
    if isinstance(value, float):
        return "float", repr(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes", bytes(value).hex()
    return "str", str(value)


def _state(column: str, value: Any) -> str:
    kind, text = _encode(value) or ("str", "")
    return json.dumps({"column": column, "type": kind, "value": text})


def _decode(stored: str | None, column: str) -> Any:
    """The stored watermark, None when there is none, it is unreadable, or it was kept for
    another column (the configuration changed: read everything once more)."""
    if not stored:
        return None
    try:
        data = json.loads(stored)
        if fold(str(data.get("column"))) != fold(column):
            return None
        return _KINDS[data["type"]](data["value"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _shown(value: Any) -> Any:
    """The watermark as JSON can show it."""
    encoded = _encode(value)
    return None if encoded is None else encoded[1]
