"""Exports as the one-stop software and offices really write them (issue 11, item 4; SPEC 6).

The same export is written as XLSX (openpyxl), as the old XLS (BIFF8, written by xlwt) and as
ODS (written by odfpy), and imported through python-calamine on SQLite and PostgreSQL (`store`
fixture). The export, as a province's software prints it:

    row 1  UBND TỈNH HÀ NAM                              (title)
    row 2  DANH SÁCH HỒ SƠ TIẾP NHẬN THÁNG 3/2026        (title)
    row 3  (blank)
    row 4  Thông tin hồ sơ (merged A4:D4) | Thông tin xử lý (merged E4:I4)
    row 5  STT | Mã hồ sơ | Mã TTHC | Đơn vị | Ngày tiếp nhận | Ngày hẹn trả | Trạng thái |
           Cán bộ thụ lý | Kênh thực hiện
    row 6- the cases (EXPORT_ROWS below, each annotated)

Excel serials (1900 date system, the one every Windows Excel and LibreOffice file uses): serial
1 is 01/01/1900 and, past Lotus's phantom 29/02/1900, day N is 30/12/1899 + N days. So 46084 is
03/03/2026 (30/12/1899 + 46084 days), 46085 is 04/03/2026, 46097 is 16/03/2026; the fraction is
the time of day: .375 x 24 h = 09:00, .5 = 12:00.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.conftest import SMALL_CONFIG
from watchdog.config import Settings, load_settings
from watchdog.sources.fileimport import ImportFileError, ImportReport, import_file
from watchdog.store import Store, schema
from watchdog.timefmt import FORMATS_HELP

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=VN)


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN)


# The small province, plus: procedure 1.012790 written unquoted (YAML reads the number 1.01279),
# two officials who share a name, and the local software's own labels.
CONFIG = (
    SMALL_CONFIG
    + """\
  - {code: 1.012790, name: Đăng ký khai sinh, limit: 5 working_days}
import:
  status_map: {"Đang thụ lý": 4}
  channel_map: {"Nộp tại quầy": 1}
