"""Command line (SPEC 8). Parses arguments and calls the services; holds no logic of its own.

Exit status: 0 success, 1 failure or rejected input, 2 usage or configuration error.
Machine output goes to stdout; progress, problems and logs to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from watchdog.clock import Clock, FixedClock, SystemClock
from watchdog.config import (
    ConfigError,
    Settings,
    default_config_path,
    empty_settings,
    load_settings,
)
from watchdog.durations import Duration, Unit, compute_due
from watchdog.timefmt import FORMATS_HELP, iso, parse_instant, parse_period_end, parse_when, show

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or configuration: exit status 2."""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----- helpers shared by commands -------------------------------------------------------------


def _settings(args: argparse.Namespace, *, required: bool = True) -> Settings:
    path = Path(args.config) if args.config else default_config_path()
    if not path.exists():
        if not required and not args.config and "WATCHDOG_CONFIG" not in os.environ:
            return empty_settings()
        raise UsageError(
            f"{path}: no such configuration file (give --config PATH or set WATCHDOG_CONFIG)"
        )
    return load_settings(path)


def _clock(args: argparse.Namespace, settings: Settings) -> Clock:
    if getattr(args, "now", None):
        return FixedClock(_instant(args.now, settings, "--now"))
    return SystemClock()


def _instant(text: str, settings: Settings, option: str) -> datetime:
    try:
        return parse_instant(text, settings.default_calendar.tz)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def _period_end(text: str, settings: Settings, option: str) -> datetime:
    try:
        return parse_period_end(text, settings.default_calendar.tz)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def _date(text: str, option: str) -> date:
    try:
        when = parse_when(text, UTC)  # the zone does not matter for a date
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None
    return when.date() if isinstance(when, datetime) else when


# The database URL of this command, for the message of a database error raised after opening.
_database_url: str | None = None


def _store(settings: Settings, *, migrate: bool = True):
    from watchdog.store import Store

    global _database_url
    _database_url = settings.database_url
    return Store.open(settings.database_url, migrate=migrate)


def _write(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"--out {out}: cannot write: {e.strerror or e}") from None
        _err(f"written to {out}")
    else:
        sys.stdout.write(text)


# ----- commands ---------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from watchdog.engine.rules import load_rules
    from watchdog.store.db import check_database

    settings = _settings(args)
    rules = load_rules(settings)
    c = settings.config
    stages = sum(len(p.stages) for p in rules.policies)
    print(
        f"{settings.file}: OK ({len(c.units)} units, {len(c.officials)} officials, "
        f"{len(c.procedures)} procedures, {len(settings.calendars)} calendar(s))"
    )
    print(
        f"rules: OK ({len(rules.files)} file(s), {len(rules.policies)} policies, {stages} stages, "
        f"{len(rules.digests)} digests, hash {rules.hash})"
    )
    global _database_url
    _database_url = settings.database_url
    print(check_database(settings.database_url))
    return EXIT_OK


def cmd_due(args: argparse.Namespace) -> int:
    settings = _settings(args, required=False)
    if args.unit and args.unit not in settings.units:
        raise UsageError(f"--unit: unknown unit {args.unit!r}")
    calendar = settings.calendar_for(args.unit)
    received = _instant(args.received, settings, "--received")
    if args.procedure:
        procedure = settings.procedures.get(args.procedure)
        if procedure is None:
            raise UsageError(f"--procedure: unknown procedure {args.procedure!r}")
        limit = procedure.limit
    elif args.working_days is not None:
        limit = Duration(args.working_days, Unit.WORKING_DAYS)
    elif args.working_hours is not None:
        limit = Duration(args.working_hours, Unit.WORKING_HOURS)
    else:
        limit = Duration(args.calendar_days, Unit.CALENDAR_DAYS)
    print(iso(compute_due(calendar, received, limit), calendar.tz))
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from watchdog.sources.fileimport import Progress, import_file
    from watchdog.store.directory import sync_directory

    settings = _settings(args)
    store = _store(settings)
    if not args.dry_run:
        sync_directory(store, settings)
    path = Path(args.file)
    report = import_file(
        store,
        settings,
        path,
        _clock(args, settings).now(),
        dry_run=args.dry_run,
        encoding=args.encoding,
        progress=Progress(f"importing {path.name}"),
        on_problem=_err,
    )
    summary = report.as_dict() | {"dry_run": args.dry_run}
    if report.ignored_columns:
        _err(f"{path.name}: ignored unknown column(s): {', '.join(report.ignored_columns)}")
    _err(
        f"{path.name}: {report.rows} row(s): {report.written.inserted} new, "
        f"{report.written.updated} updated, {report.written.unchanged} unchanged, "
        f"{report.rejected} rejected" + (" (dry run: nothing written)" if args.dry_run else "")
    )
    print(json.dumps(summary, ensure_ascii=False))
    return EXIT_FAILED if report.rejected else EXIT_OK


