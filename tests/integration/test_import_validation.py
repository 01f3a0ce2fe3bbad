"""File import under whole-file and per-value problems (issue 10, items 5 and 6), on SQLite and
PostgreSQL alike (`store` fixture).

- The encoding of a CSV is checked end to end before the first batch is written: a file that
  turns undecodable after row 4,000 writes nothing and names the row and the byte; BOMs decide
  the encoding (UTF-8, UTF-16); cp1258 is read with `encoding="cp1258"` and composed to NFC.
- A value no database would store (a NUL character, a text longer than its column or than
  MAX_FIELD_CHARS, a cell bigger than the csv module's 128 KiB) is one rejected row, never a lost
  batch or an aborted file.
- A row whose due falls outside the working calendar's years (1900-2200) is rejected by row and
  column, so no later command meets a case it cannot compute.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from watchdog.config import Settings, load_settings
from watchdog.sources import fileimport
from watchdog.sources.fields import MAX_FIELD_CHARS
from watchdog.sources.fileimport import ImportFileError, ImportReport, import_file
from watchdog.store import Store, schema

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=VN)
HEADER = ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Chủ hồ sơ"]
# Tone marks cp1258 writes as combining characters after the (possibly accented) base letter.
TONES = "\u0300\u0301\u0303\u0309\u0323"


@pytest.fixture
def settings(small_config: Path) -> Settings:
    return load_settings(small_config)


def csv_text(rows: list[list[Any]], *, delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def to_cp1258(text: str) -> bytes:
    """Text as Windows-1258 writes it: â ê ô ă ơ ư đ precomposed, tone marks combining."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            base, *marks = unicodedata.normalize("NFD", ch)
            letter = unicodedata.normalize(
                "NFC", base + "".join(m for m in marks if m not in TONES)
            )
            out += (letter + "".join(m for m in marks if m in TONES)).encode("cp1258")
    return bytes(out)


def run(store: Store, settings: Settings, path: Path, **kw: Any) -> ImportReport:
    return import_file(store, settings, path, NOW, **kw)


def cases(store: Store) -> dict[str, dict[str, Any]]:
    with store.begin() as conn:
        return {r.case_code: dict(r._mapping) for r in conn.execute(select(schema.cases))}


def case_count(store: Store) -> int:
    with store.begin() as conn:
        return conn.execute(select(func.count()).select_from(schema.cases)).scalar_one()


def good_rows(n: int, first: int = 0) -> list[list[Any]]:
    return [
        [f"HS-{i:05d}", "2.000488", "STP", "02/03/2026 08:00", "Nguyễn Văn An"]
        for i in range(first, first + n)
    ]


# ----- encoding: checked from end to end before anything is written ----------------------------


