"""`watchdog import FILE`: cases from a CSV or XLSX export of the one-stop software.

Rows stream through in batches (XLSX in openpyxl's read-only mode), so memory stays flat for
files of any length. A bad row is rejected whole, with every problem named by row and column;
good rows around it are kept.
"""

from __future__ import annotations

import csv
import io
import sys
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any, TextIO

from watchdog.config import Settings
from watchdog.sources.fields import (
    REQUIRED,
    RowProblems,
    canonical_field,
    is_known_unused,
    normalize_case,
)
from watchdog.sources.ingest import IngestResult, upsert_cases
from watchdog.store import Store

BATCH_ROWS = 2000


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, missing columns)."""


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    rejected: int = 0
    written: IngestResult = field(default_factory=IngestResult)
    problems: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "inserted": self.written.inserted,
            "updated": self.written.updated,
            "unchanged": self.written.unchanged,
            "rejected": self.rejected,
        }


@dataclass
class Header:
    """Which canonical field each column holds, and the header text to name it in errors."""

    fields: list[str | None]
    names: list[str]

    @classmethod
    def parse(cls, cells: list[Any], file: str) -> tuple[Header, list[str]]:
        fields: list[str | None] = []
        names = [str(c).strip() if c is not None else "" for c in cells]
        seen: dict[str, str] = {}
        ignored = []
        for name in names:
            canon = canonical_field(name)
            if canon in seen:
                raise ImportFileError(
                    f"{file}: columns {seen[canon]!r} and {name!r} both mean {canon}"
                )
            if canon is None and name and not is_known_unused(name):
                ignored.append(name)
            if canon is not None:
                seen[canon] = name
            fields.append(canon)
        missing = [f for f in REQUIRED if f not in seen]
        if missing:
            raise ImportFileError(
                f"{file}: missing required column(s): {', '.join(missing)} "
                f"(header row has: {', '.join(n for n in names if n) or 'nothing'})"
            )
        return cls(fields, names), ignored

    def column_name(self, canon: str) -> str:
        for f, n in zip(self.fields, self.names, strict=True):
            if f == canon:
                return n if n == canon else f"{n} ({canon})"
        return canon


def _csv_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells); row 1 is the header, as a spreadsheet numbers it."""
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        sample = f.read(8192)
        f.seek(0)
        try:  # only the separator is guessed: the quoting rules of a sample are not the file's
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
        yield from enumerate(csv.reader(f, csv.excel, delimiter=delimiter), start=1)


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zipfile, KeyError and its own errors alike
        raise ImportFileError(f"{path}: not a readable XLSX workbook: {e}") from e
    try:
        ws = wb.worksheets[0]
        for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield n, [_date_only(v) for v in row]
    finally:
        wb.close()


def _date_only(value: Any) -> Any:
    """A spreadsheet date cell without a time comes as midnight; it means the date itself
    (so a date-only appointment is due at the close of that day, not at 00:00)."""
    if isinstance(value, datetime) and value.tzinfo is None and value.time() == time(0):
        return value.date()
    return value


def read_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path)
    raise ImportFileError(f"{path}: expected a .csv or .xlsx file")


class Progress:
    """A one-line progress counter on stderr, refreshed at most twice a second."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.label = label
        self.start = clock.monotonic()
        self.last = 0.0

    def update(self, rows: int, *, final: bool = False) -> None:
        now = clock.monotonic()
        if not self.enabled or (not final and now - self.last < 0.5):
            return
        self.last = now
        rate = rows / max(now - self.start, 1e-9)
        end = "\n" if final else ""
        self.stream.write(f"\r{self.label}: {rows:,} rows ({rate:,.0f} rows/s){end}")
        self.stream.flush()


def import_file(
    store: Store,
    settings: Settings,
    path: Path,
    now: datetime,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import every good row of a file; returns counts and the problems of rejected rows."""
    report = ImportReport(str(path))
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    rows = read_rows(path)
    header: Header | None = None
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        report.written.add(upsert_cases(store, batch, now, source="import", dry_run=dry_run))
        batch.clear()

    try:
        for n, cells in rows:
            if header is None:
                if not any(c not in (None, "") for c in cells):
                    continue  # blank lines above the header
                header, report.ignored_columns = Header.parse(cells, str(path))
                continue
            if not any(c not in (None, "") and str(c).strip() for c in cells):
                continue
            report.rows += 1
            raw = {f: v for f, v in zip(header.fields, cells, strict=False) if f is not None}
            problems = RowProblems()
            if len(cells) > len(header.fields) and any(cells[len(header.fields) :]):
                problems.add("", f"has {len(cells)} cells, the header has {len(header.fields)}")
            record = normalize_case(raw, settings, problems)
            if problems:
                report.rejected += 1
                for canon, reason in problems.problems:
                    col = f", column {header.column_name(canon)}" if canon else ""
                    msg = f"{path.name}: row {n}{col}: {reason}"
                    report.problems.append(msg)
                    if on_problem:
                        on_problem(msg)
                continue
            batch.append(record)
            if len(batch) >= BATCH_ROWS:
                flush()
                if progress:
                    progress.update(report.rows)
        if header is None:
            raise ImportFileError(f"{path}: no header row found")
        flush()
    except (UnicodeDecodeError, csv.Error) as e:
        raise ImportFileError(f"{path}: cannot read as UTF-8 CSV: {e}") from e
    except (OSError, io.UnsupportedOperation) as e:
        raise ImportFileError(f"{path}: cannot read: {e}") from e
    if progress:
        progress.update(report.rows, final=True)
    return report
