"""`watchdog report` (SPEC 8-9): arguments to the report and its formats."""

from __future__ import annotations

import argparse

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
)
from watchdog.i18n import _


def cmd_report(args: argparse.Namespace) -> int:
    from watchdog.reports.ontime import By, build_report, to_csv, to_table

    settings = _settings(args)
    start, end = _date(args.date_from, "--from"), _date(args.date_to, "--to")
    if end < start:
        raise UsageError(_("--to: must not be before --from"))
    if args.metric != "portal":
        raise UsageError(
            _("--metric {metric}: not available yet (only portal)").format(metric=args.metric)
        )
    if args.format not in ("table", "csv"):
        raise UsageError(
            _("--format {format}: not available yet (table or csv)").format(format=args.format)
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
    )
    for note in report.notes:
        _err(note)
    tz = settings.default_calendar.tz
    _write(to_csv(report) if args.format == "csv" else to_table(report, tz), args.out)
    return EXIT_OK
