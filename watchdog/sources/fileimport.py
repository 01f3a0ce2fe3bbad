"""`watchdog import FILE`: cases from a CSV or XLSX export of the one-stop software.

Rows stream through in batches (XLSX in openpyxl's read-only mode), so memory stays flat for
files of any length. A bad row is rejected whole, with every problem named by row and column;
good rows around it are kept. Problems of the file as a whole are found before anything is
written: a CSV is decoded once from end to end (streaming) before its first batch.
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
import time as clock
import unicodedata
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
from watchdog.sources.ingest import DryRun, IngestResult, upsert_cases
from watchdog.store import Store

BATCH_ROWS = 2000
# Largest CSV cell the reader takes (the csv module's default is 128 KiB, beyond which it stops
# the whole file); a cell above MAX_FIELD_CHARS is still a rejected row, found by normalize_case.
FIELD_SIZE_LIMIT = 16 * 1024 * 1024
_CHUNK = 1024 * 1024  # bytes per read of the encoding check
# A byte order mark decides the encoding whatever --encoding says; UTF-32 before UTF-16 (LE),
# whose mark is the start of UTF-32's.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


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


@dataclass(frozen=True)
class TextEncoding:
    """How a CSV file's bytes become text: the codec after `bom` bytes of byte order mark."""

    codec: str
    bom: int = 0

    @property
    def nfc(self) -> bool:
        """cp1258 writes Vietnamese tone marks as combining characters: compose them (NFC)."""
        return self.codec == "cp1258"

    @property
    def label(self) -> str:
        return {"utf-8": "UTF-8", "cp1258": "cp1258"}.get(self.codec, self.codec.upper())

    @classmethod
    def of(cls, path: Path, encoding: str) -> TextEncoding:
        """The encoding named (default UTF-8), unless the file starts with a byte order mark."""
        try:
            codec = codecs.lookup(encoding).name
            b"    ".decode(codec, "ignore")  # LookupError for non-text codecs such as base64
        except LookupError:
            raise ImportFileError(
                f"{path}: unknown encoding {encoding!r}; use utf-8 (the default), cp1258 or utf-16"
            ) from None
        with path.open("rb") as f:
            head = f.read(4)
        for bom, by_bom in _BOMS:
            if head.startswith(bom):
                return cls(by_bom, len(bom))
        return cls("utf-8" if codec == "utf-8-sig" else codec)

    def open(self, path: Path) -> TextIO:
        f = path.open("rb")
        f.seek(self.bom)
        return io.TextIOWrapper(f, encoding=self.codec, newline="")

    def validate(self, path: Path) -> None:
        """Decode the whole file once, streaming; ImportFileError at the first bad byte.

        Run before the first batch is written, so a file that turns undecodable after row
        4,000 writes nothing. The row is counted by line breaks (row 1 is the first line).
        """
        decoder = codecs.getincrementaldecoder(self.codec)()
        lines = 0
        end = self.bom  # file offset just after the bytes handed to the decoder so far
        with path.open("rb") as f:
            f.seek(self.bom)
            while True:
                chunk = f.read(_CHUNK)
                end += len(chunk)
                try:
                    lines += decoder.decode(chunk, final=not chunk).count("\n")
                except UnicodeDecodeError as e:
                    raise self._undecodable(path, e, end, lines) from None
                if not chunk:
                    return

    def _undecodable(
        self, path: Path, e: UnicodeDecodeError, end: int, lines: int
    ) -> ImportFileError:
        data = bytes(e.object)  # what the decoder held: its leftover bytes, then the chunk
        offset = end - len(data) + e.start
        row = lines + data[: e.start].decode(self.codec, errors="replace").count("\n") + 1
        bad = " ".join(f"0x{b:02x}" for b in data[e.start : e.end])
        if self.codec == "cp1258":
            hint = "check its encoding, or re-save it as UTF-8 (CSV UTF-8)"
        else:
            hint = (
                "if it comes from older Vietnamese software, try --encoding cp1258; "
                "otherwise re-save it as UTF-8 (CSV UTF-8)"
            )
        return ImportFileError(
            f"{path}: row {row} is not valid {self.label} (byte offset {offset:,}: "
            f"{bad}, {e.reason}); nothing was imported; {hint}"
        )


def _csv_rows(path: Path, encoding: TextEncoding) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells); row 1 is the header, as a spreadsheet numbers it."""
    if csv.field_size_limit() < FIELD_SIZE_LIMIT:
        csv.field_size_limit(FIELD_SIZE_LIMIT)
    with encoding.open(path) as f:
        sample = f.read(8192)
    try:  # only the separator is guessed: the quoting rules of a sample are not the file's
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    n = 0
    with encoding.open(path) as f:
        lines: Iterator[str] = f
        if encoding.nfc:
            lines = (unicodedata.normalize("NFC", line) for line in f)
        try:
            for n, cells in enumerate(csv.reader(lines, csv.excel, delimiter=delimiter), start=1):
                yield n, cells
        except csv.Error as e:
            raise ImportFileError(f"{path}: row {n + 1} is not readable CSV: {e}") from e


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


def read_rows(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, list[Any]]]:
    """The rows of a file; a CSV's encoding is checked from end to end first (ImportFileError)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text = TextEncoding.of(path, encoding)
        text.validate(path)
        return _csv_rows(path, text)
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
    encoding: str = "utf-8",
) -> ImportReport:
    """Import every good row of a file; returns counts and the problems of rejected rows.

    `encoding` is a CSV's text encoding (a byte order mark overrides it); XLSX ignores it.
    """
    report = ImportReport(str(path))
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    try:
        rows = read_rows(path, encoding)
    except OSError as e:
        raise ImportFileError(f"{path}: cannot read: {e}") from e
    header: Header | None = None
    batch: list[dict[str, Any]] = []
    batch_rows: list[int] = []  # the row number of each record in the batch
    # one dry-run state for the whole file: a code repeated in a later batch is one case
    dry: DryRun | bool = DryRun() if dry_run else False

    def reject(n: int, problems: list[tuple[str, str]]) -> None:
        report.rejected += 1
        for canon, reason in problems:
            col = f", column {header.column_name(canon)}" if canon and header else ""
            msg = f"{path.name}: row {n}{col}: {reason}"
            report.problems.append(msg)
            if on_problem:
                on_problem(msg)

    def flush() -> None:
        result = upsert_cases(store, batch, now, source="import", dry_run=dry)
        report.written.add(result)
        # validation should leave nothing for the database to refuse; if it still does, the
        # row is rejected like any other (the store wrote the rest of the batch)
        for pos, reason in result.refused:
            reject(batch_rows[pos], [("", f"the database refused it: {reason}")])
        batch.clear()
        batch_rows.clear()

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
                reject(n, problems.problems)
                continue
            batch.append(record)
            batch_rows.append(n)
            if len(batch) >= BATCH_ROWS:
                flush()
                if progress:
                    progress.update(report.rows)
        if header is None:
            raise ImportFileError(f"{path}: no header row found")
        flush()
    except (UnicodeDecodeError, csv.Error) as e:  # the file changed after its check
        raise ImportFileError(f"{path}: cannot read as CSV: {e}") from e
    except (OSError, io.UnsupportedOperation) as e:
        raise ImportFileError(f"{path}: cannot read: {e}") from e
    if progress:
        progress.update(report.rows, final=True)
    return report
