"""Write the shipped DOCX templates of the letters with python-docx:
templates/letters/apology.docx and templates/letters/control_sheet.docx.

    .venv/bin/python tools/make_letter_templates.py [--out-dir templates/letters]

The files are ordinary Word documents holding Jinja2 tags for docxtpl (`{{ case_code }}`,
`{%tr for r in rows %}`); an admin may edit them in Word or LibreOffice instead (see
docs/letters.md for the variables and the curly-quote trap). Running this again overwrites
them: keep local changes in a copy beside the configuration (`templates/letters/`).

Presentation after Nghị định 30/2020/NĐ-CP: A4, margins 20/20/30/15 mm, Times New Roman 13-14,
the national motto top right, the issuing agency top left, number and date line under them.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from datetime import datetime
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

ROOT = Path(__file__).resolve().parents[1]
FONT = "Times New Roman"


def new_document(*, landscape: bool = False):
    doc = Document()
    section = doc.sections[0]
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Cm(29.7), Cm(21)
    section.top_margin = section.bottom_margin = Cm(2)
    section.left_margin, section.right_margin = Cm(3), Cm(1.5)
    if landscape:
        section.left_margin = section.right_margin = Cm(2)
    normal = doc.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(13)
    fonts = normal.element.rPr.rFonts
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), FONT)
    normal.paragraph_format.space_before = Pt(0)
    normal.paragraph_format.space_after = Pt(0)
    normal.paragraph_format.line_spacing = 1.0
    props = doc.core_properties
    props.author = props.last_modified_by = "tthc-watchdog"
    props.language = "vi-VN"
    props.created = props.modified = STAMP
    props.revision = 1
    return doc


STAMP = datetime(2026, 1, 1)  # fixed, so that writing the templates again changes no byte


def save(doc, path: Path) -> None:
    """Save with fixed zip timestamps (python-docx stamps each member with the current time)."""
    raw = io.BytesIO()
    doc.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=STAMP.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info.filename))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out.getvalue())


def para(
    container,
    text: str = "",
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
    align=WD_ALIGN_PARAGRAPH.LEFT,
    indent: float | None = None,
    before: float = 0,
    after: float = 0,
    first: bool = False,
):
    """A paragraph of one run (a Jinja tag never straddles two runs); `first`: reuse the empty
    paragraph a new table cell comes with."""
    p = container.paragraphs[0] if first else container.add_paragraph()
    p.alignment = align
    fmt = p.paragraph_format
    fmt.space_before, fmt.space_after = Pt(before), Pt(after)
    if indent is not None:
        fmt.first_line_indent = Cm(indent)
    if text:
        run = p.add_run(text)
        run.bold, run.italic = bold, italic
        if size:
            run.font.size = Pt(size)
    return p


def runs(p, *pieces: tuple[str, dict]):
    """Add runs with their own format to a paragraph: ("text", {"bold": True})."""
    for text, fmt in pieces:
        run = p.add_run(text)
        run.bold = fmt.get("bold", False)
        run.italic = fmt.get("italic", False)
        if "size" in fmt:
            run.font.size = Pt(fmt["size"])
    return p


def rule(container, width_cm: float, cell_cm: float):
    """The short line under a heading: a paragraph with a bottom border, indented to its width."""
    p = container.add_paragraph()
    fmt = p.paragraph_format
    side = Cm(max(0.0, (cell_cm - width_cm) / 2))
    fmt.left_indent = fmt.right_indent = side
    fmt.space_after = Pt(6)
    ppr = p._p.get_or_add_pPr()
    border = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(key), value)
    border.append(bottom)
    ppr.append(border)
    run = p.add_run()
    run.font.size = Pt(2)
    return p


def plain_table(doc, widths_cm: list[float]):
    table = doc.add_table(rows=1, cols=len(widths_cm))
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    set_widths(table, widths_cm)
    return table


def set_widths(table, widths_cm: list[float]) -> None:
    """Column widths as Word and LibreOffice read them: the grid and every cell."""
    for column, width in zip(table.columns, widths_cm, strict=True):
        column.width = Cm(width)
    for row in table.rows:
        for cell, width in zip(row.cells, widths_cm, strict=True):
            cell.width = Cm(width)


def heading(doc, widths: tuple[float, float], number: str | None):
    """Agency left, national motto right, number and date line under them."""
    left_w, right_w = widths
    table = plain_table(doc, [left_w, right_w])
    left, right = table.rows[0].cells
    para(left, "{{ parent_agency|upper }}", size=12, align=WD_ALIGN_PARAGRAPH.CENTER, first=True)
    para(left, "{{ agency|upper }}", bold=True, size=12, align=WD_ALIGN_PARAGRAPH.CENTER)
    rule(left, 2.5, left_w)
    if number:
        para(left, number, size=13, align=WD_ALIGN_PARAGRAPH.CENTER)
    para(
        right,
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        bold=True,
        size=12,
        align=WD_ALIGN_PARAGRAPH.CENTER,
        first=True,
    )
    para(right, "Độc lập - Tự do - Hạnh phúc", bold=True, size=13, align=WD_ALIGN_PARAGRAPH.CENTER)
    rule(right, 5.5, right_w)
    para(
        right, "{{ place }}, {{ date_line }}", italic=True, size=13, align=WD_ALIGN_PARAGRAPH.CENTER
    )
    return table


def apology(path: Path) -> None:
    doc = new_document()
    heading(doc, (6.5, 10.0), "Số: {{ number }}/PXL")
    para(
        doc,
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
        bold=True,
        size=14,
        align=WD_ALIGN_PARAGRAPH.CENTER,
        before=18,
        after=12,
    )
    p = para(doc, align=WD_ALIGN_PARAGRAPH.CENTER, after=12)
    runs(p, ("Kính gửi: ", {"size": 14}), ("Ông/Bà {{ applicant_name }}", {"size": 14}))

    def body(*pieces: tuple[str, dict]):
        p = para(doc, align=WD_ALIGN_PARAGRAPH.JUSTIFY, indent=1.0, after=6)
        p.paragraph_format.line_spacing = 1.15
        return runs(p, *((t, {"size": 14, **f}) for t, f in pieces))

    body(
        ("{{ agency }} đã tiếp nhận hồ sơ của Ông/Bà đề nghị giải quyết thủ tục hành chính ", {}),
        ("{{ procedure_name }}", {"bold": True}),
        (" (mã thủ tục {{ procedure_code }}), mã hồ sơ ", {}),
        ("{{ case_code }}", {"bold": True}),
        (", tiếp nhận lúc {{ received_at }}.", {}),
    )
    body(
        ("Thời gian hẹn trả kết quả ghi trên Giấy tiếp nhận hồ sơ và hẹn trả kết quả: ", {}),
        ("{{ original_due }}", {"bold": True}),
        (".", {}),
    )
    body(
        ("Tuy nhiên, đến nay {{ agency }} chưa giải quyết xong hồ sơ của Ông/Bà. Lý do: ", {}),
        ("{{ reason }}", {}),
    )
    body(
        ("{{ agency }} thành thật xin lỗi Ông/Bà vì sự chậm trễ này và xin hẹn lại thời gian ", {}),
        ("trả kết quả vào ", {}),
        ("{{ new_due }}", {"bold": True}),
        (".", {}),
    )
    body(("Mong nhận được sự thông cảm của Ông/Bà./.", {}))

    para(doc, after=6)
    table = plain_table(doc, [7.0, 9.5])
    left, right = table.rows[0].cells
    para(left, "Nơi nhận:", bold=True, italic=True, size=12, first=True)
    para(left, "- Như trên;", size=11)
    para(left, "- Lưu: VT, {{ unit_name }}.", size=11)
    para(
        right, "{{ signer_title|upper }}", bold=True, size=13, align=WD_ALIGN_PARAGRAPH.CENTER,
        first=True,
    )  # fmt: skip
    para(
        right,
        "(Ký, ghi rõ họ tên và đóng dấu)",
        italic=True,
        size=13,
        align=WD_ALIGN_PARAGRAPH.CENTER,
    )
    for _ in range(4):
        para(right)
    para(right, "{{ signer_name }}", bold=True, size=13, align=WD_ALIGN_PARAGRAPH.CENTER)
    save(doc, path)


def set_cell(cell, text: str, *, bold: bool = False, size: float = 11, center: bool = False):
    p = cell.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER if center else WD_ALIGN_PARAGRAPH.LEFT
    p.paragraph_format.space_before = p.paragraph_format.space_after = Pt(2)
    run = p.add_run(text)
    run.bold = bold
    run.font.size = Pt(size)


def repeat_header(row) -> None:
    """The header row repeats on every page of a long sheet."""
    tr_pr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    tr_pr.append(el)


def control_sheet(path: Path) -> None:
    doc = new_document(landscape=True)
    heading(doc, (9.0, 16.7), None)
    para(
        doc,
        "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ",
        bold=True,
        size=14,
        align=WD_ALIGN_PARAGRAPH.CENTER,
        before=12,
        after=10,
    )
    facts = [
        (("Mã hồ sơ: ", {}), ("{{ case_code }}", {"bold": True})),
        (("Thủ tục hành chính: ", {}), ("{{ procedure_name }} ({{ procedure_code }})", {})),
        (("Người nộp hồ sơ: ", {}), ("{{ applicant_name }}", {})),
        (("Cơ quan, đơn vị giải quyết: ", {}), ("{{ unit_name }}", {})),
        (
            ("Tiếp nhận lúc: ", {}),
            ("{{ received_at }}", {}),
            ("; hẹn trả kết quả: ", {}),
            ("{{ due_at }}", {"bold": True}),
        ),
        (
            ("Có kết quả lúc: ", {}),
            ("{{ finished_at }}", {}),
            ("; kết quả giải quyết: ", {}),
            ("{{ result_label }}", {"bold": True}),
        ),
    ]
    for pieces in facts:
        p = para(doc, after=2)
        runs(p, *((t, {"size": 13, **f}) for t, f in pieces))
    para(doc, after=4)
    widths = [1.2, 6.3, 4.2, 3.3, 3.3, 3.3, 4.1]
    table = doc.add_table(rows=4, cols=len(widths))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    set_widths(table, widths)
    titles = [
        "STT",
        "Bước xử lý",
        "Người xử lý",
        "Nhận hồ sơ lúc",
        "Hạn của bước",
        "Giao hồ sơ lúc",
        "Kết quả (trước hạn / đúng hạn / quá hạn)",
    ]
    for cell, title in zip(table.rows[0].cells, titles, strict=True):
        set_cell(cell, title, bold=True, center=True)
    repeat_header(table.rows[0])
    set_cell(table.rows[1].cells[0], "{%tr for r in rows %}")
    cells = [
        ("{{ r.number }}", True),
        ("{{ r.step }}", False),
        ("{{ r.handler }}", False),
        ("{{ r.received_at }}", True),
        ("{{ r.due_at }}", True),
        ("{{ r.finished_at }}", True),
        ("{{ r.result }}", True),
    ]
    for cell, (text, center) in zip(table.rows[2].cells, cells, strict=True):
        set_cell(cell, text, center=center)
    set_cell(table.rows[3].cells[0], "{%tr endfor %}")
    para(doc, "{%p if not rows %}", size=11)
    para(doc, "Chưa ghi nhận bước xử lý nào của hồ sơ.", italic=True, size=12, before=4)
    para(doc, "{%p endif %}", size=11)
    para(doc, "Lập lúc {{ written_at }} bởi tthc-watchdog.", italic=True, size=11, before=8)
    save(doc, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "templates" / "letters")
    args = parser.parse_args()
    apology(args.out_dir / "apology.docx")
    control_sheet(args.out_dir / "control_sheet.docx")
    print(f"written: {args.out_dir / 'apology.docx'}, {args.out_dir / 'control_sheet.docx'}")


if __name__ == "__main__":
    main()
