"""The on-time report as a self-contained Vietnamese web page (SPEC 9, docs/reports.md).

The same table as the XLSX (`ontime.provincial_rows`) and a bar chart of the rates drawn here
as SVG: no JavaScript, no file or font fetched, styles inline. Templates `reports/report.html`
(the page) and `reports/_report_body.html` (table and chart, which the dashboard embeds with
`fragment=True`) are Jinja2 with autoescape on; an admin's `templates/reports/` beside the
configuration file wins over the shipped one, as for messages.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from watchdog.config import Settings
from watchdog.reports.ontime import (
    REPORT_TITLE,
    Counts,
    Report,
    layout_header,
    layout_lines,
    layout_notes,
    provincial_rows,
)
from watchdog.shipped import shipped_path

# Chart geometry, in SVG user units (the viewBox scales to the page's width).
WIDTH = 1000
LABEL_RIGHT = 380  # labels end here, right-aligned
LEFT = 390  # bars start here
BAR_SPACE = 540  # 100 %
ROW = 24
BAR = 16
TOP = 10
LABEL_CHARS = 52  # a longer name is cut with "…" (the table and the bar's tooltip keep it whole)


def vi_int(n: int) -> str:
    """12.345: thousands grouped with dots, as Vietnamese writes them."""
    return f"{n:,}".replace(",", ".")


def vi_rate(rate: Decimal | None) -> str:
    """33,33 (two decimals, comma); empty when there is nothing to judge."""
    return "" if rate is None else f"{rate:.2f}".replace(".", ",")


def _values(counts: Counts, rate: Decimal | None) -> list[str]:
    return [
        vi_int(counts.received),
        vi_int(counts.on_time),
        vi_int(counts.in_progress),
        vi_int(counts.late),
        vi_rate(rate),
    ]


def _cut(text: str, size: int) -> str:
    text = unicodedata.normalize("NFC", text)
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


@dataclass(frozen=True)
class _Bar:
    number: str
    name: str
    label: str
    group: bool
    y: int
    h: int
    width: float | None  # None: no rate (nothing finished or late)
    value: str
    raw: str


def _chart(report: Report, lines: list[Any]) -> dict[str, Any]:
    bars = []
    for i, line in enumerate(lines):
        y = TOP + i * ROW
        width = None if line.rate is None else round(float(line.rate) / 100 * BAR_SPACE, 1)
        bars.append(
            _Bar(
                number=line.number,
                name=line.name,
                label=_cut(f"{line.number}. {line.name}", LABEL_CHARS),
                group=line.group,
                y=y + (ROW - BAR) // 2,
                h=BAR,
                width=width,
                value=vi_rate(line.rate) or "–",
                raw="" if line.rate is None else str(line.rate),
            )
        )
    bottom = TOP + len(lines) * ROW
    grid = [{"x": LEFT + BAR_SPACE * p / 100, "label": f"{p} %"} for p in range(0, 101, 20)]
    return {
        "title": layout_header(report)[-1],
        "bars": bars,
        "grid": grid,
        "width": WIDTH,
        "height": bottom + 26,
        "top": TOP,
        "bottom": bottom,
        "left": LEFT,
        "label_right": LABEL_RIGHT,
    }


def _environment(settings: Settings) -> Environment:
    dirs = []
    own = settings.resolve("templates")
    if own.is_dir():
        dirs.append(str(own))
    dirs.append(str(shipped_path("templates")))
    return Environment(
        loader=ChoiceLoader([FileSystemLoader(d) for d in dirs]),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def to_html(report: Report, settings: Settings, *, fragment: bool = False) -> str:
    """The report as a whole HTML page, or with `fragment` only its `<section>` (table, chart
    and their styles) for a page of the dashboard."""
    lines = provincial_rows(report, settings)
    rows = [
        {
            "number": line.number,
            "name": line.name,
            "key": line.key,
            "group": line.group,
            "indent": max(0, line.level - 1) + (line.level > 0),
            "cells": _values(line.counts, line.rate),
        }
        for line in lines
    ]
    context = {
        "title": REPORT_TITLE,
        "lines": layout_lines(report, settings.default_calendar.tz),
        "header": layout_header(report),
        "rows": rows,
        "total": _values(report.total, report.rate(report.total)),
        "notes": layout_notes(report),
        "chart": _chart(report, lines),
    }
    name = "reports/_report_body.html" if fragment else "reports/report.html"
    return _environment(settings).get_template(name).render(context)