def test_file_that_turns_non_utf8_after_row_4000_writes_nothing_and_names_the_row(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """More than two batches decode fine; row 4,502 holds a cp1258 name. Nothing is written."""
    assert fileimport.BATCH_ROWS * 2 < 4500
    head = csv_text([HEADER, *good_rows(4500)]).encode("utf-8")
    bad_row = b"HS-BAD,2.000488,STP,02/03/2026 08:00," + to_cp1258("Nguyễn Văn Bình") + b"\n"
    tail = csv_text(good_rows(500, first=5000)).encode("utf-8")
    path = tmp_path / "hoso.csv"
    path.write_bytes(head + bad_row + tail)
    offset = len(head) + bad_row.index(b"Nguy") + 4  # the first byte that is not UTF-8

    with pytest.raises(ImportFileError) as caught:
        run(store, settings, path)
    message = str(caught.value)
    assert message.startswith(f"{path}: row 4502 is not valid UTF-8 (byte offset {offset:,}: ")
    assert "nothing was imported" in message
    assert "--encoding cp1258" in message and "re-save it as UTF-8" in message
    assert case_count(store) == 0  # not the 4,000 rows of the first two batches


def test_non_utf8_file_dry_run_is_the_same_error(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(
        to_cp1258(csv_text([HEADER, ["A", "2.000488", "STP", "02/03/2026", "Bà Đào"]]))
    )
    with pytest.raises(ImportFileError, match=r"c\.csv: row 1 is not valid UTF-8"):
        run(store, settings, path, dry_run=True)


def test_utf8_bom_wins_over_the_encoding_given(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Excel's "CSV UTF-8" starts with a BOM: it is UTF-8 even when cp1258 was asked for."""
    text = csv_text([HEADER, ["A", "2.000488", "STP", "02/03/2026 08:00", "Trần Thị Ánh"]])
    path = tmp_path / "c.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    report = run(store, settings, path, encoding="cp1258")
    assert (report.rows, report.rejected, report.problems) == (1, 0, [])
    assert cases(store)["A"]["applicant_name"] == "Trần Thị Ánh"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_file_with_bom_imports(
    store: Store, settings: Settings, tmp_path: Path, codec: str
) -> None:
    """Excel's "Unicode text" (UTF-16 with BOM, tab separated) imports with the default encoding."""
    rows = [
        HEADER,
        ["A", "2.000488", "STP", "02/03/2026 08:00", "Lê Văn Đức"],
        ["B", "2.000488", "STP", "sai ngày", "Phạm Thị Ngọc"],
    ]
    path = tmp_path / "unicode.csv"
    path.write_bytes("\ufeff".encode(codec) + csv_text(rows, delimiter="\t").encode(codec))
    report = run(store, settings, path)
    assert (report.rows, report.written.inserted, report.rejected) == (2, 1, 1)
    assert report.problems[0].startswith(
        "unicode.csv: row 3, column Ngày tiếp nhận (received_at): "
    )  # the BOM is not part of the first header, rows count as in UTF-8
    assert cases(store)["A"]["applicant_name"] == "Lê Văn Đức"


def test_cp1258_file_imports_with_composed_names(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    names = {"A": "Nguyễn Văn Ân", "B": "Trần Thị Hồng Nhung", "C": "Đặng Quốc Việt"}
    rows = [HEADER] + [[c, "2.000488", "STP", "02/03/2026 08:00", n] for c, n in names.items()]
    path = tmp_path / "cu.csv"
    path.write_bytes(to_cp1258(csv_text(rows)))
    decomposed = path.read_bytes().decode("cp1258")
    assert "Nguyễn" not in decomposed  # the file really holds combining tone marks

    with pytest.raises(ImportFileError, match="--encoding cp1258"):
        run(store, settings, path)  # as UTF-8 it is refused whole
    assert case_count(store) == 0

    report = run(store, settings, path, encoding="cp1258")
    assert (report.rows, report.rejected, report.problems) == (3, 0, [])
    stored = {code: c["applicant_name"] for code, c in cases(store).items()}
    assert stored == names
    assert all(unicodedata.is_normalized("NFC", n) for n in stored.values())


def test_unknown_encoding_is_a_file_error(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(csv_text([HEADER, good_rows(1)[0]]), encoding="utf-8")
    for name in ("tcvn3-khong-co", "base64"):
        with pytest.raises(ImportFileError, match=f"c\\.csv: unknown encoding '{name}'"):
            run(store, settings, path, encoding=name)
    assert case_count(store) == 0


# ----- values a database refuses are one rejected row ------------------------------------------


def test_nul_byte_rejects_its_row_and_keeps_the_batch(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """PostgreSQL refuses NUL in text (it lost the whole batch); SQLite stored it silently."""
    rows = [
        HEADER,
        *good_rows(3),
        ["HS-NUL1", "2.000488", "STP", "02/03/2026 08:00", "Nguyễn\x00Văn An"],
        ["HS-NUL2\x00", "2.000488", "STP", "02/03/2026 08:00", "Lê Thị Hoa"],
        *good_rows(3, first=10),
    ]
    path = tmp_path / "c.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    report = run(store, settings, path)
    assert (report.rows, report.written.inserted, report.rejected) == (8, 6, 2)
    assert report.problems == [
        "c.csv: row 5, column Chủ hồ sơ (applicant_name): contains a NUL character (\\x00), "
        "which a database cannot store",
        "c.csv: row 6, column Mã hồ sơ (case_code): contains a NUL character (\\x00), "
        "which a database cannot store",
    ]
    assert set(cases(store)) == {f"HS-{i:05d}" for i in (0, 1, 2, 10, 11, 12)}


def test_text_longer_than_any_field_allows_is_rejected(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """applicant_name is unbounded in the database; MAX_FIELD_CHARS (4,000) still caps it."""
    rows = [
        HEADER,
        ["A", "2.000488", "STP", "02/03/2026 08:00", "x" * MAX_FIELD_CHARS],
        ["B", "2.000488", "STP", "02/03/2026 08:00", "x" * (MAX_FIELD_CHARS + 1)],
        ["C", "2.000488", "STP", "02/03/2026 08:00", "Nguyễn Văn An"],
    ]
    path = tmp_path / "c.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    report = run(store, settings, path)
    assert report.problems == [
        "c.csv: row 3, column Chủ hồ sơ (applicant_name): is 4,001 characters long, "
        "at most 4,000 are accepted"
    ]
    assert set(cases(store)) == {"A", "C"}


def test_case_code_longer_than_its_column_is_rejected(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = [
        HEADER,
        ["A" * 128, "2.000488", "STP", "02/03/2026 08:00", ""],
        ["B" * 129, "2.000488", "STP", "02/03/2026 08:00", ""],
    ]
    path = tmp_path / "c.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    report = run(store, settings, path)
    assert report.problems == [
        "c.csv: row 3, column Mã hồ sơ (case_code): is 129 characters long, at most 128 are kept"
    ]
    assert set(cases(store)) == {"A" * 128}


def test_cell_bigger_than_the_csv_modules_limit_is_one_rejected_row(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """The csv module stops at 128 KiB per cell by default: that aborted the whole file."""
    huge = "Nguyễn Văn An " * 20_000  # 280,000 characters, 340 KB
    assert len(huge.encode("utf-8")) > 128 * 1024
    rows = [
        HEADER,
        *good_rows(2),
        ["HUGE-1", "2.000488", "STP", "02/03/2026 08:00", huge],
        ["HUGE-2", "2.000488", "STP", huge, "Lê Thị Hoa"],
        *good_rows(2, first=10),
    ]
    path = tmp_path / "c.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    report = run(store, settings, path)
    assert (report.rows, report.written.inserted, report.rejected) == (6, 4, 2)
    assert report.problems == [
        "c.csv: row 4, column Chủ hồ sơ (applicant_name): is 280,000 characters long, "
        "at most 4,000 are accepted",
        "c.csv: row 5, column Ngày tiếp nhận (received_at): is 280,000 characters long, "
        "at most 4,000 are accepted",  # named, not echoed
    ]
    assert set(cases(store)) == {"HS-00000", "HS-00001", "HS-00010", "HS-00011"}


# ----- bounds: a due the calendar cannot compute -----------------------------------------------


def test_row_whose_due_falls_past_the_calendar_is_rejected(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Received in late 2200 with 10 working days (or 30 calendar days) the due is in 2201,
    where the working calendar ends; such a row took down `cases` and `run --once` later."""
    rows = [
        HEADER,
        ["OK-2200", "1.000001", "STP", "01/12/2200 08:00", ""],  # 4 working hours: in 2200
        ["LATE-10WD", "2.000488", "STP", "25/12/2200 08:00", ""],
        ["LATE-30CD", "1.000002", "STP", "15/12/2200 08:00", ""],
        ["LATE-UNKNOWN", "9.999999", "STP", "31/12/2200 18:00", ""],  # clock starts in 2201
        ["OK-2026", "2.000488", "STP", "02/03/2026 08:00", ""],
    ]
    path = tmp_path / "c.csv"
    path.write_text(csv_text(rows), encoding="utf-8")
    report = run(store, settings, path)
    column = "column Ngày tiếp nhận (received_at)"
    beyond = "falls outside the calendar's years 1900-2200: year 2201 is outside"
    assert [p.split(": ", 1)[1] for p in report.problems] == [
        f"row 3, {column}: the due under procedure 2.000488 (10 working_days) {beyond} "
        "the supported range 1900-2200",
        f"row 4, {column}: the due under procedure 1.000002 (30 calendar_days) {beyond} "
        "the supported range 1900-2200",
        f"row 5, {column}: the start of the clock {beyond} the supported range 1900-2200",
    ]
    assert set(cases(store)) == {"OK-2200", "OK-2026"}


def test_a_value_the_database_still_refuses_is_a_rejected_row(
    postgres_url: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last line of defence: should validation miss a value PostgreSQL refuses (here NUL,
    with the check switched off), the store retries the batch row by row and the import
    reports that row as rejected, by number; the rest of the batch is written."""
    from watchdog.sources import fields

    monkeypatch.setattr(fields, "_unstorable", lambda raw, problems: set())
    store = Store.open(postgres_url, migrate=False)
    store.upgrade()
    try:
        rows = [
            HEADER,
            *good_rows(2),
            ["HS-NUL", "2.000488", "STP", "02/03/2026 08:00", "Nguyễn\x00Văn An"],
            *good_rows(2, first=10),
        ]
        path = tmp_path / "c.csv"
        path.write_text(csv_text(rows), encoding="utf-8")
        report = run(store, settings, path)
        assert (report.rows, report.written.inserted, report.rejected) == (5, 4, 1)
        assert len(report.problems) == 1
        assert report.problems[0].startswith("c.csv: row 4: the database refused it: ")
        assert set(cases(store)) == {"HS-00000", "HS-00001", "HS-00010", "HS-00011"}
    finally:
        store.close()
