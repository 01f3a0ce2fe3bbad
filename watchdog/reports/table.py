"""Plain aligned text tables for the terminal."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def width(text: str) -> int:
    """Columns `text` takes on a terminal: combining marks (the tone marks of Vietnamese text
    in decomposed form, as cp1258 and some spreadsheets write it) take none."""
    return sum(1 for ch in text if not unicodedata.combining(ch))


def pad(text: str, size: int, *, right: bool = False) -> str:
    fill = " " * max(0, size - width(text))
    return fill + text if right else text + fill


def render_table(
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    headers: Mapping[str, str] | None = None,
) -> str:
    """`columns` are the keys of each row; `headers` what people read above them (default:
    the keys themselves)."""
    titles = [(headers or {}).get(c, c) for c in columns]
    body = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([width(t), *(width(r[i]) for r in body)]) for i, t in enumerate(titles)]
    lines = ["  ".join(pad(t, w) for t, w in zip(titles, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(pad(v, w) for v, w in zip(r, widths, strict=True)).rstrip() for r in body]
    return "\n".join(lines) + "\n"
