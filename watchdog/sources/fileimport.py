"""`watchdog import FILE`: cases from a CSV or spreadsheet export of the one-stop software.

Spreadsheets (XLSX, XLSM, XLSB, the old XLS, ODS) are read with python-calamine (Rust); rows go
to the database in batches. A bad row is rejected whole, with every problem named by row and
column; good rows around it are kept. Problems of the file as a whole are found before anything
is written: a CSV is decoded once from end to end (streaming) before its first batch.

The header is the first of the top HEADER_SCAN_ROWS rows that names every required column:
title rows above it ("UBND TỈNH ...", "DANH SÁCH HỒ SƠ ...") and a merged group row
("Thông tin hồ sơ" over several columns) are passed over.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from watchdog.config import Settings
from watchdog.i18n import N_, _, integer
from watchdog.progress import Progress
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
# The header row is looked for among the first rows of the file (title rows may precede it).
HEADER_SCAN_ROWS = 20
SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods")
SUFFIXES = (".csv", *SPREADSHEET_SUFFIXES)
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
    # rows taken with a remark (an assignee name shared by officials): not rejections
    warnings: list[str] = field(default_factory=list)
    header_row: int | None = None  # spreadsheet row number of the header
    # codes of rows taken that the configuration does not know, with their number of rows:
    # such cases have no computed due / no unit head until the code is added
    unknown_procedures: dict[str, int] = field(default_factory=dict)
    unknown_units: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "inserted": self.written.inserted,
            "updated": self.written.updated,
            "unchanged": self.written.unchanged,
            "rejected": self.rejected,
            "unknown_procedures": self.unknown_procedures,
            "unknown_units": self.unknown_units,
        }


@dataclass
class Header:
    """Which canonical field each column holds, and the header text to name it in errors."""

    fields: list[str | None]
    names: list[str]
    row: int = 1

    @classmethod
    def parse(cls, cells: list[Any], file: str, row: int = 1) -> tuple[Header, list[str]]:
        fields: list[str | None] = []
        names = [_header_text(c) for c in cells]
        seen: dict[str, str] = {}
        ignored = []
        for name in names:
            canon = canonical_field(name)
            if canon in seen:
                raise ImportFileError(
                    _(
                        "{file}: header row {row}: columns {first} and {second} both mean {field}"
                    ).format(
                        file=file, row=row, first=repr(seen[canon]), second=repr(name), field=canon
                    )
                )
            if canon is None and name and not is_known_unused(name):
                ignored.append(name)
            if canon is not None:
                seen[canon] = name
            fields.append(canon)
        missing = [f for f in REQUIRED if f not in seen]
        if missing:
            raise ImportFileError(
                _(
                    "{file}: missing required column(s): {missing} (header row {row} has: {names})"
                ).format(
                    file=file,
                    missing=", ".join(missing),
                    row=row,
                    names=", ".join(n for n in names if n) or _("nothing"),
                )
            )
        return cls(fields, names, row), ignored

    def column_name(self, canon: str) -> str:
        for f, n in zip(self.fields, self.names, strict=True):
            if f == canon:
                return n if n == canon else f"{n} ({canon})"
        return canon


def _header_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    return str(cell).strip()


class HeaderFinder:
    """Finds the header among the first HEADER_SCAN_ROWS rows: the first row naming every
    required column (by any alias). Rows above it (titles, a merged group row) are skipped.

    A column title merged over two rows keeps its text in the upper row and leaves the lower
    one blank ("Mã hồ sơ" over B4:B5 while E4:G4 groups "Ngày tiếp nhận", ... in row 5): a blank
    cell of a candidate row takes the text right above it when that text names a column.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.above: list[str] = []  # header texts of the row before the candidate
        self.above_row = 0
        self.best: tuple[int, int, list[str]] | None = None  # (known columns, row, texts)

    def offer(self, n: int, cells: list[Any]) -> tuple[Header, list[str]] | None:
        """The header and its ignored columns when row `n` is the header, else None."""
        texts = [_header_text(c) for c in cells]
        if self.above and self.above_row == n - 1:
            texts = self._merge_above(texts)
        self.above, self.above_row = texts, n
        known = {canonical_field(t) for t in texts} - {None}
        if all(f in known for f in REQUIRED):
            return Header.parse(texts, self.file, n)
        if known and (self.best is None or len(known) > self.best[0]):
            self.best = (len(known), n, texts)
        return None

    def _merge_above(self, texts: list[str]) -> list[str]:
        own = {canonical_field(t) for t in texts}
        merged = list(texts)
        for i, upper in enumerate(self.above[: len(texts)]):
            if merged[i] or not upper:
                continue
            canon = canonical_field(upper)
            names_a_column = canon not in own if canon is not None else is_known_unused(upper)
            if names_a_column:
                merged[i] = upper
                own.add(canon)
        return merged

    def failed(self, rows_seen: int) -> ImportFileError:
        """The file error when no row of the top HEADER_SCAN_ROWS named every required column."""
        if self.best is not None:
            _score, row, texts = self.best
            try:
                Header.parse(texts, self.file, row)
            except ImportFileError as e:  # names the missing columns of the likeliest row
                return e
        if rows_seen == 0:
            return ImportFileError(
                _("{file}: no header row found (the file is empty)").format(file=self.file)
            )
        return ImportFileError(
            _(
                "{file}: no header row found in the first {n} rows: none names the required "
                "columns {columns} (or Mã hồ sơ, Mã TTHC, Đơn vị, Ngày tiếp nhận)"
            ).format(file=self.file, n=HEADER_SCAN_ROWS, columns=", ".join(REQUIRED))
        )


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
                _(
                    "{file}: unknown encoding {encoding}; use utf-8 (the default), cp1258 or utf-16"
                ).format(file=path, encoding=repr(encoding))
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

    def validate(self, path: Path) -> int:
        """Decode the whole file once, streaming; ImportFileError at the first bad byte.

        Run before the first batch is written, so a file that turns undecodable after row
        4,000 writes nothing. The row is counted by line breaks (row 1 is the first line).
        Returns the number of line breaks (the progress line's estimate of the rows).
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
                    return lines

    def _undecodable(
        self, path: Path, e: UnicodeDecodeError, end: int, lines: int
    ) -> ImportFileError:
        data = bytes(e.object)  # what the decoder held: its leftover bytes, then the chunk
        offset = end - len(data) + e.start
        row = lines + data[: e.start].decode(self.codec, errors="replace").count("\n") + 1
        bad = " ".join(f"0x{b:02x}" for b in data[e.start : e.end])
        if self.codec == "cp1258":
            hint = _("check its encoding, or re-save it as UTF-8 (CSV UTF-8)")
        else:
            hint = _(
                "if it comes from older Vietnamese software, try --encoding cp1258; "
                "otherwise re-save it as UTF-8 (CSV UTF-8)"
            )
        return ImportFileError(
            _(
                "{file}: row {row} is not valid {encoding} (byte offset {offset}: {bytes}, "
                "{reason}); nothing was imported; {hint}"
            ).format(
                file=path,
                row=row,
                encoding=self.label,
                offset=integer(offset),
                bytes=bad,
                reason=_decode_reason(e.reason),
                hint=hint,
            )
        )


_DECODE_REASONS = {  # the codec's words, in the user's language
    "invalid continuation byte": N_("a multi-byte character broken off"),
    "invalid start byte": N_("a byte no character starts with"),
    "unexpected end of data": N_("the file ends inside a character"),
    "character maps to <undefined>": N_("a byte the encoding has no character for"),
}


def _decode_reason(reason: str) -> str:
    found = _DECODE_REASONS.get(reason)
    return _(found) if found else reason


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
            raise ImportFileError(
                _("{file}: row {row} is not readable CSV: {why}").format(
                    file=path, row=n + 1, why=e
                )
            ) from e


# The first bytes of each kind of file a spreadsheet export may really be.
_ZIP, _OLE = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _spreadsheet_rows(path: Path) -> Rows:
    """(row number, cells) of the first sheet, read with python-calamine; row 1 is the sheet's
    first row whatever is empty above the data (calamine pads leading empty rows).

    Cells come as calamine gives them: "" when empty, every number as a float, date cells as
    datetime or date, a number in a General cell as a float (an Excel serial in a date column:
    fields.excel_serial). The workbook is opened here, so an unreadable file is an
    ImportFileError before anything is written.
    """
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except CalamineError as first:
        # exports are often named after another format (an XLSX saved as .xls): calamine reads
        # a file object by its content
        try:
            with path.open("rb") as f:
                wb = CalamineWorkbook.from_filelike(f)
        except (CalamineError, ValueError, TypeError):
            raise _unreadable(path, first) from None
    try:
        sheet = wb.get_sheet_by_index(0)
    except CalamineError as e:
        wb.close()
        raise _unreadable(path, e) from None
    return Rows(_sheet_rows(wb, sheet), getattr(sheet, "height", None))


class Rows:
    """The rows of a file as (row number, cells), with `total`: how many rows the file holds
    as far as can be told before reading them (None when unknown), for the progress line."""

    def __init__(self, rows: Iterator[tuple[int, list[Any]]], total: int | None):
        self._rows, self.total = rows, total

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        return self._rows


def _sheet_rows(wb: Any, sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    try:
        if sheet.start is None:  # an empty sheet
            return
        yield from enumerate(sheet.iter_rows(), start=1)
    finally:
        wb.close()


def _unreadable(path: Path, error: Exception) -> ImportFileError:
    with path.open("rb") as f:
        head = f.read(512)
    kind = {".xls": "XLS", ".ods": "ODS", ".xlsb": "XLSB"}.get(path.suffix.lower(), "XLSX")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<"):  # HTML, or Excel 2003 XML: tables some software names .xls
        what = _("an XML file") if text.startswith(b"<?xml") else _("an HTML page")
        return ImportFileError(
            _(
                "{file}: {what} named {suffix}, not a workbook: open it in Excel or LibreOffice "
                "and save it as .xlsx, or export CSV"
            ).format(file=path, what=what, suffix=path.suffix)
        )
    if head.startswith(_OLE) and path.suffix.lower() != ".xls":
        hint = _("; an old Excel file (XLS) named otherwise: try naming it .xls")
    else:
        hint = ""
    return ImportFileError(
        _("{file}: not a readable {kind} workbook: {why}").format(file=path, kind=kind, why=error)
        + hint
    )


def read_rows(path: Path, encoding: str = "utf-8") -> Rows:
    """The rows of a file; a CSV's encoding is checked from end to end first (ImportFileError)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text = TextEncoding.of(path, encoding)
        lines = text.validate(path)
        return Rows(_csv_rows(path, text), lines)
    if suffix in SPREADSHEET_SUFFIXES:
        return _spreadsheet_rows(path)
    raise ImportFileError(
        _("{file}: expected a .csv, .xlsx, .xlsm, .xlsb, .xls or .ods file, got {suffix}").format(
            file=path, suffix=suffix or _("none")
        )
    )


