"""`watchdog check` for the letter templates: every template that applies is opened, parsed,
compared with the variables we give it and rendered once with sample values full of markup.

A Word template breaks in ways a text template does not: Word's AutoFormat turns typed quotes
into typographic ones, which Jinja cannot read inside a tag (docxtpl #85; docxtpl 0.20 mends
“ ” ‘ ’ itself, not „ « » and their kin). Each problem is one line naming the file.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from watchdog.config import Settings
from watchdog.letters.apology import APOLOGY_FIELDS
from watchdog.letters.documents import (
    APOLOGY,
    CONTROL_FIELDS,
    CONTROL_SHEET,
    HTML_TEMPLATE,
    ROW_FIELDS,
    html_environment,
    template_dirs,
    template_path,
)

TRICKY = '<b>&"</b><script>alert(1)</script>'
_TAG = re.compile(r"\{[{%#](.*?)[}%#]\}", re.S)
# docxtpl itself turns Word's “ ” ‘ ’ inside a tag into straight quotes; these it does not.
_CURLY = "„‟‚‛«»‹›"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Row:
    """A sample row that answers only the fields a row has (anything else is an error)."""

    def __init__(self, n: int) -> None:
        for name in ROW_FIELDS:
            setattr(self, name, f"{name} {n} {TRICKY}")


def _sample(fields: dict[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {name: f"{name} {TRICKY}" for name in fields}
    if "rows" in fields:
        context["rows"] = [_Row(1), _Row(2)]
    return context


def check_letter_templates(settings: Settings) -> list[str]:
    """Problems of the letter templates that apply (apology DOCX, control sheet DOCX and HTML),
    one line each; empty when all is well."""
    problems: list[str] = []
    problems += _check_docx(template_path(settings, APOLOGY), APOLOGY_FIELDS)
    problems += _check_docx(template_path(settings, CONTROL_SHEET), CONTROL_FIELDS)
    problems += _check_html(settings)
    return problems


def _check_docx(path: Path, fields: dict[str, str]) -> list[str]:
    from docx.opc.exceptions import PackageNotFoundError
    from docxtpl import DocxTemplate
    from jinja2 import Environment, StrictUndefined, TemplateError, TemplateSyntaxError

    shown = _shown(path)
    if not path.is_file():
        return [f"{shown}: no such file"]
    try:
        template = DocxTemplate(str(path))
        used = template.get_undeclared_template_variables()
    except TemplateSyntaxError as e:
        return [f"{shown}: {e.message}{_curly_hint(path)}"]
    except (PackageNotFoundError, KeyError, ValueError, OSError) as e:
        return [f"{shown}: cannot read the template (is it a .docx file?): {e}"]
    except Exception as e:  # a zip or XML problem deep in python-docx
        return [f"{shown}: cannot read the template: {type(e).__name__}: {e}"]
    problems = []
    unknown = sorted(used - set(fields))
    if unknown:
        problems.append(
            f"{shown}: unknown variable(s) {', '.join(unknown)}; known: {', '.join(fields)} "
            "(docs/letters.md)"
        )
        return problems
    try:
        template = DocxTemplate(str(path))
        strict = Environment(undefined=StrictUndefined)  # a row field we do not give fails
        template.render(_sample(fields), jinja_env=strict, autoescape=True)
        out = io.BytesIO()
        template.save(out)
        with zipfile.ZipFile(out) as z:
            xml = z.read("word/document.xml").decode("utf-8")
    except TemplateError as e:
        return [f"{shown}: {e}"]
    if "<script>" in xml:
        problems.append(f"{shown}: a value reaches the document unescaped (remove |safe?)")
    return problems


def _curly_hint(path: Path) -> str:
    """When a tag of the document holds Word's curly quotes, say so (the usual cause)."""
    try:
        from docx import Document

        text = "\n".join(p.text for p in Document(str(path)).paragraphs)
        text += "\n".join(
            cell.text
            for table in Document(str(path)).tables
            for row in table.rows
            for cell in row.cells
        )
    except Exception:
        return ""
    for m in _TAG.finditer(text):
        if any(ch in m.group(1) for ch in _CURLY):
            return (
                f" (the tag {m.group(0)!r} holds typographic quotes: Word's AutoFormat typed "
                "them; retype them as straight quotes \" or ')"
            )
    return ""


def _check_html(settings: Settings) -> list[str]:
    from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError, meta

    env = html_environment(template_dirs(settings))
    try:
        source, filename, _uptodate = env.loader.get_source(env, HTML_TEMPLATE)
    except TemplateNotFound:
        return [f"{HTML_TEMPLATE}: no such template"]
    shown = _shown(Path(filename)) if filename else HTML_TEMPLATE
    try:
        used = meta.find_undeclared_variables(env.parse(source))
    except TemplateSyntaxError as e:
        return [f"{shown}:{e.lineno}: {e.message}"]
    unknown = sorted(used - set(CONTROL_FIELDS))
    if unknown:
        return [
            f"{shown}: unknown variable(s) {', '.join(unknown)}; known: "
            f"{', '.join(CONTROL_FIELDS)} (docs/letters.md)"
        ]
    try:
        html = env.get_template(HTML_TEMPLATE).render(_sample(CONTROL_FIELDS))
    except TemplateError as e:
        line = _template_line(e, filename)
        return [f"{shown}{line}: {e}"]
    if "<script>" in html:
        return [f"{shown}: a value reaches the page unescaped (remove |safe?)"]
    return []


def _template_line(error: BaseException, filename: str | None) -> str:
    import traceback

    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if filename and frame.filename == filename:
            return f":{frame.lineno}"
    return ""