"""
).replace(
    "officials:\n",
    "officials:\n"
    "  - {id: hai1, name: Trần Văn Hai, unit: STP}\n"
    "  - {id: hai2, name: Trần Văn Hai, unit: SXD}\n",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_settings(path)


def stored(store: Store) -> dict[str, dict[str, Any]]:
    with store.begin() as conn:
        rows = conn.execute(select(schema.cases)).all()
    return {r.case_code: dict(r._mapping) for r in rows}


TITLES: list[list[Any]] = [
    ["UBND TỈNH HÀ NAM"],
    ["DANH SÁCH HỒ SƠ TIẾP NHẬN THÁNG 3/2026"],
    [],
    ["Thông tin hồ sơ", None, None, None, "Thông tin xử lý"],
]
GROUPS = [(3, 0, 4), (3, 4, 5)]  # (row index, first column, columns): A4:D4 and E4:I4
HEADER = ["STT", "Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận", "Ngày hẹn trả", "Trạng thái",
          "Cán bộ thụ lý", "Kênh thực hiện"]  # fmt: skip
EXPORT_ROWS: list[list[Any]] = [
    # row 6: the TTHC code typed as a number (1.012790 became 1.01279); received as a serial
    # in a General cell; due as a date cell; the software's own status label (import.status_map),
    # the assignee by full name (one official has it), the long channel label (built in)
    [1, "HS-1", 1.01279, "STP.HC", 46084.375, date(2026, 3, 10), "Đang thụ lý",
     "Nguyễn Văn Chuyên", "Dịch vụ công trực tuyến toàn trình"],
    # row 7: a date cell for the receipt, a whole serial for the due (a date without a time),
    # a built-in status label, a name two officials share (kept, with a warning)
    [2, "HS-2", 2.000488, "STP", datetime(2026, 3, 2, 8, 15), 46097, "Chờ bổ sung",
     "Trần Văn Hai", "Qua bưu chính"],
    # row 8: a number no national code gives (7 decimals): refused, not truncated
    [3, "HS-3", 1.0127901, "STP", 46084.5, None, "Đang giải quyết", None, None],
    # row 9: a text date that does not exist
    [4, "HS-4", "1.000001", "STP", "31/02/2026 08:00", None, None, None, None],
    # row 10: whole serial for the receipt (the start of 04/03/2026), withdrawn, an official id,
    # the configured channel label
    [5, "HS-5", 1.000002, "SXD", 46085, None, "Rút hồ sơ", "chuyenvien", "Nộp tại quầy"],
]  # fmt: skip


def export() -> list[list[Any]]:
    return [*TITLES, HEADER, *EXPORT_ROWS]


# ----- writers of real files ---------------------------------------------------------------------


def write_xlsx(path: Path, rows: list[list[Any]], merges: list[tuple[int, int, int]]) -> Path:
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(r, c, value)  # numbers stay in General cells, dates get a date format
    for r, c, n in merges:
        ws.merge_cells(f"{get_column_letter(c + 1)}{r + 1}:{get_column_letter(c + n)}{r + 1}")
    wb.save(path)
    return path


def write_xls(path: Path, rows: list[list[Any]], merges: list[tuple[int, int, int]]) -> Path:
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("DanhSachHoSo")
    when = xlwt.easyxf(num_format_str="dd/mm/yyyy hh:mm")
    day = xlwt.easyxf(num_format_str="dd/mm/yyyy")
    spans = {(r, c): n for r, c, n in merges}
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if (r, c) in spans:
                ws.write_merge(r, r, c, c + spans[(r, c)] - 1, value)
            elif isinstance(value, datetime):
                ws.write(r, c, value, when)
            elif isinstance(value, date):
                ws.write(r, c, value, day)
            elif value is not None:
                ws.write(r, c, value)  # a number in a General cell
    wb.save(str(path))
    return path


def write_ods(path: Path, rows: list[list[Any]], merges: list[tuple[int, int, int]]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import CoveredTableCell, Table, TableCell, TableRow
    from odf.text import P

    spans = {(r, c): n for r, c, n in merges}
    doc = OpenDocumentSpreadsheet()
    table = Table(name="DanhSachHoSo")
    for r, row in enumerate(rows):
        tr = TableRow()
        covered = 0
        for c, value in enumerate(row):
            if covered:
                covered -= 1
                tr.addElement(CoveredTableCell())
                continue
            span: dict[str, Any] = {}
            if (r, c) in spans:
                span["numbercolumnsspanned"] = spans[(r, c)]
                covered = spans[(r, c)] - 1
            if value is None:
                tr.addElement(TableCell(**span))
                continue
            if isinstance(value, date):  # datetime too
                cell = TableCell(valuetype="date", datevalue=value.isoformat(), **span)
            elif isinstance(value, int | float):
                cell = TableCell(valuetype="float", value=value, **span)
            else:
                cell = TableCell(valuetype="string", **span)
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        table.addElement(tr)
    doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


WRITERS = {"xlsx": write_xlsx, "xls": write_xls, "ods": write_ods}


def run(store: Store, settings: Settings, path: Path, **kw: Any) -> ImportReport:
    return import_file(store, settings, path, NOW, **kw)


# ----- the export in each format -----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xlsx", "xls", "ods"])
def test_a_real_export_in_every_spreadsheet_format(
    store: Store, settings: Settings, tmp_path: Path, fmt: str
) -> None:
    """The export above, in each format, gives the same cases (worked out row by row):

    - header: rows 1-4 hold titles and the merged group row, none names the required columns;
      row 5 names all four, so it is the header and problems count rows from there as the
      spreadsheet does;
    - row 6, HS-1: 1.01279 -> procedure "1.012790" (the configured procedure, 5 working days);
      46084.375 -> 03/03/2026 09:00; the date cell 10/03/2026 -> due at the close, 17:00;
      "Đang thụ lý" -> 4 by import.status_map; "Nguyễn Văn Chuyên" -> chuyenvien, the one
      official with that name; the full portal channel label -> online;
    - row 7, HS-2: 2.000488 -> "2.000488"; the date cell 02/03/2026 08:15; 46097 -> the date
      16/03/2026, due at 17:00; "Chờ bổ sung" -> 5; "Trần Văn Hai" is hai1 and hai2: kept as
      written, with a warning (the engine names it as an unknown official); postal;
    - row 8, HS-3: 1.0127901 has 7 decimals: no d.dddddd code gives it, rejected on Mã TTHC;
    - row 9, HS-4: 31/02 does not exist: rejected, the reason lists the accepted forms;
    - row 10, HS-5: 1.000002 -> "1.000002"; 46085 -> the date 04/03/2026, a date-only receipt
      meaning 00:00; "Rút hồ sơ" -> 7; "Nộp tại quầy" -> direct by import.channel_map.
    """
    path = WRITERS[fmt](tmp_path / f"hoso.{fmt}", export(), GROUPS)
    seen: list[str] = []
    report = run(store, settings, path, on_problem=seen.append)

    assert report.header_row == 5
    assert (report.rows, report.written.inserted, report.rejected) == (5, 3, 2)
    assert report.ignored_columns == []
    assert report.problems == [
        f"hoso.{fmt}: row 8, column Mã TTHC (procedure_code): the number 1.0127901 is no "
        "national TTHC code (d.dddddd, such as 1.012790): write the code as text",
        f"hoso.{fmt}: row 9, column Ngày tiếp nhận (received_at): not a valid date: "
        f"'31/02/2026 08:00' (that month has no such day); expected a date as {FORMATS_HELP}",
    ]
    assert report.warnings == [
        f"hoso.{fmt}: row 7, column Cán bộ thụ lý (assignee): warning: 'Trần Văn Hai' is the "
        "name of 2 officials (hai1, hai2); kept as given: write the official's id"
    ]
    assert seen == [report.warnings[0], *report.problems]  # in file order, as they came

    cases = stored(store)
    assert set(cases) == {"HS-1", "HS-2", "HS-5"}
    one, two, five = cases["HS-1"], cases["HS-2"], cases["HS-5"]
    assert one["procedure_code"] == "1.012790"
    assert one["procedure_code"] in settings.procedures  # its deadline is kept
    assert (one["received_at"], one["due_at"]) == (vn(2026, 3, 3, 9, 0), vn(2026, 3, 10, 17, 0))
    assert (one["status"], one["assignee"], one["submission_channel"]) == (
        4,
        "chuyenvien",
        "online",
    )
    assert two["procedure_code"] == "2.000488"
    assert (two["received_at"], two["due_at"]) == (vn(2026, 3, 2, 8, 15), vn(2026, 3, 16, 17, 0))
    assert (two["status"], two["assignee"], two["submission_channel"]) == (
        5,
        "Trần Văn Hai",
        "postal",
    )
    assert (five["procedure_code"], five["unit_code"]) == ("1.000002", "SXD")
    assert five["received_at"] == vn(2026, 3, 4, 0, 0)
    assert (five["status"], five["assignee"], five["submission_channel"]) == (
        7,
        "chuyenvien",
        "direct",
    )


def test_a_column_title_merged_over_two_header_rows(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """A two-row header: "Mã hồ sơ", "Mã TTHC" and "Đơn vị" are merged down over rows 1-2 (their
    text sits in row 1, row 2 is blank under them) while "Thông tin tiếp nhận" groups "Ngày tiếp
    nhận" and "Trạng thái" in row 2. Row 2 plus the titles above its blanks names every required
    column, so row 2 is the header and the first case is row 3."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Thông tin tiếp nhận", None])
    ws.append([None, None, None, "Ngày tiếp nhận", "Trạng thái"])
    ws.append(["HS-1", "2.000488", "STP", "02/03/2026 08:00", "Đang giải quyết"])
    ws.append(["HS-2", "2.000488", "STP", "hôm qua", "2"])
    for cells in ("A1:A2", "B1:B2", "C1:C2", "D1:E1"):
        ws.merge_cells(cells)
    path = tmp_path / "two-rows.xlsx"
    wb.save(path)

    report = run(store, settings, path)
    assert report.header_row == 2
    assert report.ignored_columns == []
    assert [p.split(": ")[1] for p in report.problems] == [
        "row 4, column Ngày tiếp nhận (received_at)"
    ]
    case = stored(store)["HS-1"]
    assert (case["received_at"], case["status"]) == (vn(2026, 3, 2, 8, 0), 4)