@dataclass
class CaseRows:
    """The rows of an export as normalised records, without writing anything: what the import
    writes, and what `bench/import.py` times apart from the database.

    Iterating yields (row number, record, problems) for every non-blank row below the header;
    the record is to be written only when `problems` is empty. `header` is known once the first
    row has been yielded (ImportFileError when none is found).
    """

    settings: Settings
    path: Path
    encoding: str | None = None
    header: Header | None = None
    ignored_columns: list[str] = field(default_factory=list)
    total: int | None = None  # rows in the file, as far as known once reading has begun

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any], RowProblems]]:
        path, settings = self.path, self.settings
        if not path.exists():
            raise ImportFileError(_("{file}: no such file").format(file=path))
        encoding = self.encoding or settings.config.import_.encoding
        try:
            rows = read_rows(path, encoding)
        except OSError as e:
            raise ImportFileError(_("{file}: cannot read: {why}").format(file=path, why=e)) from e
        self.total = rows.total
        spreadsheet = path.suffix.lower() in SPREADSHEET_SUFFIXES
        finder = HeaderFinder(str(path))
        header: Header | None = None
        columns: list[tuple[str, int]] = []  # (field, position) of the kept columns
        width = 0
        n = 0
        try:
            for n, cells in rows:
                if header is None:
                    if n > HEADER_SCAN_ROWS:
                        raise finder.failed(n)
                    if not any(c not in (None, "") for c in cells):
                        continue  # blank lines above the header
                    found = finder.offer(n, cells)
                    if found is not None:
                        header, self.ignored_columns = found
                        self.header = header
                        width = len(header.fields)
                        columns = [(f, i) for i, f in enumerate(header.fields) if f is not None]
                    continue
                if not any(c not in (None, "") and str(c).strip() for c in cells):
                    continue
                have = len(cells)
                if have >= width:
                    raw = {f: cells[i] for f, i in columns}
                else:  # a short CSV line: its missing cells are blank
                    raw = {f: cells[i] for f, i in columns if i < have}
                problems = RowProblems()
                if have > width and any(cells[width:]):
                    problems.add(
                        "",
                        _("has {have} cells, the header has {width}").format(
                            have=have, width=width
                        ),
                    )
                yield n, normalize_case(raw, settings, problems, spreadsheet=spreadsheet), problems
            if header is None:
                raise finder.failed(n)
        except (UnicodeDecodeError, csv.Error) as e:  # the file changed after its check
            raise ImportFileError(
                _("{file}: cannot read as CSV: {why}").format(file=path, why=e)
            ) from e
        except (OSError, io.UnsupportedOperation) as e:
            raise ImportFileError(_("{file}: cannot read: {why}").format(file=path, why=e)) from e


