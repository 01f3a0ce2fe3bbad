"""The on-time report as an Excel workbook in the provincial layout (SPEC 9, docs/reports.md).

Title rows, the header STT / Tên đơn vị / Tiếp nhận / Đúng hạn / Trong hạn / Trễ hạn / Tỷ lệ
đúng hạn (%), roman-numeral group rows (`ontime.provincial_rows`), a total row, and a bar chart
of the rates under the table. Counts and rates are numbers: the decimal comma comes from the
number format's Vietnamese locale tag (`[$-42A]`) and the reader's settings, never from text,
so the sheet still sums and sorts. Frozen header; A4 landscape, fit to the page's width, title
and header rows repeated on every printed page.
"""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.data_source import AxDataSource, StrRef
from openpyxl.chart.label import DataLabelList
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from watchdog.config import Settings
from watchdog.reports.ontime import (
    REPORT_TITLE,
    Report,
    layout_header,
    layout_lines,
    layout_notes,
    provincial_rows,
)

# Vietnamese locale tag: LibreOffice shows 33,33 and 1.234 whatever its own language; Excel
# keeps the tag for names of months and uses the computer's separators (comma on a Vietnamese
# Windows).
RATE_FORMAT = "[$-42A]0.00"
COUNT_FORMAT = "[$-42A]#,##0"
FONT = "Times New Roman"  # the font of administrative documents (Nghị định 30/2020/NĐ-CP)
WIDTHS = (6, 46, 11, 11, 11, 11, 15)
COLUMNS = len(WIDTHS)
HEADER_ROW = 6  # rows 1-4 title and period, 5 blank
SHEET_TITLE = "Báo cáo"
CHART_SHEET = "Biểu đồ"

_thin = Side(style="thin", color="808080")
_BOX = Border(left=_thin, right=_thin, top=_thin, bottom=_thin)
_HEAD_FILL = PatternFill("solid", fgColor="DDE6F0")
_GROUP_FILL = PatternFill("solid", fgColor="F2F2F2")


