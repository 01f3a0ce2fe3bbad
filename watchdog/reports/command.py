"""`watchdog report` (SPEC 8-9): arguments to the report and its formats."""

from __future__ import annotations

import argparse
import sys

from watchdog.cli import (
    EXIT_OK,
    UsageError,
    _clock,
    _date,
    _err,
    _period_end,
    _settings,
    _store,
    _write,
    _write_bytes,
)
from watchdog.i18n import _


def cmd_report(args: argparse.Namespace) -> int:
    from watchdog.reports.ontime import By, build_report, to_csv, to_table

    settings = _settings(args)
    start, end = _date(args.date_from, "--from"), _date(args.date_to, "--to")
    if end < start:
        raise UsageError(_("--to: must not be before --from"))
    if args.format == "xlsx" and not args.out and sys.stdout.isatty():
        raise UsageError(
            _("--format xlsx: give --out FILE.xlsx (a workbook is not written to a terminal)")
        )
    as_of = _period_end(args.as_of, settings, "--as-of") if args.as_of else None
    report = build_report(
        _store(settings),
        settings,
        start,
        end,
        as_of=as_of,
        by=By(args.by),
        now=_clock(args, settings).now(),
        metric=args.metric,
    )
    for note in report.notes:
        _err(note)
    if args.format == "xlsx":
        from watchdog.reports.xlsx import to_xlsx

        _write_bytes(to_xlsx(report, settings), args.out)
    elif args.format == "html":
        from watchdog.reports.html import to_html

        _write(to_html(report, settings), args.out)
    elif args.format == "csv":
        _write(to_csv(report), args.out)
    else:
        _write(to_table(report, settings.default_calendar.tz), args.out)
    return EXIT_OK
