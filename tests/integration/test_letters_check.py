"""`check_letter_templates` (what `watchdog check` says of the letter templates) against real
DOCX files written with python-docx and HTML templates on disk."""

from __future__ import annotations

from pathlib import Path

from docx import Document

from watchdog.config import load_settings
from watchdog.letters.templates import check_letter_templates

BASE = """\
units:
  - {code: STP, name: Sở Tư pháp}
"""


def settings_with(tmp_path: Path, letters: str = ""):
    path = tmp_path / "config.yaml"
    path.write_text(BASE + letters, encoding="utf-8")
    return load_settings(path, env={})


def docx(path: Path, *texts: str, rows: tuple[str, str, str] | None = None) -> Path:
    doc = Document()
    for text in texts:
        doc.add_paragraph(text)
    if rows:
        table = doc.add_table(rows=3, cols=1)
        for row, text in zip(table.rows, rows, strict=True):
            row.cells[0].text = text
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
    return path


def test_the_shipped_templates_pass(tmp_path: Path) -> None:
    assert check_letter_templates(settings_with(tmp_path)) == []


def test_an_unknown_variable_is_named_with_its_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    # the admin's copy beside the configuration replaces the shipped one
    docx(
        tmp_path / "templates" / "letters" / "apology.docx",
        "Kính gửi {{ applicant_name }}",
        "Ngày hẹn mới: {{ ngay_hen_moi }}, {{ new_due }} {{ so_cmnd }}",
    )
    [problem] = check_letter_templates(settings_with(tmp_path))
    assert problem.startswith("templates/letters/apology.docx: unknown variable(s) ")
    assert "ngay_hen_moi, so_cmnd;" in problem
    assert "known: parent_agency, agency," in problem and "new_due," in problem


def test_typographic_quotes_in_a_tag_get_a_hint(tmp_path: Path) -> None:
    docx(tmp_path / "phieu.docx", "{{ agency|default(„Sở”) }}")
    settings = settings_with(tmp_path, "letters: {apology_template: phieu.docx}\n")
    [problem] = check_letter_templates(settings)
    assert "phieu.docx: unexpected char '„'" in problem
    assert "typographic quotes" in problem and "straight quotes" in problem


def test_word_curly_quotes_are_mended_by_docxtpl(tmp_path: Path) -> None:
    """Word's “ ” inside a tag: docxtpl 0.20 turns them into straight quotes itself."""
    docx(tmp_path / "phieu.docx", "{{ place|default(“Hà Nội”) }}, {{ date_line }}")
    settings = settings_with(tmp_path, "letters: {apology_template: phieu.docx}\n")
    assert check_letter_templates(settings) == []


def test_missing_and_unreadable_templates(tmp_path: Path) -> None:
    (tmp_path / "not-a-docx.docx").write_text("chỉ là văn bản", encoding="utf-8")
    settings = settings_with(
        tmp_path,
        "letters: {apology_template: missing.docx, control_sheet_template: not-a-docx.docx}\n",
    )
    apology, control = check_letter_templates(settings)
    assert apology.endswith("missing.docx: no such file")
    assert "not-a-docx.docx: cannot read the template (is it a .docx file?)" in control


def test_a_row_field_we_do_not_give_is_an_error(tmp_path: Path) -> None:
    docx(
        tmp_path / "sheet.docx",
        "{{ case_code }}",
        rows=("{%tr for r in rows %}", "{{ r.step }} {{ r.chu_ky }}", "{%tr endfor %}"),
    )
    settings = settings_with(tmp_path, "letters: {control_sheet_template: sheet.docx}\n")
    [problem] = check_letter_templates(settings)
    assert "sheet.docx:" in problem and "has no attribute 'chu_ky'" in problem


def test_the_html_form_is_checked_too(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    html = tmp_path / "templates" / "letters" / "control_sheet.html"
    html.parent.mkdir(parents=True)
    html.write_text("<p>{{ case_code }}</p>\n<p>{{ ma_so_thue }}</p>\n", encoding="utf-8")
    [problem] = check_letter_templates(settings_with(tmp_path))
    assert problem.startswith("templates/letters/control_sheet.html: unknown variable(s) ")
    assert "ma_so_thue" in problem
    html.write_text("<p>{{ case_code }}</p>\n{% for r in rows %}<p>{{ r.step }}\n", "utf-8")
    [problem] = check_letter_templates(settings_with(tmp_path))
    assert problem.startswith("templates/letters/control_sheet.html:")
    assert "endfor" in problem
    html.write_text("{% for r in rows %}{{ r.step|safe }}{% endfor %}", "utf-8")
    [problem] = check_letter_templates(settings_with(tmp_path))
    assert "unescaped" in problem