def to_xlsx(report: Report, settings: Settings) -> bytes:
    """The workbook's bytes (one sheet `Báo cáo`)."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET_TITLE
    tz = settings.default_calendar.tz
    last_col = get_column_letter(COLUMNS)
    for i, width in enumerate(WIDTHS, 1):
        ws.column_dimensions[get_column_letter(i)].width = width

    _title(ws, 1, REPORT_TITLE, Font(name=FONT, size=14, bold=True), 24)
    period, as_of, metric = layout_lines(report, tz)
    _title(ws, 2, period, Font(name=FONT, size=12, bold=True), 18)
    _title(ws, 3, as_of, Font(name=FONT, size=11, italic=True), 16)
    _title(ws, 4, metric, Font(name=FONT, size=10, italic=True), 28, wrap=True)

    for col, text in enumerate(layout_header(report), 1):
        cell = ws.cell(HEADER_ROW, col, text)
        cell.font = Font(name=FONT, size=11, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.fill = _HEAD_FILL
        cell.border = _BOX
    ws.row_dimensions[HEADER_ROW].height = 32

    row_no = HEADER_ROW
    for line in provincial_rows(report, settings):
        row_no += 1
        _data_row(ws, row_no, line.number, line.name, line.counts, line.rate, line.group)
        ws.cell(row_no, 2).alignment = Alignment(
            horizontal="left", vertical="center", wrap_text=True, indent=2 * line.level
        )
    last_data = row_no
    row_no += 1
    _data_row(
        ws, row_no, "", "Tổng cộng", report.total, report.rate(report.total), True, total=True
    )

    for note in layout_notes(report):
        row_no += 1
        ws.cell(row_no, 1, note).font = Font(name=FONT, size=10, italic=True)
        ws.merge_cells(f"A{row_no}:{last_col}{row_no}")

    ws.freeze_panes = ws.cell(HEADER_ROW + 1, 1)
    if last_data > HEADER_ROW:
        _chart(wb.create_sheet(CHART_SHEET), ws, report, HEADER_ROW, last_data, (period, as_of))

    ws.print_title_rows = f"1:{HEADER_ROW}"
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as the rows need
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.oddFooter.center.text = "Trang &P / &N"
    ws.oddFooter.center.font = FONT
    wb.properties.title = REPORT_TITLE
    wb.properties.creator = "tthc-watchdog"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _title(ws: Worksheet, row: int, text: str, font: Font, height: float, *, wrap=False) -> None:
    ws.cell(row, 1, text).font = font
    ws.cell(row, 1).alignment = Alignment(horizontal="center", vertical="center", wrap_text=wrap)
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=COLUMNS)
    ws.row_dimensions[row].height = height


def _data_row(
    ws: Worksheet,
    row: int,
    number: str,
    name: str,
    counts,
    rate,
    bold: bool,
    *,
    total: bool = False,
) -> None:
    values = [
        number,
        name,
        counts.received,
        counts.on_time,
        counts.in_progress,
        counts.late,
        None if rate is None else float(rate),
    ]
    font = Font(name=FONT, size=11, bold=bold)
    for col, value in enumerate(values, 1):
        cell = ws.cell(row, col, value)
        cell.font = font
        cell.border = _BOX
        if col == 1:
            cell.alignment = Alignment(horizontal="center", vertical="center")
        elif col == 2:
            cell.alignment = Alignment(
                horizontal="center" if total else "left", vertical="center", wrap_text=True
            )
        else:
            cell.alignment = Alignment(horizontal="right", vertical="center")
            cell.number_format = RATE_FORMAT if col == COLUMNS else COUNT_FORMAT
        if bold and not total:
            cell.fill = _GROUP_FILL


def _chart(
    sheet: Worksheet,
    ws: Worksheet,
    report: Report,
    header: int,
    last: int,
    titles: tuple[str, str],
) -> None:
    """Horizontal bars of the rate column of `ws`, one per row of the table (the total
    excluded), top to bottom in table order, 0-100 %; on the sheet `sheet` of its own, which
    prints on one A4 landscape page (no table header repeated above it)."""
    chart = BarChart()
    chart.type = "bar"
    chart.style = 10
    chart.title = layout_header(report)[-1]
    chart.legend = None
    data = Reference(ws, min_col=COLUMNS, min_row=header, max_row=last)
    names = Reference(ws, min_col=2, min_row=header + 1, max_row=last)
    chart.add_data(data, titles_from_data=True)
    # Names are text: a string reference (set_categories writes a numeric one, which Excel
    # may label 1, 2, 3)
    chart.series[0].cat = AxDataSource(strRef=StrRef(f=str(names)))
    chart.x_axis.scaling.orientation = "maxMin"  # first row of the table at the top
    chart.y_axis.crosses = "max"  # and the percentages below the bars, not above
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 100
    chart.y_axis.majorUnit = 20
    chart.y_axis.number_format = "0"
    chart.y_axis.majorGridlines = None
    chart.gapWidth = 40
    series = chart.series[0]
    series.graphicalProperties.solidFill = "2F6DB5"
    series.graphicalProperties.line.solidFill = "2F6DB5"
    series.dLbls = DataLabelList()
    series.dLbls.showVal = True
    series.dLbls.numFmt = RATE_FORMAT
    for attr in ("showSerName", "showCatName", "showLegendKey", "showPercent"):
        setattr(series.dLbls, attr, False)
    bars = last - header
    chart.width = 25.0  # cm
    chart.height = max(8.0, 3.0 + 0.7 * bars)
    period, as_of = titles
    sheet.cell(1, 1, f"{REPORT_TITLE} – {period.lower()}").font = Font(
        name=FONT, size=12, bold=True
    )
    sheet.cell(2, 1, as_of).font = Font(name=FONT, size=10, italic=True)
    sheet.add_chart(chart, "A4")
    sheet.page_setup.orientation = sheet.ORIENTATION_LANDSCAPE
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 1
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