def cmd_cases(args: argparse.Namespace) -> int:
    from watchdog.reports.board import COLUMNS, as_json, as_rows, board
    from watchdog.reports.table import render_table

    settings = _settings(args)
    if args.unit and args.unit not in settings.units:
        raise UsageError(f"--unit: unknown unit {args.unit!r}")
    lines = board(
        _store(settings),
        settings,
        _clock(args, settings).now(),
        unit=args.unit,
        official=args.official,
        state=args.state,
    )
    for note in lines.notes:
        _err(note)
    if args.format == "jsonl":
        for line in lines:
            print(json.dumps(as_json(line, settings), ensure_ascii=False))
    else:
        sys.stdout.write(render_table(COLUMNS, as_rows(lines, settings)))
        _err(f"{len(lines)} open case(s)")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from watchdog.reports.ontime import By, build_report, to_csv, to_table

    settings = _settings(args)
    start, end = _date(args.date_from, "--from"), _date(args.date_to, "--to")
    if end < start:
        raise UsageError("--to: must not be before --from")
    if args.metric != "portal":
        raise UsageError(f"--metric {args.metric}: not available yet (only portal)")
    if args.format not in ("table", "csv"):
        raise UsageError(f"--format {args.format}: not available yet (table or csv)")
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
    _write(to_csv(report) if args.format == "csv" else to_table(report), args.out)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from watchdog.engine.rules import load_rules
    from watchdog.engine.runner import Engine
    from watchdog.reports.board import COLUMNS, as_rows, board
    from watchdog.reports.table import render_table
    from watchdog.store.directory import sync_directory

    settings = _settings(args)
    rules = load_rules(settings)
    if not args.once:
        raise UsageError(
            "the long-running daemon is not built yet; use `run --once` "
            "(sync the directory, load demo data with --demo, evaluate the rules once)"
        )
    now = _clock(args, settings).now()
    store = _store(settings)
    counts = sync_directory(store, settings)
    _err(
        f"directory: {counts['units']} units, {counts['officials']} officials, "
        f"{counts['procedures']} procedures"
    )
    if args.demo:
        from watchdog.demo import load_demo

        written = load_demo(store, settings, now)
        _err(f"demo data: {written.inserted} new, {written.updated} updated cases")
    engine = Engine(store, settings, rules)
    planned = engine.ensure_planned(now)
    if planned.batches:
        _err(f"rules {rules.hash}: {planned.evaluated} open case(s) planned")
    report = engine.tick(now)
    fired = len(planned.fired) + len(report.fired)
    _err(
        f"engine: {planned.evaluated + report.evaluated} case(s) evaluated, {fired} new "
        f"firing(s) ({len(planned.fired)} while planning, {len(report.fired)} in the tick)"
    )
    lines = board(store, settings, now)
    for note in lines.notes:
        _err(note)
    sys.stdout.write(render_table(COLUMNS, as_rows(lines, settings)))
    _err(f"{len(lines)} open case(s) at {iso(now, settings.default_calendar.tz)}")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    from watchdog.config.models import parse_span
    from watchdog.engine.rules import load_rules
    from watchdog.engine.simulate import simulate
    from watchdog.reports.table import render_table

    settings = _settings(args)
    rules = load_rules(settings)
    start = _instant(args.date_from, settings, "--from")
    end = _period_end(args.date_to, settings, "--to")
    if end < start:
        raise UsageError("--to: must not be before --from")
    try:
        step = parse_span(args.step)
    except ValueError as e:
        raise UsageError(f"--step: {e}") from None
    if step.total_seconds() <= 0:
        raise UsageError("--step: must be positive")
    tz = settings.default_calendar.tz
    messages = simulate(_store(settings), settings, rules, start, end, step)
    if args.format == "jsonl":
        for m in messages:
            row = {
                "at": iso(m.at, tz),
                "stage": m.items[0].stage,
                "case_codes": m.case_codes,
                "recipient": m.recipient,
                "channel": m.channel,
                "stages": m.stages,
            }
            print(json.dumps(row, ensure_ascii=False))
    else:
        rows = (
            {
                "at": show(m.at, tz),
                "recipient": m.recipient,
                "channel": m.channel,
                "stages": ",".join(s.split("/")[-1] for s in m.stages),
                "cases": len(m.case_codes),
                "first case": m.case_codes[0],
            }
            for m in messages
        )
        cols = ("at", "recipient", "channel", "stages", "cases", "first case")
        sys.stdout.write(render_table(cols, rows))
        _err(f"{len(messages)} message(s) between {iso(start, tz)} and {iso(end, tz)}")
    return EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    from watchdog.reports.table import render_table
    from watchdog.store.findings import open_findings

    settings = _settings(args)
    tz = settings.default_calendar.tz
    found = open_findings(_store(settings), kind=args.kind)
    if args.format == "jsonl":
        for f in found:
            print(json.dumps(f | {"found_at": iso(f["found_at"], tz)}, ensure_ascii=False))
    else:
        rows = ({**f, "found_at": show(f["found_at"], tz)} for f in found)
        sys.stdout.write(render_table(("kind", "subject", "detail", "found_at"), rows))
        _err(f"{len(found)} open finding(s)")
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from watchdog.store.db import display_url

    settings = _settings(args)
    store = _store(settings, migrate=False)
    store.upgrade()
    store.close()
    _err(f"database at the latest schema: {display_url(settings.database_url)}")
    return EXIT_OK


