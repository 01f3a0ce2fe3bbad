"""Files a message carries: the apology letter draft of an `apology_needed` alert (the stage's
`attach: apology_letter`), the XLSX of a scheduled on-time report.

No file is stored. When a message is first rendered, what it must carry is written into its
content (`content["attach"]`: a list of specs, each with the instant the file is made as of);
every attempt builds the files again from those specs, so a retry carries the same letter (its
date, and the new appointment proposed from that date) without bytes in the database. The
`Attachment` is the channels' own (`watchdog.channels.Attachment`: filename, content_type,
data), which `Outgoing.attachments` carries to e-mail (multipart/mixed), Telegram (a document
after the text) and the file channel's .eml.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from watchdog.channels import Attachment
from watchdog.config import Settings
from watchdog.domain import CaseEvent, CaseRecord
from watchdog.store import Store

__all__ = [
    "APOLOGY_LETTER",
    "REPORT",
    "XLSX_TYPE",
    "Attachment",
    "Built",
    "alert_specs",
    "build_attachments",
    "report_specs",
]

log = logging.getLogger(__name__)

APOLOGY_LETTER = "apology_letter"  # a stage's `attach:` value
REPORT = "report"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Facts = tuple[CaseRecord, list[CaseEvent]]


def alert_specs(items: Iterable[Any], now: datetime) -> list[dict[str, str]]:
    """What an alert carries: one apology letter per case whose firing asks for it
    (`ItemFacts.attach == "apology_letter"`), in the alert's order, made as of `now`."""
    codes: dict[str, None] = {}
    for item in items:
        if item.attach == APOLOGY_LETTER:
            codes.setdefault(item.record.case_code, None)
    return [{"kind": APOLOGY_LETTER, "case": code, "at": now.isoformat()} for code in codes]


def report_specs(now: datetime) -> list[dict[str, str]]:
    """What a scheduled report's message carries: its XLSX, as of `now`."""
    return [{"kind": REPORT, "at": now.isoformat()}]


@dataclass
class Built:
    """The files of one message, and why one that must go could not be made (`fatal`: the
    message is not sent; `skipped`: it goes without that file)."""

    attachments: tuple[Attachment, ...] = ()
    skipped: list[str] = field(default_factory=list)
    fatal: str | None = None


def build_attachments(
    content: Mapping[str, Any] | None,
    settings: Settings,
    store: Store,
    *,
    masked: bool = False,
    known: Mapping[str, Facts] | None = None,
) -> Built:
    """The files `content["attach"]` asks for. An apology letter that cannot be written is
    skipped (the warning about the case matters more than the draft; the log says why); a
    report whose XLSX cannot be made is fatal (the message is nothing without it).

    `masked`: the channel shows applicants masked (Telegram by default), and so does the
    letter it carries. `known`: case facts the caller already holds, by case code."""
    out = Built()
    files: list[Attachment] = []
    for spec in (content or {}).get("attach") or ():
        kind = spec.get("kind")
        try:
            at = datetime.fromisoformat(spec["at"])
        except (KeyError, TypeError, ValueError):
            out.skipped.append(f"attachment {spec!r}: no valid instant")
            continue
        if kind == APOLOGY_LETTER:
            code = str(spec.get("case") or "")
            try:
                files.append(_apology(code, at, settings, store, masked, known or {}))
            except Exception as e:  # a broken template, a case gone: the alert still goes
                reason = f"apology letter of {code}: {e}"
                log.error("%s; the message goes without it", reason)
                out.skipped.append(reason)
        elif kind == REPORT:
            try:
                files.append(_report(content or {}, at, settings, store))
            except Exception as e:
                out.fatal = f"report attachment: {type(e).__name__}: {e}"
                log.error("%s", out.fatal)
                return out
        else:
            out.skipped.append(f"unknown attachment kind {kind!r}")
    out.attachments = tuple(files)
    return out


def _apology(
    code: str,
    at: datetime,
    settings: Settings,
    store: Store,
    masked: bool,
    known: Mapping[str, Facts],
) -> Attachment:
    from watchdog.letters.apology import apology_letter
    from watchdog.letters.documents import DOCX_TYPE, apology_attachment_name, apology_docx
    from watchdog.letters.lookup import find_case
    from watchdog.outbox.render import mask_name

    facts = known.get(code) or find_case(store, code)
    if facts is None:
        raise LookupError("the case is no longer stored")
    record, events = facts
    letter = apology_letter(record, events, settings, at)
    if masked and letter.applicant_name:
        letter = replace(letter, applicant_name=mask_name(letter.applicant_name))
    data = apology_docx(letter, settings)
    return Attachment(apology_attachment_name(code), DOCX_TYPE, data)


def _report(
    content: Mapping[str, Any], at: datetime, settings: Settings, store: Store
) -> Attachment:
    # The scheduled reports' module makes the workbook (imported here, when a report goes).
    from watchdog.reports.schedule import report_attachment

    spec = {k: v for k, v in content.items() if k != "attach"}
    filename, data = report_attachment(spec, settings, store, at)
    return Attachment(filename, XLSX_TYPE, data)