def test_no_header_among_the_first_20_rows(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """21 title rows push the header to row 22, past the rows searched: a file error that says
    what a header must name; nothing is written."""
    rows: list[list[Any]] = [[f"Dòng tiêu đề {i}"] for i in range(1, 22)]
    rows += [["Mã hồ sơ", "Mã TTHC", "Đơn vị", "Ngày tiếp nhận"], ["A", "2.000488", "STP", 46084]]
    path = write_xlsx(tmp_path / "late.xlsx", rows, [])
    with pytest.raises(ImportFileError, match=r"late\.xlsx: no header row found in the first 20"):
        run(store, settings, path)
    assert stored(store) == {}


def test_the_likeliest_header_names_its_missing_column(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Two title rows, then a header without Ngày tiếp nhận: the error names row 3 (the row with
    the most known columns) and the missing column."""
    rows: list[list[Any]] = [["UBND TỈNH"], ["DANH SÁCH HỒ SƠ"], ["Mã hồ sơ", "Mã TTHC", "Đơn vị"]]
    rows.append(["A", "2.000488", "STP"])
    path = write_xls(tmp_path / "h.xls", rows, [])
    with pytest.raises(ImportFileError) as e:
        run(store, settings, path)
    assert str(e.value) == (
        f"{path}: missing required column(s): received_at "
        "(header row 3 has: Mã hồ sơ, Mã TTHC, Đơn vị)"
    )


def test_an_xlsx_named_xls_is_read_by_its_content(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Some software saves XLSX under a .xls name: the zip signature says what it is."""
    path = write_xlsx(tmp_path / "hoso.xls", [HEADER, EXPORT_ROWS[0]], [])
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    report = run(store, settings, path)
    assert (report.rows, report.written.inserted) == (1, 1)
    assert stored(store)["HS-1"]["procedure_code"] == "1.012790"


def test_an_html_table_named_xls_is_a_clear_file_error(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    """Web-based one-stop software often "exports Excel" as an HTML table named .xls."""
    path = tmp_path / "hoso.xls"
    path.write_text(
        "<html><body><table><tr><td>Mã hồ sơ</td></tr></table></body></html>", encoding="utf-8"
    )
    with pytest.raises(ImportFileError) as e:
        run(store, settings, path)
    assert str(e.value) == (
        f"{path}: an HTML page named .xls, not a workbook: open it in Excel or LibreOffice and "
        "save it as .xlsx, or export CSV"
    )


def test_an_empty_workbook_has_no_header(store: Store, settings: Settings, tmp_path: Path) -> None:
    path = write_ods(tmp_path / "empty.ods", [], [])
    with pytest.raises(ImportFileError, match=r"empty\.ods: no header row found"):
        run(store, settings, path)


def test_the_configured_encoding_is_the_default(
    store: Store, tmp_path: Path, settings: Settings
) -> None:
    """`import.encoding: cp1258` reads a Windows-1258 CSV without --encoding. cp1258 has no
    "ễ": it writes ê (0xEA) then the combining tilde (0xDE), and the import composes them back
    (NFC), so "Nguyễn" is stored as six letters. An explicit encoding still wins: utf-8 refuses
    the byte 0xEA."""
    path = tmp_path / "cp.yaml"
    path.write_text(CONFIG + "  encoding: cp1258\n", encoding="utf-8")
    cp = load_settings(path)
    assert cp.config.import_.encoding == "cp1258"
    head = b"MaHoSo,MaTTHC,DonViXuLy,NgayTiepNhan,ChuHoSo\nA,2.000488,STP,02/03/2026,"
    csv = tmp_path / "cp.csv"
    csv.write_bytes(head + b"Nguy\xea\xden V\xe3n An\n")
    report = run(store, cp, csv)
    assert report.problems == []
    assert stored(store)["A"]["applicant_name"] == "Nguyễn Văn An"
    assert len("Nguyễn") == 6
    with pytest.raises(ImportFileError, match="not valid UTF-8"):
        run(store, cp, csv, encoding="utf-8")
