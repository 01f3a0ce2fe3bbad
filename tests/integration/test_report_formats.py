"""`watchdog report --format xlsx|html` on the worked example, on SQLite and PostgreSQL: the
files are read back (openpyxl for the workbook, the standard HTML parser for the page)."""

from __future__ import annotations

import io
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.chart import BarChart

from tests.integration.test_report_766 import example_settings, load_example
from watchdog import cli
from watchdog.store import Store

FROM_TO = ["--from", "01/11/2026", "--to", "30/11/2026", "--as-of", "30/11/2026"]
TITLE = "BÁO CÁO TÌNH HÌNH GIẢI QUYẾT HỒ SƠ THỦ TỤC HÀNH CHÍNH"
HEADER = ["STT", "Tên đơn vị", "Tiếp nhận", "Đúng hạn", "Trong hạn", "Trễ hạn"]


@pytest.fixture
def config(store: Store, db_url: str, tmp_path: Path) -> Path:
    """The worked example's configuration on the test's database, its cases loaded."""
    load_example(store, example_settings(tmp_path))
    path = tmp_path / "config.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("sqlite:///var/test.db", db_url), encoding="utf-8")
    return path


def report(config: Path, *args: str) -> int:
    return cli.main(["--config", str(config), "report", *FROM_TO, *args])


def rows_of(ws, first: int, last: int) -> list[list]:
    return [[c.value for c in row] for row in ws.iter_rows(min_row=first, max_row=last)]


