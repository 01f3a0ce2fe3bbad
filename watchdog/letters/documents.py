"""Letters as files: DOCX through docxtpl from editable Word templates, the control sheet also
as a printable HTML page through Jinja2.

Templates are looked up like the message templates: the file named in `letters:` first, then
`templates/letters/` beside the configuration file, then the shipped `templates/letters/`
(written by tools/make_letter_templates.py). Every value reaches a template as a plain string,
escaped on the way in (`autoescape=True`: an applicant called "A & B <C>" stays text).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from watchdog.config import Settings
from watchdog.letters.apology import DOTS, ApologyLetter, agency_of, apology_context, date_line
from watchdog.letters.control import ControlSheet
from watchdog.shipped import shipped_path

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML_TYPE = "text/html"

APOLOGY = "apology"
CONTROL_SHEET = "control_sheet"
_FILES = {APOLOGY: "apology.docx", CONTROL_SHEET: "control_sheet.docx"}


class LetterError(Exception):
    """A letter cannot be written: its template is missing, unreadable or broken."""


def template_path(settings: Settings, which: str) -> Path:
    """The DOCX template of `which` (apology or control_sheet) that applies."""
    configured = {
        APOLOGY: settings.config.letters.apology_template,
        CONTROL_SHEET: settings.config.letters.control_sheet_template,
    }[which]
    if configured:
        return settings.resolve(configured)
    own = settings.resolve("templates") / "letters" / _FILES[which]
    if own.is_file():
        return own
    return shipped_path("templates") / "letters" / _FILES[which]


def template_dirs(settings: Settings) -> list[Path]:
    """Folders the HTML form is looked up in: the admin's `templates/`, then the shipped one."""
    dirs = []
    own = settings.resolve("templates")
    if own.is_dir():
        dirs.append(own)
    dirs.append(shipped_path("templates"))
    return dirs


def render_docx(path: Path, context: dict[str, Any]) -> bytes:
    """The DOCX template at `path` rendered with `context` (autoescaped), as bytes."""
    from docxtpl import DocxTemplate
    from jinja2 import TemplateError

    try:
        template = DocxTemplate(str(path))
        template.render(context, autoescape=True)
        out = io.BytesIO()
        template.save(out)
    except FileNotFoundError:
        raise LetterError(f"{path}: no such template") from None
    except TemplateError as e:
        raise LetterError(f"{path}: {e}") from e
    except Exception as e:  # not a DOCX at all (zip, XML): say which file
        raise LetterError(f"{path}: cannot read the template: {type(e).__name__}: {e}") from e
    return out.getvalue()


def apology_docx(letter: ApologyLetter, settings: Settings) -> bytes:
    return render_docx(template_path(settings, APOLOGY), apology_context(letter))


# ----- the control sheet -----------------------------------------------------------------------


def _show(t: datetime | None, tz: tzinfo, blank: str = "") -> str:
    return blank if t is None else t.astimezone(tz).strftime("%d/%m/%Y %H:%M")


@dataclass(frozen=True, slots=True)
class _Row:
    """A row as the templates read it: strings only."""

    number: str
    step: str
    step_code: str
    step_name: str
    handler: str
    received_at: str
    due_at: str
    finished_at: str
    result: str
    status: str  # early | on_time | late | in_time | overdue | open | no_due (for colours)


# Every variable of the control sheet templates (docs/letters.md, `watchdog check`); `rows` is a
# list of rows with the fields of _Row.
CONTROL_FIELDS: dict[str, str] = {
    "parent_agency": "governing body, first heading line",
    "agency": "issuing agency, second heading line",
    "place": "place of the date line (letters.place), else a blank",
    "date_line": "date of the sheet as official documents write it",
    "case_code": "the case code",
    "procedure_code": "the procedure's national code",
    "procedure_name": "the procedure's name",
    "unit_name": "the unit handling the case",
    "applicant_name": "the applicant",
    "received_at": "received, dd/mm/yyyy HH:MM",
    "due_at": "the appointment in force, dd/mm/yyyy HH:MM",
    "finished_at": "when the result was ready, dd/mm/yyyy HH:MM, else a blank",
    "returned_at": "when the result was returned, dd/mm/yyyy HH:MM, else a blank",
    "result_label": "the case's result: Trước hạn, Đúng hạn, Quá hạn, Đang xử lý ...",
    "status": "the case's result as a code (early, on_time, late, in_time, overdue, ...)",
    "written_at": "when the sheet was made, dd/mm/yyyy HH:MM",
    "rows": "the handovers: number, step, step_code, step_name, handler, received_at, due_at, "
    "finished_at, result, status",
}
ROW_FIELDS = tuple(_Row.__slots__)


def control_context(sheet: ControlSheet, settings: Settings, now: datetime) -> dict[str, Any]:
    tz = sheet.tz
    parent_agency, agency, _code = agency_of(settings, sheet.unit_code)
    rows = [
        _Row(
            number=str(r.number),
            step=f"{r.step_code}. {r.step_name}" if r.step_name != r.step_code else r.step_code,
            step_code=r.step_code,
            step_name=r.step_name,
            handler=r.handler_name or r.handler or "",
            received_at=_show(r.received_at, tz),
            due_at=_show(r.due_at, tz),
            finished_at=_show(r.finished_at, tz),
            result=r.result_label,
            status=r.status,
        )
        for r in sheet.rows
    ]
    return {
        "parent_agency": parent_agency,
        "agency": agency,
        "place": settings.config.letters.place or DOTS,
        "date_line": date_line(now, tz),
        "case_code": sheet.case_code,
        "procedure_code": sheet.procedure_code,
        "procedure_name": sheet.procedure_name,
        "unit_name": sheet.unit_name,
        "applicant_name": sheet.applicant_name or "",
        "received_at": _show(sheet.received_at, tz),
        "due_at": _show(sheet.due_at, tz, DOTS),
        "finished_at": _show(sheet.finished_at, tz, DOTS),
        "returned_at": _show(sheet.returned_at, tz, DOTS),
        "result_label": sheet.result_label,
        "status": sheet.status,
        "written_at": _show(now, tz),
        "rows": rows,
    }


def control_sheet_docx(sheet: ControlSheet, settings: Settings, now: datetime) -> bytes:
    context = control_context(sheet, settings, now)
    return render_docx(template_path(settings, CONTROL_SHEET), context)


def html_environment(dirs: list[Path]):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader([str(d) for d in dirs]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


HTML_TEMPLATE = "letters/control_sheet.html"


def control_sheet_html(sheet: ControlSheet, settings: Settings, now: datetime) -> str:
    from jinja2 import TemplateError

    env = html_environment(template_dirs(settings))
    try:
        return env.get_template(HTML_TEMPLATE).render(control_context(sheet, settings, now))
    except TemplateError as e:
        where = getattr(e, "filename", None) or HTML_TEMPLATE
        line = getattr(e, "lineno", None)
        raise LetterError(f"{where}{f':{line}' if line else ''}: {e}") from e


# ----- file names -------------------------------------------------------------------------------


def _safe(code: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", code).strip("._") or "hoso"


def apology_file_name(case_code: str) -> str:
    """Where `watchdog letters apology` writes without --out: ASCII, shell-friendly."""
    return f"phieu-xin-loi-{_safe(case_code)}.docx"


def control_sheet_file_name(case_code: str, fmt: str) -> str:
    return f"phieu-kiem-soat-{_safe(case_code)}.{fmt}"


def apology_attachment_name(case_code: str) -> str:
    """The name an attached letter carries: Vietnamese, as officials file it."""
    return f"Phiếu xin lỗi - {_safe(case_code)}.docx"