def import_file(
    store: Store,
    settings: Settings,
    path: Path,
    now: datetime,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    on_problem: Callable[[str], None] | None = None,
    encoding: str | None = None,
) -> ImportReport:
    """Import every good row of a file; returns counts and the problems of rejected rows.

    `encoding` is a CSV's text encoding (a byte order mark overrides it); None means the
    configuration's `import.encoding` (default utf-8). Spreadsheets ignore it. `on_problem`
    gets every message as it is found: problems of rejected rows and warnings (rows taken with
    a remark, "warning: " before the reason).
    """
    report = ImportReport(str(path))
    source = CaseRows(settings, path, encoding)
    batch: list[dict[str, Any]] = []
    batch_rows: list[int] = []  # the row number of each record in the batch
    # one dry-run state for the whole file: a code repeated in a later batch is one case
    dry: DryRun | bool = DryRun() if dry_run else False

    def located(n: int, canon: str, reason: str) -> str:
        header = source.header
        if canon and header:
            return _("{file}: row {row}, column {column}: {reason}").format(
                file=path.name, row=n, column=header.column_name(canon), reason=reason
            )
        return _("{file}: row {row}: {reason}").format(file=path.name, row=n, reason=reason)

    def reject(n: int, problems: list[tuple[str, str]]) -> None:
        report.rejected += 1
        for canon, reason in problems:
            msg = located(n, canon, reason)
            report.problems.append(msg)
            if on_problem:
                on_problem(msg)

    def flush() -> None:
        result = upsert_cases(store, batch, now, source="import", dry_run=dry)
        report.written.add(result)
        # validation should leave nothing for the database to refuse; if it still does, the
        # row is rejected like any other (the store wrote the rest of the batch)
        for pos, reason in result.refused:
            reject(
                batch_rows[pos],
                [("", _("the database refused it: {why}").format(why=reason))],
            )
        batch.clear()
        batch_rows.clear()

    for n, record, problems in source:
        report.rows += 1
        if problems:
            reject(n, problems.problems)
            continue
        for canon, reason in problems.warnings:
            msg = located(n, canon, _("warning: {problem}").format(problem=reason))
            report.warnings.append(msg)
            if on_problem:
                on_problem(msg)
        for code, known, unknown in (
            (record["procedure_code"], settings.procedures, report.unknown_procedures),
            (record["unit_code"], settings.units, report.unknown_units),
        ):
            if code not in known:
                unknown[code] = unknown.get(code, 0) + 1
        batch.append(record)
        batch_rows.append(n)
        if len(batch) >= BATCH_ROWS:
            flush()
            if progress:
                if progress.total is None and source.total:
                    progress.total = max(source.total - 1, report.rows)  # less the header
                progress.update(report.rows)
    report.ignored_columns = source.ignored_columns
    report.header_row = source.header.row if source.header else None
    flush()
    if progress:
        progress.update(report.rows, final=True)
    return report