def test_xlsx_provincial_layout(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.xlsx"
    assert report(config, "--format", "xlsx", "--metric", "766", "--out", str(out)) == 0
    wb = load_workbook(out)
    ws = wb["Báo cáo"]
    # title rows, merged across the table's seven columns
    assert ws["A1"].value == TITLE and ws["A1"].font.b
    assert ws["A2"].value == "Từ ngày 01/11/2026 đến ngày 30/11/2026"
    assert ws["A3"].value == "Số liệu tính đến hết ngày 30/11/2026"
    assert "766/QĐ-TTg" in ws["A4"].value
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {"A1:G1", "A2:G2", "A3:G3", "A4:G4"} <= merged
    assert rows_of(ws, 6, 6) == [[*HEADER, "Tỷ lệ đúng hạn theo QĐ 766 (%)"]]
    # The single root (UBND tỉnh) is the total row; its children are the roman groups.
    assert rows_of(ws, 7, 10) == [
        ["I", "Sở Tư pháp", 5, 3, 0, 2, 60.0],
        ["1", "Phòng Hành chính tư pháp", 5, 3, 0, 2, 60.0],
        ["II", "Sở Xây dựng", 5, 0, 2, 2, 40.0],
        [None, "Tổng cộng", 10, 3, 2, 4, 50.0],
    ]
    assert ws["A7"].font.b and ws["B7"].font.b and not ws["B8"].font.b  # group rows bold
    assert ws["B8"].alignment.indent > 0
    for row in (7, 8, 9, 10):
        counts = [ws.cell(row, col) for col in range(3, 7)]
        assert all(c.data_type == "n" and isinstance(c.value, int) for c in counts)
        assert all(c.number_format.endswith("#,##0") for c in counts)
        rate = ws.cell(row, 7)
        assert rate.data_type == "n" and isinstance(rate.value, int | float)
        assert rate.number_format.endswith("0.00")  # two decimals, comma from the locale
    assert ws.freeze_panes == "A7"
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert int(ws.page_setup.fitToWidth) == 1 and int(ws.page_setup.fitToHeight) == 0
    assert ws.print_title_rows == "$1:$6"
    assert wb.sheetnames == ["Báo cáo", "Biểu đồ"]  # the chart prints on a page of its own
    charts = wb["Biểu đồ"]
    assert charts.page_setup.orientation == "landscape" and int(charts.page_setup.paperSize) == 9
    assert not ws._charts
    (chart,) = charts._charts
    assert isinstance(chart, BarChart) and chart.type == "bar"
    (series,) = chart.series
    assert series.val.numRef.f == "'Báo cáo'!$G$7:$G$9"  # the rates, not the total
    assert series.cat.strRef.f == "'Báo cáo'!$B$7:$B$9"  # the names, as text
    assert series.tx.strRef.f.replace("$", "") == "'Báo cáo'!G6"  # its header names it


def test_xlsx_portal_by_procedure_is_numbered_without_groups(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.xlsx"
    assert report(config, "--format", "xlsx", "--by", "procedure", "--out", str(out)) == 0
    ws = load_workbook(out).active
    assert ws["B6"].value == "Tên thủ tục hành chính" and ws["G6"].value == "Tỷ lệ đúng hạn (%)"
    body = rows_of(ws, 7, 11)
    assert [r[0] for r in body] == ["1", "2", "3", "4", None]
    assert body[0] == ["1", "Cấp Phiếu lý lịch tư pháp (2.000488)", 9, 3, 2, 3, 50.0]
    assert body[3] == ["4", "Thủ tục tính lại (1.000003)", 1, 1, 0, 0, 100.0]
    assert body[1][2:6] == [0, 0, 0, 0] and body[1][6] is None  # nothing to judge: empty
    assert body[4] == [None, "Tổng cộng", 10, 4, 2, 3, 57.14]
    assert not any(ws.cell(r, 2).font.b for r in range(7, 11))


def test_xlsx_goes_to_a_redirected_stdout_never_to_a_terminal(
    config: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert report(config, "--format", "xlsx") == 0
    data = capsysbinary.readouterr().out
    assert data.startswith(b"PK")  # a zip: the workbook itself
    assert load_workbook(io.BytesIO(data)).active["A1"].value == TITLE


class _Page(HTMLParser):
    """Rows of the report's table (cell texts) and the SVG bars."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.classes: list[str] = []
        self.bars: list[dict[str, str]] = []
        self.scripts = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "tr":
            self.rows.append([])
            self.classes.append(a.get("class", ""))
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "rect":
            self.bars.append(a)
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_table_and_svg_chart(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert report(config, "--format", "html", "--metric", "766", "--out", str(out)) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and '<html lang="vi">' in text
    page = _Page()
    page.feed(text)
    assert page.rows == [
        [*HEADER, "Tỷ lệ đúng hạn theo QĐ 766 (%)"],
        ["I", "Sở Tư pháp", "5", "3", "0", "2", "60,00"],
        ["1", "Phòng Hành chính tư pháp", "5", "3", "0", "2", "60,00"],
        ["II", "Sở Xây dựng", "5", "0", "2", "2", "40,00"],
        ["", "Tổng cộng", "10", "3", "2", "4", "50,00"],
    ]
    assert page.classes[1:] == ["nhom", "don-vi", "nhom", "tong"]
    # one bar per row of the table (the total excluded), as long as its rate
    assert [b["data-rate"] for b in page.bars] == ["60.00", "60.00", "40.00"]
    widths = [float(b["width"]) for b in page.bars]
    assert widths[0] == widths[1] == pytest.approx(widths[2] * 60 / 40)
    assert page.scripts == 0 and "<link" not in text and "src=" not in text  # self-contained


def test_html_escapes_what_cases_bring(store: Store, config: Path, tmp_path: Path) -> None:
    """A unit code from a source is text, never markup."""
    from datetime import datetime, timedelta, timezone

    from watchdog.config import load_settings
    from watchdog.sources.ingest import upsert_cases
    from watchdog.sources.push import read_cases

    settings = load_settings(config, env={})
    body = {
        "case_code": "Z1",
        "procedure_code": "2.000488",
        "unit_code": "<b>X&Y</b>",
        "received_at": "2026-11-05T09:00:00+07:00",
    }
    pushed = read_cases([body], settings)
    assert not pushed.errors, pushed.errors
    now = datetime(2026, 12, 5, 9, tzinfo=timezone(timedelta(hours=7)))
    upsert_cases(store, pushed.records, now, source="portal")
    out = tmp_path / "r.html"
    assert report(config, "--format", "html", "--out", str(out)) == 0
    text = out.read_text(encoding="utf-8")
    assert "<b>X&Y</b>" not in text
    assert "&lt;b&gt;X&amp;Y&lt;/b&gt; (không có trong cấu hình)" in text
    page = _Page()
    page.feed(text)
    assert ["III", "<b>X&Y</b> (không có trong cấu hình)", "1", "0", "0", "1", "0,00"] in page.rows


def _numbers(tmp_path: Path, units: str) -> list[tuple[str, str, bool, int]]:
    """(STT, name, group row, level) of the provincial layout of this unit tree."""
    from datetime import UTC, date, datetime

    from watchdog.config import load_settings
    from watchdog.reports.ontime import By, Counts, Report, ReportRow, provincial_rows

    path = tmp_path / "tree.yaml"
    path.write_text(f"units:\n{units}", encoding="utf-8")
    settings = load_settings(path, env={})
    rows = [ReportRow(u.code, u.name, d, Counts()) for d, u in settings.unit_tree()]
    day = date(2026, 11, 1)
    report = Report(By.UNIT, day, day, datetime(2026, 11, 2, tzinfo=UTC), rows, Counts())
    return [(r.number, r.name, r.group, r.level) for r in provincial_rows(report, settings)]


DEEP = """\
  - {code: A, name: A}
  - {code: A1, name: A1, parent: A}
  - {code: A11, name: A11, parent: A1}
  - {code: A111, name: A111, parent: A11}
  - {code: A12, name: A12, parent: A1}
  - {code: A2, name: A2, parent: A}
  - {code: B, name: B}
  - {code: B1, name: B1, parent: B}
"""
DEEP_NUMBERS = [
    ("I", "A", True, 0),
    ("1", "A1", False, 1),
    ("1.1", "A11", False, 2),
    ("1.1.1", "A111", False, 3),
    ("1.2", "A12", False, 2),
    ("2", "A2", False, 1),
    ("II", "B", True, 0),
    ("1", "B1", False, 1),
]


def test_numbering_of_deeper_trees(tmp_path: Path) -> None:
    assert _numbers(tmp_path, DEEP) == DEEP_NUMBERS
    # the same tree under one root (the province): the root is the total row
    under_root = "  - {code: R, name: R}\n" + DEEP.replace(
        "{code: A, name: A}", "{code: A, name: A, parent: R}"
    ).replace("{code: B, name: B}", "{code: B, name: B, parent: R}")
    assert _numbers(tmp_path, under_root) == DEEP_NUMBERS
    # no unit below the top ones: a flat list, no group rows
    flat = "  - {code: R, name: R}\n  - {code: X, name: X, parent: R}\n"
    flat += "  - {code: Y, name: Y, parent: R}\n"
    assert _numbers(tmp_path, flat) == [("1", "X", False, 0), ("2", "Y", False, 0)]


def test_a_workbook_is_not_written_to_a_terminal(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    assert report(config, "--format", "xlsx") == cli.EXIT_USAGE
    assert "--out" in capsys.readouterr().err
