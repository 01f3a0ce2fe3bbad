"""File import into a real database (SPEC 6), on SQLite and PostgreSQL alike (`store` fixture).

Every test passes `now` as a fixed aware instant, so `created_at`, `updated_at` and
`next_check_at` are known exactly. Row numbers in problems are the spreadsheet's: the header is
row 1, blank lines count.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from watchdog.config import Settings, load_settings
from watchdog.sources import fileimport
from watchdog.sources.fileimport import ImportFileError, ImportReport, import_file
from watchdog.store import Store, schema

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=VN)
LATER = NOW + timedelta(hours=2)


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


@pytest.fixture
def settings(small_config: Path) -> Settings:
    return load_settings(small_config)


def stored(store: Store) -> dict[str, dict[str, Any]]:
    """Every case in the database, by case code."""
    with store.begin() as conn:
        rows = conn.execute(select(schema.cases)).all()
    return {r.case_code: dict(r._mapping) for r in rows}


def write_csv(
    path: Path,
    rows: list[list[Any]],
    *,
    delimiter: str = ",",
    bom: bool = False,
    newline: str = "\n",
) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerows(rows)
    path.write_bytes((("\ufeff" if bom else "") + buf.getvalue()).encode("utf-8"))
    return path


def run(store: Store, settings: Settings, path: Path, now: datetime = NOW, **kw) -> ImportReport:
    return import_file(store, settings, path, now, **kw)


def counts(report: ImportReport) -> tuple[int, int, int, int, int]:
    w = report.written
    return report.rows, w.inserted, w.updated, w.unchanged, report.rejected


# ----- a CSV with Vietnamese headers, good and bad rows ------------------------------------------

VN_HEADER = [
    "STT",
    "Mã hồ sơ",
    "Mã TTHC",
    "Đơn vị",
    "Ngày tiếp nhận",
    "Ngày hẹn trả",
    "Trạng thái",
    "Ngày kết thúc xử lý",
    "Ngày trả",
    "Cán bộ thụ lý",
    "Chủ hồ sơ",
    "Số điện thoại",
    "Kênh thực hiện",
]


def mixed_rows() -> list[list[Any]]:
    return [
        VN_HEADER,
        # row 2: good, open, date-only appointment
        ["1", "HS-001", "2.000488", "STP.HC", "02/03/2026 08:00", "16/03/2026", "Đang xử lý",
         "", "", "chuyenvien", "Nguyễn Văn An", "0901234567", "Trực tuyến"],
        # row 3: bad date
        ["2", "HS-002", "2.000488", "STP.HC", "31/02/2026 08:00", "", "", "", "", "", "", "", ""],
        # row 4: good, finished, ISO 8601 with offset
        ["3", "HS-003", "1.000001", "STP", "2026-03-02T09:30:00+07:00", "2026-03-02T15:30:00+07:00",
         "9", "2026-03-02T14:00:00+07:00", "", "", "Trần Thị Bình", "", "1"],
        # row 5: case code missing
        ["4", "", "2.000488", "STP", "02/03/2026 10:00", "", "", "", "", "", "", "", ""],
        # row 6: two problems in one row: status 9 without finish, unknown channel
        ["5", "HS-005", "2.000488", "STP", "02/03/2026 10:00", "", "9", "", "", "", "", "", "fax"],
        # row 7: blank line, skipped but counted
        [],
        # row 8: good, yyyyMMddHHmmss, returned, status defaulted from the dates
        ["7", "HS-008", "1.000002", "SXD", "20260303101500", "", "", "", "20260304160000",
         "", "", "", "Bưu chính"],
        # row 9: finished before received
        ["8", "HS-009", "2.000488", "STP", "05/03/2026 08:00", "", "", "04/03/2026 08:00", "",
         "", "", "", ""],
    ]  # fmt: skip


def test_csv_with_vietnamese_headers_keeps_good_rows_and_names_bad_ones(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "hoso.csv", mixed_rows())
    seen: list[str] = []
    report = run(store, settings, path, on_problem=seen.append)

    assert counts(report) == (7, 3, 0, 0, 4)
    assert report.ignored_columns == []  # STT is a known portal column
    assert report.problems == seen
    p = report.problems
    assert {m.split(", column")[0] for m in p} == {f"hoso.csv: row {n}" for n in (3, 5, 6, 9)}
    assert p[0].startswith("hoso.csv: row 3, column Ngày tiếp nhận (received_at): not a valid date")
    assert "'31/02/2026 08:00'" in p[0]
    assert p[1] == "hoso.csv: row 5, column Mã hồ sơ (case_code): required value is missing"
    assert (
        "hoso.csv: row 6, column Kênh thực hiện (submission_channel): "
        "expected a channel 1 (direct), 2 (online) or 3 (postal) or its name, got 'fax'"
    ) in p
    assert p[-1] == (
        "hoso.csv: row 9, column Ngày kết thúc xử lý (finished_at): "
        "is before received_at (05/03/2026 08:00)"
    )

    cases = stored(store)
    assert set(cases) == {"HS-001", "HS-003", "HS-008"}

    a = cases["HS-001"]
    assert a["procedure_code"] == "2.000488"
    assert a["unit_code"] == "STP.HC"
    assert a["received_at"] == vn(2026, 3, 2, 8, 0)
    assert a["received_at"].tzinfo is not None
    assert a["due_at"] == vn(2026, 3, 16, 17, 0)  # date-only: close of office hours
    assert a["status"] == 4
    assert a["finished_at"] is None and a["returned_at"] is None
    assert a["assignee"] == "chuyenvien"
    assert a["applicant_name"] == "Nguyễn Văn An"
    assert a["applicant_phone"] == "0901234567"
    assert a["submission_channel"] == "online"
    assert a["source"] == "import"
    assert a["created_at"] == a["updated_at"] == a["next_check_at"] == NOW

    b = cases["HS-003"]
    assert (b["received_at"], b["due_at"], b["finished_at"]) == (
        vn(2026, 3, 2, 9, 30),
        vn(2026, 3, 2, 15, 30),
        vn(2026, 3, 2, 14, 0),
    )
    assert b["status"] == 9
    assert b["submission_channel"] == "direct"

    c = cases["HS-008"]
    assert c["received_at"] == vn(2026, 3, 3, 10, 15)
    assert c["status"] == 10
    assert c["returned_at"] == c["finished_at"] == vn(2026, 3, 4, 16, 0)
    assert c["submission_channel"] == "postal"


def test_row_with_two_problems_reports_both(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "hoso.csv", mixed_rows())
    report = run(store, settings, path)
    row6 = sorted(m for m in report.problems if ": row 6, " in m)
    assert row6 == [
        "hoso.csv: row 6, column Kênh thực hiện (submission_channel): "
        "expected a channel 1 (direct), 2 (online) or 3 (postal) or its name, got 'fax'",
        "hoso.csv: row 6, column Ngày kết thúc xử lý (finished_at): "
        "required when the status is 9 (Đã xử lý xong)",
    ]


def test_canonical_headers_are_named_once(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        [
            ["case_code", "procedure_code", "unit_code", "received_at", "status"],
            ["A", "2.000488", "STP", "02/03/2026 08:00", "42"],
        ],
    )
    report = run(store, settings, path)
    assert report.problems == [
        "c.csv: row 2, column status: expected a portal status code 1-10 or its name, got '42'"
    ]


def test_problem_for_a_column_the_file_lacks_names_the_field(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        [["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Trạng thái"],
         ["A", "2.000488", "STP", "02/03/2026 08:00", "9"]],
    )  # fmt: skip
    report = run(store, settings, path)
    assert report.problems == [
        "c.csv: row 2, column finished_at: required when the status is 9 (Đã xử lý xong)"
    ]


def test_blank_lines_above_the_header_count_as_rows(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "\n\nMã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận\nA,2.000488,STP,02/03/2026 08:00\n"
        "B,2.000488,STP,hôm qua\n",
        encoding="utf-8",
    )
    report = run(store, settings, path)
    assert counts(report) == (2, 1, 0, 0, 1)
    assert report.problems[0].startswith("c.csv: row 5, column Ngày tiếp nhận (received_at): ")


def test_quoted_cells_with_commas_and_newlines(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """A quoted cell may hold the delimiter, quotes and a line break (still one spreadsheet row)."""
    path = write_csv(
        tmp_path / "c.csv",
        [
            ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Chủ hồ sơ"],
            ["A", "2.000488", "STP", "02/03/2026 08:00", 'Công ty "Hoa Mai", chi nhánh\nHà Nội'],
            ["B", "2.000488", "STP", "sai ngày", "x"],
        ],
    )
    report = run(store, settings, path)
    assert stored(store)["A"]["applicant_name"] == 'Công ty "Hoa Mai", chi nhánh\nHà Nội'
    assert report.problems[0].startswith("c.csv: row 3, column Ngày tiếp nhận (received_at): ")


def test_escaped_quotes_after_the_first_8_kib(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """RFC 4180 quotes ("") are read the same wherever they appear in the file.

    The dialect is sniffed from the first 8 KiB; a company name with quotes further down must
    still be one cell.
    """
    rows: list[list[Any]] = [["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Chủ hồ sơ"]]
    rows += [
        [f"HS-{i:05d}", "2.000488", "STP", "02/03/2026 08:00", "Nguyễn Văn An"] for i in range(300)
    ]
    rows.append(["HS-QUOTE", "2.000488", "STP", "02/03/2026 08:00", 'Công ty "Hoa Mai", CN'])
    path = write_csv(tmp_path / "c.csv", rows)
    assert path.read_bytes().index(b'""Hoa Mai""') > 8192
    report = run(store, settings, path)
    assert report.problems == []
    assert counts(report) == (301, 301, 0, 0, 0)
    assert stored(store)["HS-QUOTE"]["applicant_name"] == 'Công ty "Hoa Mai", CN'


def test_rows_across_batches_keep_their_numbers(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    n = fileimport.BATCH_ROWS + 500
    rows: list[list[Any]] = [["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Ngày hẹn trả"]]
    for i in range(n):
        due = "không rõ" if i in (10, n - 3) else f"{16 + i % 10}/03/2026"
        rows.append([f"HS-{i:05d}", "2.000488", "STP", f"02/03/2026 {8 + i % 8:02d}:00", due])
    report = run(store, settings, write_csv(tmp_path / "big.csv", rows))
    assert counts(report) == (n, n - 2, 0, 0, 2)
    assert [m.split(", column")[0] for m in report.problems] == [
        "big.csv: row 12",
        f"big.csv: row {n - 1}",
    ]
    assert len(stored(store)) == n - 2


def test_same_case_twice_in_a_file_last_row_wins(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        [
            ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Trạng thái"],
            ["A", "2.000488", "STP", "02/03/2026 08:00", "2"],
            ["A", "2.000488", "STP", "02/03/2026 08:00", "4"],
        ],
    )
    report = run(store, settings, path)
    assert report.rows == 2 and report.rejected == 0
    assert stored(store)["A"]["status"] == 4


# ----- XLSX with national-portal headers and real datetime cells ---------------------------------

PORTAL_HEADER = [
    "STT",
    "MaHoSo",
    "MaTTHC",
    "TenTTHC",
    "DonViXuLy",
    "NgayTiepNhan",
    "NgayHenTra",
    "TrangThaiHoSo",
    "NgayKetThucXuLy",
    "NgayTra",
    "KenhThucHien",
]


def write_xlsx(path: Path, rows: list[list[Any]], number_formats: dict[int, str] | None = None):
    wb = Workbook()
    ws = wb.active
    ws.title = "DanhSachHoSo"
    for row in rows:
        ws.append(row)
    for col, fmt in (number_formats or {}).items():
        for cells in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            for cell in cells:
                cell.number_format = fmt
    wb.save(path)
    return path


def test_xlsx_with_portal_headers_and_datetime_cells(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = [
        PORTAL_HEADER,
        [1, "000.00.21.H59-260302-0001", "2.000488", "Cấp Phiếu LLTP", "STP.HC",
         datetime(2026, 3, 2, 8, 15), datetime(2026, 3, 16, 17, 0), 4, None, None, 2],
        [2, "000.00.21.H59-260302-0002", "1.000001", "Bốn giờ", "STP",
         datetime(2026, 3, 2, 9, 0), datetime(2026, 3, 2, 15, 0), 10,
         datetime(2026, 3, 2, 14, 30), datetime(2026, 3, 2, 16, 0), "Trực tiếp"],
        [3, "000.00.21.H59-260302-0003", "1.000002", "Ba mươi ngày", "SXD",
         "02/03/2026 10:00", "20260401170000", "Đang xử lý", None, None, None],
        # row 5: returned before received
        [4, "000.00.21.H59-260302-0004", "2.000488", "x", "STP",
         datetime(2026, 3, 5, 8, 0), None, 10, None, datetime(2026, 3, 4, 8, 0), None],
        # row 6: a date typed as a number into a General cell: Excel's day 46083 (30/12/1899 +
        # 46083 days = 02/03/2026) and half a day, 12:00
        [5, "000.00.21.H59-260302-0005", "2.000488", "x", "STP",
         46083.5, None, None, None, None, None],
        # row 7: a number that is no date (before Excel's day 1)
        [6, "000.00.21.H59-260302-0006", "2.000488", "x", "STP",
         -2.0, None, None, None, None, None],
    ]  # fmt: skip
    path = write_xlsx(tmp_path / "hoso.xlsx", rows)
    report = run(store, settings, path)

    assert counts(report)[:2] == (6, 4)
    assert report.rejected == 2
    assert report.ignored_columns == []
    assert any(
        m.startswith("hoso.xlsx: row 5, column NgayTra (returned_at): is before received_at")
        for m in report.problems
    ), report.problems
    assert any(
        m.startswith("hoso.xlsx: row 7, column NgayTiepNhan (received_at): the number -2.0 ")
        for m in report.problems
    ), report.problems
    assert all(": row 5, " in m or ": row 7, " in m for m in report.problems)

    cases = stored(store)
    assert set(cases) == {f"000.00.21.H59-260302-000{i}" for i in (1, 2, 3, 5)}
    assert cases["000.00.21.H59-260302-0005"]["received_at"] == vn(2026, 3, 2, 12, 0)
    one = cases["000.00.21.H59-260302-0001"]
    assert one["received_at"] == vn(2026, 3, 2, 8, 15)
    assert one["received_at"] == datetime(2026, 3, 2, 1, 15, tzinfo=UTC)  # local, not UTC
    assert one["due_at"] == vn(2026, 3, 16, 17, 0)
    assert one["status"] == 4
    assert one["submission_channel"] == "online"
    assert one["unit_code"] == "STP.HC"
    two = cases["000.00.21.H59-260302-0002"]
    assert two["status"] == 10
    assert two["finished_at"] == vn(2026, 3, 2, 14, 30)
    assert two["returned_at"] == vn(2026, 3, 2, 16, 0)
    assert two["submission_channel"] == "direct"
    three = cases["000.00.21.H59-260302-0003"]
    assert three["received_at"] == vn(2026, 3, 2, 10, 0)
    assert three["due_at"] == vn(2026, 4, 1, 17, 0)
    assert three["status"] == 4


def test_xlsx_date_only_cells_are_dates(store: Store, settings: Settings, tmp_path: Path) -> None:
    """A cell formatted as a date (no time) is a date-only value, as in a CSV.

    openpyxl yields such a cell as a datetime at 00:00; a date-only NgayHenTra must still mean
    the close of office hours that day (SPEC 6), and a date-only NgayKetThucXuLy on the day of
    receipt must not come out before the receipt.
    """
    rows = [
        PORTAL_HEADER,
        [1, "D-1", "2.000488", "x", "STP", datetime(2026, 3, 2, 8, 15), date(2026, 3, 16), 4,
         None, None, None],
        [2, "D-2", "2.000488", "x", "STP", datetime(2026, 3, 2, 8, 15), date(2026, 3, 2), 9,
         date(2026, 3, 2), None, None],
    ]  # fmt: skip
    path = write_xlsx(tmp_path / "dates.xlsx", rows, {7: "dd/mm/yyyy", 9: "dd/mm/yyyy"})
    report = run(store, settings, path)
    assert report.problems == []
    cases = stored(store)
    assert cases["D-1"]["due_at"] == vn(2026, 3, 16, 17, 0)
    assert cases["D-2"]["due_at"] == vn(2026, 3, 2, 17, 0)
    assert cases["D-2"]["finished_at"] == vn(2026, 3, 2, 0, 0)  # judged by its date


def test_xlsx_numbers_for_codes(store: Store, settings: Settings, tmp_path: Path) -> None:
    """Spreadsheets hold codes as numbers: 1234 and 2.0 are read as the text a user sees."""
    rows = [
        ["MaHoSo", "MaTTHC", "DonViXuLy", "NgayTiepNhan", "TrangThaiHoSo", "KenhThucHien"],
        [260302001, "2.000488", "STP", 20260302080000, 2.0, 3.0],
    ]
    report = run(store, settings, write_xlsx(tmp_path / "n.xlsx", rows))
    assert report.problems == []
    case = stored(store)["260302001"]
    assert case["received_at"] == vn(2026, 3, 2, 8, 0)
    assert (case["status"], case["submission_channel"]) == (2, "postal")


# ----- CSV as Excel writes it: semicolons, BOM, CRLF ---------------------------------------------


def test_semicolon_csv_with_bom(store: Store, settings: Settings, tmp_path: Path) -> None:
    rows = [
        ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Ngày hẹn trả", "Chủ hồ sơ"],
        ["HS-1", "2.000488", "STP", "02/03/2026 08:00", "16/03/2026", "Lê Văn Cường, Hà Nội"],
        ["HS-2", "1.000002", "SXD", "02/03/2026 14:45:10", "", "Phạm Thị Dung"],
        ["HS-3", "2.000488", "STP", "không rõ", "", ""],
    ]
    path = write_csv(tmp_path / "excel.csv", rows, delimiter=";", bom=True, newline="\r\n")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    report = run(store, settings, path)
    assert counts(report) == (3, 2, 0, 0, 1)
    assert report.ignored_columns == []
    assert report.problems[0].startswith(
        "excel.csv: row 4, column Ngày tiếp nhận (received_at): "
    )  # the BOM is not part of the first header
    cases = stored(store)
    assert cases["HS-1"]["applicant_name"] == "Lê Văn Cường, Hà Nội"
    assert cases["HS-1"]["due_at"] == vn(2026, 3, 16, 17, 0)
    assert cases["HS-2"]["received_at"] == vn(2026, 3, 2, 14, 45, 10)


def test_tab_separated_csv(store: Store, settings: Settings, tmp_path: Path) -> None:
    rows = [
        ["MaHoSo", "MaTTHC", "DonViXuLy", "NgayTiepNhan"],
        ["T-1", "2.000488", "STP", "02/03/2026 08:00"],
    ]
    report = run(store, settings, write_csv(tmp_path / "t.csv", rows, delimiter="\t"))
    assert counts(report) == (1, 1, 0, 0, 0)


# ----- upsert by case_code -----------------------------------------------------------------------


def upsert_rows(status_of_b: str = "4") -> list[list[Any]]:
    return [
        ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Ngày hẹn trả", "Trạng thái",
         "Cán bộ thụ lý"],
        ["A", "2.000488", "STP.HC", "02/03/2026 08:00", "16/03/2026", "4", "chuyenvien"],
        ["B", "2.000488", "STP.HC", "2026-03-03T09:00:00+07:00", "", status_of_b, ""],
        ["C", "1.000002", "SXD", "20260303101500", "", "", ""],
        ["D", "1.000001", "STP", datetime(2026, 3, 4, 8, 0).isoformat(), "", "2", ""],
    ]  # fmt: skip


def test_reimport_of_the_same_file_changes_nothing(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", upsert_rows())
    first = run(store, settings, path, NOW)
    assert counts(first) == (4, 4, 0, 0, 0)
    before = stored(store)

    second = run(store, settings, path, LATER)
    assert counts(second) == (4, 0, 0, 4, 0)
    assert stored(store) == before  # not even updated_at or next_check_at moved


def test_changing_one_row_updates_only_that_case(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    run(store, settings, write_csv(tmp_path / "v1.csv", upsert_rows("4")), NOW)
    before = stored(store)

    report = run(store, settings, write_csv(tmp_path / "v2.csv", upsert_rows("5")), LATER)
    assert counts(report) == (4, 0, 1, 3, 0)

    after = stored(store)
    assert after["B"]["status"] == 5
    assert after["B"]["updated_at"] == LATER
    assert after["B"]["next_check_at"] == LATER
    assert after["B"]["created_at"] == NOW  # created once
    assert after["B"]["id"] == before["B"]["id"]  # the same row, updated in place
    for code in "ACD":
        assert after[code] == before[code], code
        assert after[code]["updated_at"] == NOW


def test_a_new_row_in_a_later_file_is_inserted(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = upsert_rows()
    run(store, settings, write_csv(tmp_path / "v1.csv", rows), NOW)
    rows.append(["E", "2.000488", "STP", "05/03/2026 08:00", "", "", ""])
    report = run(store, settings, write_csv(tmp_path / "v2.csv", rows), LATER)
    assert counts(report) == (5, 1, 0, 4, 0)
    assert stored(store)["E"]["created_at"] == LATER


def test_same_instant_in_another_notation_is_unchanged(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    header = ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Ngày hẹn trả"]
    run(
        store,
        settings,
        write_csv(tmp_path / "a.csv", [header, ["A", "2.000488", "STP", "02/03/2026 08:00", ""]]),
        NOW,
    )
    report = run(
        store,
        settings,
        write_csv(
            tmp_path / "b.csv", [header, ["A", "2.000488", "STP", "2026-03-02T01:00:00Z", ""]]
        ),
        LATER,
    )
    assert counts(report) == (1, 0, 0, 1, 0)


def test_a_rejected_row_leaves_the_stored_case_alone(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    run(store, settings, write_csv(tmp_path / "v1.csv", upsert_rows()), NOW)
    before = stored(store)
    rows = upsert_rows()
    rows[1][3] = "ngày mai"  # A's received_at becomes unreadable
    report = run(store, settings, write_csv(tmp_path / "v2.csv", rows), LATER)
    assert counts(report) == (4, 0, 0, 3, 1)
    assert stored(store) == before


# ----- dry run -----------------------------------------------------------------------------------


def test_dry_run_counts_but_writes_nothing(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = upsert_rows()
    rows.append(["BAD", "2.000488", "STP", "32/01/2026", "", "", ""])
    path = write_csv(tmp_path / "c.csv", rows)

    report = run(store, settings, path, NOW, dry_run=True)
    assert counts(report) == (5, 4, 0, 0, 1)
    assert len(report.problems) == 1
    assert stored(store) == {}

    run(store, settings, write_csv(tmp_path / "v1.csv", upsert_rows("4")), NOW)
    before = stored(store)
    report = run(
        store, settings, write_csv(tmp_path / "v2.csv", upsert_rows("5")), LATER, dry_run=True
    )
    assert counts(report) == (4, 0, 1, 3, 0)
    assert stored(store) == before


def test_dry_run_counts_a_code_repeated_across_batches_as_the_import_writes_it(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """The file's batches share one dry-run state: A is new in the first batch, changed in the
    second (an update, not a second insert), the same in the third (unchanged)."""
    header = ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Trạng thái"]
    n = fileimport.BATCH_ROWS
    rows: list[list[Any]] = [header]
    for b, status in enumerate(("2", "4", "4")):
        rows.append(["A", "2.000488", "STP", "02/03/2026 08:00", status])
        rows += [[f"F-{b}-{i}", "2.000488", "STP", "02/03/2026", ""] for i in range(n - 1)]
    path = write_csv(tmp_path / "c.csv", rows)
    dry = run(store, settings, path, dry_run=True)
    assert stored(store) == {}
    real = run(store, settings, path)
    assert counts(dry) == counts(real) == (3 * n, 3 * n - 2, 1, 1, 0)


# ----- the file as a whole -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        (["Mã hồ sơ", "Mã TTHC", "Đơn vị"], "received_at"),
        (["Mã hồ sơ", "Mã TTHC", "Ngày tiếp nhận", "Trạng thái"], "unit_code"),
        (["MaTTHC", "DonViXuLy", "NgayTiepNhan"], "case_code"),
        (["MaHoSo", "DonViXuLy", "NgayTiepNhan"], "procedure_code"),
    ],
)
def test_missing_required_column_is_a_file_error(
    store: Store, settings: Settings, tmp_path: Path, header: list[str], missing: str
) -> None:
    path = write_csv(tmp_path / "c.csv", [header, ["x"] * len(header)])
    with pytest.raises(ImportFileError) as e:
        run(store, settings, path)
    assert missing in str(e.value)
    assert "c.csv" in str(e.value)
    assert stored(store) == {}


def test_two_columns_for_one_field_is_a_file_error(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    header = ["Mã hồ sơ", "MaHoSo", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận"]
    path = write_csv(tmp_path / "c.csv", [header, ["A", "A", "2.000488", "STP", "02/03/2026"]])
    with pytest.raises(ImportFileError, match="case_code"):
        run(store, settings, path)


def test_unknown_columns_are_reported_and_ignored(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    header = ["STT", "Mã hồ sơ", "Ghi chú", "Mã TTHC", "Tên TTHC", "Đơn vị", "Ngày tiếp nhận", "X"]
    rows = [header, ["1", "A", "gọi lại", "2.000488", "Cấp phiếu", "STP", "02/03/2026", "?"]]
    report = run(store, settings, write_csv(tmp_path / "c.csv", rows))
    assert report.ignored_columns == ["Ghi chú", "X"]
    assert counts(report) == (1, 1, 0, 0, 0)
    assert stored(store)["A"]["received_at"] == vn(2026, 3, 2, 0, 0)


def test_row_longer_than_the_header_is_rejected(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = [
        ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận"],
        ["A", "2.000488", "STP", "02/03/2026", "thừa"],
        ["B", "2.000488", "STP", "02/03/2026", ""],
    ]
    report = run(store, settings, write_csv(tmp_path / "c.csv", rows))
    assert report.problems == ["c.csv: row 2: has 5 cells, the header has 4"]
    assert set(stored(store)) == {"B"}


def test_value_too_long_for_the_database_rejects_only_its_row(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """A value longer than its column holds is a problem of its row, on every database.

    PostgreSQL refuses such a value; it must not take the good rows of its batch with it.
    """
    rows = [
        ["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Số điện thoại"],
        ["A", "2.000488", "STP", "02/03/2026 08:00", "0901234567"],
        ["B", "2.000488", "STP", "02/03/2026 08:00", "0901234567; 0912345678; 0987654321 (nhà)"],
        ["C", "2.000488", "STP", "02/03/2026 08:00", ""],
    ]
    report = run(store, settings, write_csv(tmp_path / "c.csv", rows))
    assert set(stored(store)) == {"A", "C"}
    assert report.rejected == 1
    assert report.problems[0].startswith("c.csv: row 3, column Số điện thoại (applicant_phone): ")


def test_not_an_xlsx_file(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "hoso.xlsx"
    path.write_text("Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"hoso\.xlsx"):
        run(store, settings, path)


def test_other_suffix_is_a_file_error(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "hoso.txt", [["Mã hồ sơ"]])
    with pytest.raises(
        ImportFileError,
        match=r"expected a \.csv, \.xlsx, \.xlsm, \.xlsb, \.xls or \.ods file, got \.txt",
    ):
        run(store, settings, path)


def test_missing_file(store: Store, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        run(store, settings, tmp_path / "khongco.csv")


def test_csv_that_is_not_utf8(store: Store, settings: Settings, tmp_path: Path) -> None:
    """Latin-1 bytes in the header: refused whole, naming the row (a UTF-16 file with its BOM
    is read as UTF-16: see test_import_validation)."""
    path = tmp_path / "c.csv"
    path.write_bytes(
        "Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận\n".encode().replace(b"\xc3\xa3", b"\xe3")
    )
    with pytest.raises(
        ImportFileError, match=r"c\.csv: row 1 is not valid UTF-8 \(byte offset 1: 0xe3"
    ):
        run(store, settings, path)


def test_empty_file_has_no_header(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no header"):
        run(store, settings, path)