# ----- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="watchdog",
        description="Deadline monitoring and escalation for administrative-procedure cases.",
    )
    p.add_argument("--config", help="configuration file (default: $WATCHDOG_CONFIG, ./config.yaml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str):
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        return sp

    command("check", cmd_check, "validate configuration, rules and templates")

    sp = command("due", cmd_due, "print the due instant of a case, ISO 8601 with offset")
    sp.add_argument("--received", required=True, help=f"received instant ({FORMATS_HELP})")
    limit = sp.add_mutually_exclusive_group(required=True)
    limit.add_argument("--procedure", help="procedure code from the configuration")
    limit.add_argument("--working-days", type=_non_negative, metavar="N")
    limit.add_argument("--working-hours", type=_non_negative, metavar="N")
    limit.add_argument("--calendar-days", type=_non_negative_int, metavar="N")
    sp.add_argument("--unit", help="unit whose calendar applies")

    sp = command("import", cmd_import, "import cases from a CSV or XLSX file")
    sp.add_argument("file")
    sp.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    sp.add_argument(
        "--encoding",
        default="utf-8",
        metavar="E",
        help="text encoding of a CSV file; BOMs are honoured; cp1258 accepted",
    )
    sp.add_argument("--now", help=argparse.SUPPRESS)

    sp = command("cases", cmd_cases, "open cases with due, remaining time and state")
    sp.add_argument("--unit", help="a unit and everything under it")
    sp.add_argument("--official", help="cases assigned to or handled by this official")
    sp.add_argument("--state", choices=["on_track", "due_soon", "overdue", "waiting"])
    sp.add_argument("--format", choices=["table", "jsonl"], default="table")
    sp.add_argument("--now", help="evaluate as if the time were this instant")

    sp = command("report", cmd_report, "on-time figures for cases received in a period")
    sp.add_argument("--from", dest="date_from", required=True, metavar="D1")
    sp.add_argument("--to", dest="date_to", required=True, metavar="D2")
    sp.add_argument("--as-of", help="state taken at this instant (default: end of D2)")
    sp.add_argument("--by", choices=["unit", "procedure", "official"], default="unit")
    sp.add_argument("--metric", choices=["portal", "766"], default="portal")
    sp.add_argument("--format", choices=["table", "csv", "xlsx", "html"], default="table")
    sp.add_argument("--out", metavar="FILE")

    sp = command(
        "simulate", cmd_simulate, "what would be sent between two instants, sending nothing"
    )
    sp.add_argument("--from", dest="date_from", required=True, metavar="T1")
    sp.add_argument("--to", dest="date_to", required=True, metavar="T2")
    sp.add_argument("--step", default="15m", help="tick interval (default 15m)")
    sp.add_argument("--format", choices=["table", "jsonl"], default="table")

    sp = command("findings", cmd_findings, "data-quality findings for the admin")
    sp.add_argument("--kind", help="only this kind (e.g. due_mismatch, no_assignee)")
    sp.add_argument("--format", choices=["table", "jsonl"], default="table")

    sp = command("run", cmd_run, "the daemon")
    sp.add_argument("--once", action="store_true", help="one full pass, then exit")
    sp.add_argument("--demo", action="store_true", help="load the built-in demo province cases")
    sp.add_argument("--now", help="run as if the time were this instant")

    db = sub.add_parser("db", help="database maintenance")
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = dbsub.add_parser("upgrade", help="apply schema migrations")
    up.set_defaults(func=cmd_db_upgrade)
    return p


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _non_negative(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # --help may meet a closed pipe too
        status = _run(args)
        sys.stdout.flush()  # here, so that a reader gone away is noticed below
        return status
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    """The command, with every expected failure turned into one line on stderr and its status."""
    global _database_url
    _database_url = None
    try:
        return args.func(args)
    except ConfigError as e:
        for problem in e.problems:
            _err(problem)
        return EXIT_USAGE
    except UsageError as e:
        _err(f"watchdog: {e}")
        return EXIT_USAGE
    except BrokenPipeError:
        raise
    except Exception as e:
        return _failure(e)


def _failure(e: Exception) -> int:
    from watchdog.sources.fileimport import ImportFileError
    from watchdog.store.db import as_store_error

    if isinstance(e, ImportFileError):
        _err(str(e))
        return EXIT_FAILED
    debug = os.environ.get("WATCHDOG_DEBUG", "") not in ("", "0")
    if (error := as_store_error(e, _database_url)) is not None:
        if debug and error is not e:
            _traceback(e)
        _err(f"watchdog: {error}")
        return error.exit_code
    if debug:
        _traceback(e)
        return EXIT_FAILED
    why = " ".join(str(e).split()) or "(no message)"
    _err(
        f"watchdog: unexpected error: {type(e).__name__}: {why} "
        "(set WATCHDOG_DEBUG=1 for the traceback)"
    )
    return EXIT_FAILED


def _traceback(e: BaseException) -> None:
    import traceback

    traceback.print_exception(e, file=sys.stderr)


def _reader_gone() -> int:
    """The reader of our output went away (`watchdog cases | head`): stop quietly. Python would
    report the broken pipe again when it flushes at exit, so the stream that failed now points
    at /dev/null (the recipe in the documentation of the `signal` module)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            os.dup2(devnull, stream.fileno())
    os.close(devnull)
    return 128 + 13  # as if killed by SIGPIPE, like the other commands of a pipeline
