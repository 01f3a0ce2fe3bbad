"""`watchdog letters apology|control-sheet CASE_CODE` (SPEC 8): a case's letter as a file."""

from __future__ import annotations

import argparse
import sys

from watchdog.cli import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _clock,
    _err,
    _settings,
    _store,
    _write_bytes,
)
from watchdog.i18n import _


def _warning_text(code: str) -> str:
    return {
        "closed": _("the case is closed: an apology letter is for a case that will be late"),
        "no_due": _(
            "the case has no due (unknown procedure and no appointment from the source): "
            "fill in the dates by hand"
        ),
        "extended": _(
            "the case already had its appointment reset once: the law allows one reset only, "
            "a second one does not make the case on time"
        ),
        "late": _("the due has passed: an apology sent now does not make the case on time"),
        "notice": _(
            "less than the procedure's notice (extension_notice) is left before the due: a new "
            "appointment recorded now does not make the case on time"
        ),
    }.get(code, code)


def _write_file(data: bytes, out: str, *, binary: bool) -> None:
    """`out` may be "-" (stdout, refused for binary data on a terminal)."""
    if out == "-" and binary and sys.stdout.isatty():
        raise UsageError(
            _("--out -: a DOCX file is not written to a terminal; redirect it or name a file")
        )
    _write_bytes(data, out)


def _case(store, code: str):
    from watchdog.letters.lookup import find_case

    found = find_case(store, code)
    if found is None:
        _err(_("watchdog: no case with the code {code}").format(code=repr(code)))
    return found


def cmd_apology(args: argparse.Namespace) -> int:
    from watchdog.letters.apology import apology_letter
    from watchdog.letters.documents import LetterError, apology_docx, apology_file_name
    from watchdog.timefmt import show

    settings = _settings(args)
    now = _clock(args, settings).now()
    found = _case(_store(settings), args.case)
    if found is None:
        return EXIT_FAILED
    record, events = found
    letter = apology_letter(record, events, settings, now, reason=args.reason)
    try:
        data = apology_docx(letter, settings)
    except LetterError as e:
        raise UsageError(str(e)) from None
    for code in letter.warnings:
        _err(_("warning: {problem}").format(problem=_warning_text(code)))
    _write_file(data, args.out or apology_file_name(record.case_code), binary=True)
    if letter.new_due is not None:
        _err(
            _("appointment {old} -> proposed new appointment {new}").format(
                old=show(letter.original_due, letter.tz), new=show(letter.new_due, letter.tz)
            )
        )
    return EXIT_OK


def cmd_control_sheet(args: argparse.Namespace) -> int:
    from watchdog.letters.control import control_sheet
    from watchdog.letters.documents import (
        LetterError,
        control_sheet_docx,
        control_sheet_file_name,
        control_sheet_html,
    )

    settings = _settings(args)
    now = _clock(args, settings).now()
    found = _case(_store(settings), args.case)
    if found is None:
        return EXIT_FAILED
    record, events = found
    sheet = control_sheet(record, events, settings, now=now)
    try:
        if args.format == "html":
            data = control_sheet_html(sheet, settings, now).encode("utf-8")
        else:
            data = control_sheet_docx(sheet, settings, now)
    except LetterError as e:
        raise UsageError(str(e)) from None
    out = args.out or control_sheet_file_name(record.case_code, args.format)
    _write_file(data, out, binary=args.format == "docx")
    return EXIT_OK
