"""Command line (SPEC 8). Parses arguments and calls the services; holds no logic of its own.

Exit status: 0 success, 1 failure or rejected input, 2 usage or configuration error.
Machine output goes to stdout; progress, problems and logs to stderr. Text for people comes
from the message catalogue (`watchdog.i18n`): Vietnamese, or English with `--lang en` or
WATCHDOG_LANG=en; machine output is the same in both.

Start-up time matters (`watchdog --help` and `watchdog due` answer in well under 300 ms): this
module imports only the standard library and our light core at the top; configuration
(pydantic, YAML), the calendar (holidays) and the store (SQLAlchemy) are imported inside the
commands that use them. tests/unit/test_startup.py keeps it so.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchdog import i18n
from watchdog.i18n import _, ngettext
from watchdog.timefmt import iso, parse_instant, parse_period_end, parse_when, show

if TYPE_CHECKING:
    from watchdog.clock import Clock
    from watchdog.config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or configuration: exit status 2."""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


# ----- helpers shared by commands -------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    settings = _settings_if_any(args, required=True)
    assert settings is not None
    return settings


def _settings_if_any(args: argparse.Namespace, *, required: bool) -> Settings | None:
    """The configuration; None when it is not `required` and there is no file at all (neither
    --config nor WATCHDOG_CONFIG given, no ./config.yaml)."""
    from watchdog.config import default_config_path, load_settings

    path = Path(args.config) if args.config else default_config_path()
    if not path.exists():
        if not required and not args.config and "WATCHDOG_CONFIG" not in os.environ:
            return None
        raise UsageError(
            _(
                "{path}: no such configuration file (give --config PATH or set WATCHDOG_CONFIG)"
            ).format(path=path)
        )
    return load_settings(path)


def _clock(args: argparse.Namespace, settings: Settings) -> Clock:
    from watchdog.clock import FixedClock, SystemClock

    if getattr(args, "now", None):
        return FixedClock(_instant(args.now, settings, "--now"))
    return SystemClock()


def _instant(text: str, settings: Settings, option: str) -> datetime:
    return _instant_in(text, settings.default_calendar.tz, option)


def _instant_in(text: str, tz: tzinfo, option: str) -> datetime:
    try:
        return parse_instant(text, tz)
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


def _known_unit(settings: Settings, unit: str | None) -> None:
    if unit and unit not in settings.units:
        raise UsageError(_("--unit: unknown unit {unit}").format(unit=repr(unit)))


# The database URL of this command, for the message of a database error raised after opening.
_database_url: str | None = None


def _store(settings: Settings, *, migrate: bool = True):
    from watchdog.store import Store

    global _database_url
    _database_url = settings.database_url
    return Store.open(settings.database_url, migrate=migrate)


def _write_bytes(data: bytes, out: str | None) -> None:
    """A file's bytes to `out`, or to stdout when `out` is None or "-" (the caller refuses a
    terminal for binary data first)."""
    if not out or out == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        Path(out).write_bytes(data)
    except OSError as e:
        raise UsageError(
            _("--out {file}: cannot write: {why}").format(file=out, why=e.strerror or e)
        ) from None
    _err(_("written to {file}").format(file=out))


def _write(text: str, out: str | None) -> None:
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(
                _("--out {file}: cannot write: {why}").format(file=out, why=e.strerror or e)
            ) from None
        _err(_("written to {file}").format(file=out))
    else:
        sys.stdout.write(text)


def _subcommand(parent: Any, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose help line is also its description."""
    return parent.add_parser(name, help=text, description=text)


def _lazy(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A command whose code lives in `module` (imported only when the command runs, which
    keeps start-up light): the report, letters and dashboard accounts."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return run


# ----- commands ---------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from watchdog.clock import SystemClock
    from watchdog.config.yamlsrc import ConfigError
    from watchdog.engine.rules import check_rules, load_rules
    from watchdog.store.db import check_database

    settings = _settings(args)
    rules = load_rules(settings)
    today = settings.default_calendar.local(SystemClock().now()).date()
    warnings: list[str] = []
    problems = check_rules(settings, rules, today=today, warnings=warnings)
    problems.extend(_template_problems(settings, rules))
    problems.extend(_letter_problems(settings))
    for warning in warnings:
        _err(_("warning: {problem}").format(problem=warning))
    if problems:
        raise ConfigError(problems)
    c = settings.config
    stages = sum(len(p.stages) for p in rules.policies)
    print(
        _(
            "{file}: OK ({units} units, {officials} officials, {procedures} procedures, "
            "{calendars} calendar(s))"
        ).format(
            file=settings.file,
            units=len(c.units),
            officials=len(c.officials),
            procedures=len(c.procedures),
            calendars=len(settings.calendars),
        )
    )
    print(
        _(
            "rules: OK ({files} file(s), {policies} policies, {stages} stages, "
            "{digests} digests, hash {hash}); templates: OK"
        ).format(
            files=len(rules.files),
            policies=len(rules.policies),
            stages=stages,
            digests=len(rules.digests),
            hash=rules.hash,
        )
    )
    global _database_url
    _database_url = settings.database_url
    print(check_database(settings.database_url))
    return EXIT_OK


def _template_problems(settings: Settings, rules) -> list[str]:
    """Every template a stage, digest, test or notice uses, rendered with a sample case."""
    from watchdog.outbox.render import check_templates
    from watchdog.outbox.wiring import renderer_for

    names = [s.template_name for p in rules.policies for s in p.stages]
    return [
        _("templates: {problem}").format(problem=p)
        for p in check_templates(renderer_for(settings), names)
    ]


def _letter_problems(settings: Settings) -> list[str]:
    """The apology letter's and the control sheet's templates (docs/letters.md)."""
    from watchdog.letters.templates import check_letter_templates

    return [_("letters: {problem}").format(problem=p) for p in check_letter_templates(settings)]


def cmd_due(args: argparse.Namespace) -> int:
    from watchdog.durations import Duration, Unit, compute_due

    settings = _settings_if_any(args, required=False)
    if settings is None:  # no configuration at all: the VN default calendar, no models loaded
        from watchdog.config import default_calendar

        calendar, units, procedures = default_calendar(), {}, {}
    else:
        calendar = settings.calendar_for(args.unit)
        units, procedures = settings.units, settings.procedures
    if args.unit and args.unit not in units:
        raise UsageError(_("--unit: unknown unit {unit}").format(unit=repr(args.unit)))
    received = _instant_in(args.received, calendar.tz, "--received")
    if args.procedure:
        procedure = procedures.get(args.procedure)
        if procedure is None:
            raise UsageError(
                _("--procedure: unknown procedure {code}").format(code=repr(args.procedure))
            )
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
    from watchdog.progress import Progress
    from watchdog.sources.fileimport import import_file
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
        progress=Progress(_("importing {file}").format(file=path.name), unit=_("rows")),
        on_problem=_err,
        **({"encoding": args.encoding} if args.encoding else {}),
    )
    summary = report.as_dict() | {"dry_run": args.dry_run}
    if report.ignored_columns:
        _err(
            _("{file}: ignored unknown column(s): {columns}").format(
                file=path.name, columns=", ".join(report.ignored_columns)
            )
        )
    w = report.written
    line = _(
        "{file}: {rows} row(s): {new} new, {updated} updated, {unchanged} unchanged, "
        "{rejected} rejected"
    ).format(
        file=path.name,
        rows=report.rows,
        new=w.inserted,
        updated=w.updated,
        unchanged=w.unchanged,
        rejected=report.rejected,
    )
    _err(line + (_(" (dry run: nothing written)") if args.dry_run else ""))
    for unknown, text in (
        (
            report.unknown_procedures,
            _(
                "warning: {n} case(s) of procedures not in the configuration ({codes}): no due "
                "is computed for them until the procedure is added"
            ),
        ),
        (
            report.unknown_units,
            _(
                "warning: {n} case(s) of units not in the configuration ({codes}): the default "
                "calendar counts and no unit head is warned until the unit is added"
            ),
        ),
    ):
        if unknown:
            codes = sorted(unknown, key=lambda c: (-unknown[c], c))
            shown = ", ".join(codes[:5]) + (", …" if len(codes) > 5 else "")
            _err(text.format(n=sum(unknown.values()), codes=shown))
    print(_json(summary))
    return EXIT_FAILED if report.rejected else EXIT_OK


def _open_cases(n: int) -> str:
    return ngettext("{n} open case", "{n} open cases", n).format(n=n)


def cmd_cases(args: argparse.Namespace) -> int:
    from watchdog.reports.board import as_json, board, iter_board, render

    settings = _settings(args)
    _known_unit(settings, args.unit)
    store, now = _store(settings), _clock(args, settings).now()
    scope = {"unit": args.unit, "official": args.official, "state": args.state}
    if args.format == "jsonl":  # every line, streamed: a million cases never sit in memory
        lines, skipped = iter_board(store, settings, now, **scope)
        for note in (s.note for s in skipped):
            _err(note)
        for line in lines:
            print(_json(as_json(line, settings)))
        return EXIT_OK
    limit = args.limit
    if limit is None:
        limit = BOARD_PAGE if sys.stdout.isatty() else 0
    page = board(store, settings, now, limit=limit or None, **scope)
    for note in page.notes:
        _err(note)
    sys.stdout.write(render(page, settings))
    if len(page) < page.total:
        _err(
            _("{shown} of {total} open cases shown, most urgent first (--limit 0: all)").format(
                shown=len(page), total=page.total
            )
        )
    else:
        _err(_open_cases(page.total))
    return EXIT_OK


BOARD_PAGE = 50  # lines of `watchdog cases` on a terminal, unless --limit says otherwise


def cmd_run(args: argparse.Namespace) -> int:
    from watchdog.config import with_telegram_chats
    from watchdog.engine.rules import load_rules
    from watchdog.engine.runner import Engine
    from watchdog.outbox.enqueue import alerts_hook
    from watchdog.outbox.wiring import deliver_once
    from watchdog.store.directory import sync_directory
    from watchdog.store.links import telegram_links
    from watchdog.store.outbox import HELD, message_counts

    settings = _settings(args)
    rules = load_rules(settings)
    if not args.once:
        return _daemon(args, settings)
    clock = _clock(args, settings)
    now = clock.now()
    store = _store(settings)
    counts = sync_directory(store, settings)
    _err(
        _("directory: {units} units, {officials} officials, {procedures} procedures").format(
            **counts
        )
    )
    if args.demo:
        from watchdog.demo import load_demo

        written = load_demo(store, settings, now)
        _err(
            _("demo data: {new} new, {updated} updated cases").format(
                new=written.inserted, updated=written.updated
            )
        )
    settings = with_telegram_chats(settings, telegram_links(store))
    engine = Engine(store, settings, rules)
    hook = alerts_hook(store, settings, now)
    progress = _planning_progress(engine, store, rules.hash)
    planned = engine.ensure_planned(
        now, progress=progress.update if progress else None, on_firings=hook
    )
    if progress is not None and progress.shown:  # the line took long enough to be shown
        progress.update(planned.evaluated, final=True)
    if planned.batches:
        _err(_("rules {hash}: {n} case(s) planned").format(hash=rules.hash, n=planned.evaluated))
    report = engine.tick(now, on_firings=hook)
    _err(
        _(
            "engine: {evaluated} case(s) evaluated, {fired} new firing(s) "
            "({planning} while planning, {tick} in the tick)"
        ).format(
            evaluated=planned.evaluated + report.evaluated,
            fired=len(planned.fired) + len(report.fired),
            planning=len(planned.fired),
            tick=len(report.fired),
        )
    )
    done = deliver_once(store, settings, rules, clock)
    d = done.delivery
    held = sum(n for (status, _channel), n in message_counts(store).items() if status == HELD)
    _err(
        _(
            "messages: {sent} sent, {held} held for office hours, {retrying} to retry, "
            "{dead} failed for good; digests: {digests} written; scheduled reports: {reports} "
            "written"
        ).format(
            sent=d.sent,
            held=held,
            retrying=d.retrying,
            dead=d.dead,
            digests=done.digests.written,
            reports=done.reports,
        )
    )
    for error in d.errors:
        _err(error)
    _err(_("pass done at {time}").format(time=show(now, settings.default_calendar.tz)))
    return EXIT_OK if not d.dead else EXIT_FAILED


def _daemon(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from watchdog.clock import OffsetClock, SystemClock
    from watchdog.daemon import Daemon, setup_logging

    setup_logging(settings.config.logging.format, settings.config.logging.level)
    if args.now:
        clock: Clock = OffsetClock(_instant(args.now, settings, "--now"))
    elif args.demo:  # a demo shows messages at once: at night its clock starts at the opening
        now = SystemClock().now()
        opening = settings.default_calendar.next_desk_instant(now)
        clock = OffsetClock(opening) if opening > now else SystemClock()
        if opening > now:
            _err(
                _("demo: the desk is closed now; the clock starts at its opening, {time}").format(
                    time=show(opening, settings.default_calendar.tz)
                )
            )
    else:
        clock = SystemClock()
    global _database_url
    _database_url = settings.database_url
    daemon = Daemon(settings.file or Path(args.config), clock, demo=args.demo)
    return asyncio.run(daemon.run())


HISTORY_COLUMNS = (
    "id",
    "created_at",
    "sent_at",
    "recipient",
    "channel",
    "stages",
    "cases",
    "status",
    "attempts",
    "last_error",
    "acknowledged_at",
)


def cmd_history(args: argparse.Namespace) -> int:
    from watchdog.reports.table import render_table
    from watchdog.store.outbox import history

    settings = _settings(args)
    tz = settings.default_calendar.tz
    since = _instant(args.since, settings, "--since") if args.since else None
    rows = history(
        _store(settings),
        case_code=args.case,
        recipient=args.official,
        status=args.status,
        since=since,
    )
    if args.format == "jsonl":
        for r in rows:
            print(
                _json(
                    {
                        "id": r.id,
                        "kind": r.kind,
                        "created_at": iso(r.created_at, tz),
                        "sent_at": iso(r.sent_at, tz),
                        "recipient": r.recipient,
                        "channel": r.channel,
                        "address": r.address,
                        "stages": r.stages,
                        "case_codes": r.case_codes,
                        "status": r.status,
                        "attempts": r.attempts,
                        "last_error": r.last_error,
                        "acknowledged_at": iso(r.acknowledged_at, tz),
                        "subject": r.subject,
                        "message_id": r.message_id,
                        "provider_id": r.provider_id,
                    }
                )
            )
        return EXIT_OK
    table = (
        {
            "id": r.id,
            "created_at": show(r.created_at, tz),
            "sent_at": show(r.sent_at, tz),
            "recipient": r.recipient,
            "channel": r.channel,
            "stages": ", ".join(s.rsplit("/", 1)[-1] for s in r.stages),
            "cases": ", ".join(r.case_codes[:3]) + (" …" if len(r.case_codes) > 3 else ""),
            "status": i18n.message_status_label(r.status),
            "attempts": r.attempts,
            "last_error": (r.last_error or "")[:60],
            "acknowledged_at": show(r.acknowledged_at, tz),
        }
        for r in rows
    )
    headers = {
        "id": _("No."),
        "created_at": _("Created"),
        "sent_at": _("Sent"),
        "recipient": _("Recipient"),
        "channel": _("Channel"),
        "stages": _("Stages"),
        "cases": _("Cases"),
        "status": _("Status"),
        "attempts": _("Attempts"),
        "last_error": _("Last error"),
        "acknowledged_at": _("Acknowledged"),
    }
    sys.stdout.write(render_table(HISTORY_COLUMNS, table, headers))
    _err(ngettext("{n} message", "{n} messages", len(rows)).format(n=len(rows)))
    return EXIT_OK


LINK_CODE_TTL_HOURS = 24


def cmd_officials_link_code(args: argparse.Namespace) -> int:
    import secrets
    from datetime import timedelta

    from watchdog.store.links import add_link_code

    settings = _settings(args)
    official = settings.officials.get(args.id)
    if official is None:
        raise UsageError(_("{id}: no such official in the configuration").format(id=args.id))
    now = _clock(args, settings).now()
    code = secrets.token_hex(5).upper()
    expires = now + timedelta(hours=LINK_CODE_TTL_HOURS)
    add_link_code(_store(settings), official.id, code, now, expires)
    print(code)
    _err(
        _(
            "{name}: send /start {code} to the bot on Telegram before {time} (the code works once)"
        ).format(name=official.name, code=code, time=show(expires, settings.default_calendar.tz))
    )
    return EXIT_OK


def cmd_send_test(args: argparse.Namespace) -> int:
    from watchdog.config import with_telegram_chats
    from watchdog.engine.rules import CHANNEL_ORDER
    from watchdog.outbox.compose import recipient_of
    from watchdog.outbox.views import MessageView
    from watchdog.outbox.wiring import deliver_once, renderer_for
    from watchdog.store.links import telegram_links
    from watchdog.store.outbox import NewMessage, enqueue_message, history

    settings = _settings(args)
    store = _store(settings)
    settings = with_telegram_chats(settings, telegram_links(store))
    official = settings.officials.get(args.official)
    if official is None:
        raise UsageError(_("{id}: no such official in the configuration").format(id=args.official))
    clock = _clock(args, settings)
    now = clock.now()
    renderer = renderer_for(settings)
    targets = []
    for channel in CHANNEL_ORDER:
        if getattr(settings.channels, channel) is None:
            continue
        address = {"telegram": official.telegram, "email": official.email}.get(channel, official.id)
        if address:
            targets.append((channel, str(address)))
    if not targets:
        raise UsageError(
            _("{id}: no configured channel reaches this official").format(id=official.id)
        )
    ids: list[int] = []
    for channel, address in targets:
        view = MessageView(
            kind="test",
            channel=channel,
            recipient=recipient_of(settings, official.id),
            now=now,
            tz=settings.default_calendar.tz,
        )
        r = renderer.render(view)
        new = NewMessage("test", official.id, channel, address, r.subject, r.text, r.html)
        ids.append(enqueue_message(store, new, now, now) or 0)
    from watchdog.engine.rules import load_rules

    deliver_once(store, settings, load_rules(settings), clock, only=ids)
    failed = 0
    for r in (r for r in history(store, recipient=official.id, since=now) if r.id in ids):
        ok = r.status == "sent"
        failed += not ok
        _err(
            _("{channel} ({address}): {status}{error}").format(
                channel=r.channel,
                address=r.address,
                status=i18n.message_status_label(r.status),
                error=f" — {r.last_error}" if r.last_error and not ok else "",
            )
        )
    return EXIT_FAILED if failed else EXIT_OK


def _planning_progress(engine, store, rules_hash: str):
    """A progress line for a re-plan of every open case (new rules: minutes for a province), on
    a terminal only: cron stays quiet, and counting the cases is skipped there."""
    from watchdog.progress import Progress
    from watchdog.store.cases import count_open_cases

    if not sys.stderr.isatty() or not engine.rules_changed():
        return None
    label = _("planning rules {hash}").format(hash=rules_hash)
    return Progress(label, total=count_open_cases(store), unit=_("cases"))


SIMULATE_COLUMNS = ("at", "recipient", "channel", "stages", "cases", "first case")


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
        raise UsageError(_("--to: must not be before --from"))
    try:
        step = parse_span(args.step)
    except ValueError as e:
        raise UsageError(f"--step: {e}") from None
    if step.total_seconds() <= 0:
        raise UsageError(_("--step: must be positive"))
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
            print(_json(row))
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
        headers = {
            "at": _("At"),
            "recipient": _("Recipient"),
            "channel": _("Channel"),
            "stages": _("Warnings"),
            "cases": _("Cases"),
            "first case": _("First case"),
        }
        sys.stdout.write(render_table(SIMULATE_COLUMNS, rows, headers))
        _err(
            ngettext(
                "{n} message between {start} and {end}",
                "{n} messages between {start} and {end}",
                len(messages),
            ).format(n=len(messages), start=show(start, tz), end=show(end, tz))
        )
    return EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    from watchdog.reports.table import render_table
    from watchdog.store.findings import open_findings

    settings = _settings(args)
    tz = settings.default_calendar.tz
    found = open_findings(_store(settings), kind=args.kind)
    if args.format == "jsonl":
        for f in found:
            print(_json(f | {"found_at": iso(f["found_at"], tz)}))
    else:
        rows = (
            {**f, "kind": i18n.finding_label(f["kind"]), "found_at": show(f["found_at"], tz)}
            for f in found
        )
        headers = {
            "kind": _("Finding"),
            "subject": _("Case"),
            "detail": _("Detail"),
            "found_at": _("Found at"),
        }
        columns = ("kind", "subject", "detail", "found_at")
        sys.stdout.write(render_table(columns, rows, headers))
        _err(ngettext("{n} open finding", "{n} open findings", len(found)).format(n=len(found)))
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from watchdog.store.db import display_url

    settings = _settings(args)
    store = _store(settings, migrate=False)
    store.upgrade()
    store.close()
    _err(_("database at the latest schema: {url}").format(url=display_url(settings.database_url)))
    return EXIT_OK


# ----- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser, its help in the current language (choose it first: `i18n.use`)."""
    i18n.translate_argparse()
    p = argparse.ArgumentParser(
        prog="watchdog",
        description=_("Deadline monitoring and escalation for administrative-procedure cases."),
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help=_("configuration file (default: $WATCHDOG_CONFIG, ./config.yaml)"),
    )
    p.add_argument(
        "--lang",
        choices=i18n.LANGUAGES,
        help=_("language of the text for people: vi (default) or en; also $WATCHDOG_LANG"),
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help: str):
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(func=func)
        return sp

    command("check", cmd_check, _("validate configuration, rules and templates"))

    sp = command("due", cmd_due, _("print the due instant of a case, ISO 8601 with offset"))
    sp.add_argument(
        "--received",
        required=True,
        metavar="T",
        help=_("received instant: ISO 8601, dd/mm/yyyy, dd/mm/yyyy HH:MM[:SS] or yyyyMMddHHmmss"),
    )
    limit = sp.add_mutually_exclusive_group(required=True)
    limit.add_argument(
        "--procedure", metavar="CODE", help=_("procedure code from the configuration")
    )
    limit.add_argument(
        "--working-days", type=_non_negative, metavar="N", help=_("a limit of N working days")
    )
    limit.add_argument(
        "--working-hours", type=_non_negative, metavar="N", help=_("a limit of N working hours")
    )
    limit.add_argument(
        "--calendar-days",
        type=_non_negative_int,
        metavar="N",
        help=_("a limit of N calendar days"),
    )
    sp.add_argument("--unit", metavar="U", help=_("unit whose calendar applies"))

    sp = command("import", cmd_import, _("import cases from a CSV or spreadsheet export"))
    sp.add_argument("file", metavar="FILE", help=_("the exported file"))
    sp.add_argument("--dry-run", action="store_true", help=_("check and count, write nothing"))
    sp.add_argument(
        "--encoding",
        metavar="E",
        help=_(
            "text encoding of a CSV file (default: import.encoding of the configuration, "
            "else utf-8); byte order marks are honoured; cp1258 accepted"
        ),
    )
    sp.add_argument("--now", help=argparse.SUPPRESS)

    states = ", ".join(f"{s} ({i18n.state_label(s)})" for s in i18n.STATES if s != "no_due")
    sp = command("cases", cmd_cases, _("open cases with due, remaining time and state"))
    sp.add_argument("--unit", metavar="U", help=_("a unit and everything under it"))
    sp.add_argument(
        "--official", metavar="ID", help=_("cases assigned to or handled by this official")
    )
    sp.add_argument(
        "--state",
        choices=["on_track", "due_soon", "overdue", "waiting"],
        metavar="STATE",
        help=_("only cases in this state: {states}").format(states=states),
    )
    sp.add_argument(
        "--format",
        choices=["table", "jsonl"],
        default="table",
        help=_("table for people (default) or jsonl for programs"),
    )
    sp.add_argument(
        "--limit",
        type=_non_negative_int,
        metavar="N",
        help=_(
            "show the N most urgent cases (default: 50 on a terminal, all in a pipe; 0: all); "
            "jsonl always gives all"
        ),
    )
    sp.add_argument("--now", metavar="T", help=_("evaluate as if the time were this instant"))

    sp = command(
        "report",
        _lazy("watchdog.reports.command", "cmd_report"),
        _("on-time figures for cases received in a period"),
    )
    sp.add_argument("--from", dest="date_from", required=True, metavar="D1", help=_("first day"))
    sp.add_argument("--to", dest="date_to", required=True, metavar="D2", help=_("last day"))
    sp.add_argument(
        "--as-of",
        metavar="T",
        help=_("state taken at this instant (default: end of D2, or now if earlier)"),
    )
    sp.add_argument(
        "--by",
        choices=["unit", "procedure", "official"],
        default="unit",
        help=_("one row per unit (default), procedure or official"),
    )
    sp.add_argument(
        "--metric",
        choices=["portal", "766"],
        default="portal",
        help=_(
            "portal: the on-time table of the public service portal; 766: indicator 2.1 of "
            "Decision 766/QĐ-TTg (see docs/reports.md)"
        ),
    )
    sp.add_argument(
        "--format",
        choices=["table", "csv", "xlsx", "html"],
        default="table",
        help=_(
            "table for people (default), csv, xlsx (provincial layout; with --out, or stdout "
            "redirected) or html (a web page)"
        ),
    )
    sp.add_argument("--out", metavar="FILE", help=_("write to this file instead of stdout"))

    sp = command(
        "simulate", cmd_simulate, _("what would be sent between two instants, sending nothing")
    )
    sp.add_argument("--from", dest="date_from", required=True, metavar="T1")
    sp.add_argument("--to", dest="date_to", required=True, metavar="T2")
    sp.add_argument("--step", default="15m", help=_("tick interval (default 15m)"))
    sp.add_argument(
        "--format",
        choices=["table", "jsonl"],
        default="table",
        help=_("table for people (default) or jsonl for programs"),
    )

    kinds = ", ".join(i18n.FINDINGS)
    sp = command("findings", cmd_findings, _("data-quality findings for the admin"))
    sp.add_argument("--kind", help=_("only this kind: {kinds}").format(kinds=kinds))
    sp.add_argument(
        "--format",
        choices=["table", "jsonl"],
        default="table",
        help=_("table for people (default) or jsonl for programs"),
    )

    sp = command("history", cmd_history, _("messages sent, waiting or failed"))
    sp.add_argument("--case", metavar="CODE", help=_("messages about this case"))
    sp.add_argument("--official", metavar="ID", help=_("messages to this official or address"))
    sp.add_argument(
        "--status",
        choices=["pending", "held", "sending", "sent", "failed", "dead"],
        metavar="S",
        help=_("only messages in this status: pending, held, sending, sent, failed, dead"),
    )
    sp.add_argument("--since", metavar="T", help=_("created at or after this instant"))
    sp.add_argument(
        "--format",
        choices=["table", "jsonl"],
        default="table",
        help=_("table for people (default) or jsonl for programs"),
    )

    off = _subcommand(sub, "officials", _("officials' Telegram links"))
    offsub = off.add_subparsers(dest="officials_command", required=True, metavar="COMMAND")
    lc = _subcommand(
        offsub, "link-code", _("a one-time code that links a Telegram chat to an official")
    )
    lc.add_argument("id", metavar="ID", help=_("the official's id"))
    lc.add_argument("--now", help=argparse.SUPPRESS)
    lc.set_defaults(func=cmd_officials_link_code)

    letters = _subcommand(sub, "letters", _("letters of a case: apology, control sheet"))
    lsub = letters.add_subparsers(dest="letters_command", required=True, metavar="COMMAND")
    ap = _subcommand(lsub, "apology", _("the apology letter draft for a case (DOCX)"))
    ap.add_argument("case", metavar="CASE_CODE", help=_("the case code"))
    ap.add_argument("--reason", metavar="TEXT", help=_("why the case is late, as the letter says"))
    ap.add_argument("--out", metavar="FILE.docx", help=_("write to this file"))
    ap.add_argument("--now", metavar="T", help=_("write the letter as if the time were T"))
    ap.set_defaults(func=_lazy("watchdog.letters.command", "cmd_apology"))
    cs = _subcommand(
        lsub, "control-sheet", _("the control sheet of a case: each handover and its result")
    )
    cs.add_argument("case", metavar="CASE_CODE", help=_("the case code"))
    cs.add_argument(
        "--format", choices=["docx", "html"], default="docx", help=_("docx (default) or html")
    )
    cs.add_argument("--out", metavar="FILE", help=_("write to this file"))
    cs.add_argument("--now", metavar="T", help=_("as if the time were T"))
    cs.set_defaults(func=_lazy("watchdog.letters.command", "cmd_control_sheet"))

    users = _subcommand(sub, "users", _("dashboard accounts"))
    usub = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    ua = _subcommand(
        usub, "add", _("create a dashboard account (the password is asked for, or read from stdin)")
    )
    ua.add_argument("login", metavar="LOGIN", help=_("the sign-in name"))
    ua.add_argument(
        "--role",
        required=True,
        choices=["official", "unit_head", "supervisor", "admin"],
        help=_("official: own cases; unit_head: the unit and below; supervisor, admin: all"),
    )
    ua.add_argument("--official", metavar="ID", help=_("the official this account belongs to"))
    ua.add_argument("--password-stdin", action="store_true", help=_("read the password from stdin"))
    ua.set_defaults(func=_lazy("watchdog.web.command", "cmd_users_add"))
    ul = _subcommand(usub, "list", _("the dashboard accounts, their role and state"))
    ul.set_defaults(func=_lazy("watchdog.web.command", "cmd_users_list"))
    up = _subcommand(usub, "password", _("set a new password (every session of the account ends)"))
    up.add_argument("login", metavar="LOGIN", help=_("the sign-in name"))
    up.add_argument("--password-stdin", action="store_true", help=_("read the password from stdin"))
    up.set_defaults(func=_lazy("watchdog.web.command", "cmd_users_password"))
    for name, text in (
        ("disable", _("disable an account (its sessions end at once)")),
        ("enable", _("enable a disabled account again")),
    ):
        ud = _subcommand(usub, name, text)
        ud.add_argument("login", metavar="LOGIN", help=_("the sign-in name"))
        ud.set_defaults(func=_lazy("watchdog.web.command", "cmd_users_" + name))

    sp = command(
        "send-test", cmd_send_test, _("one test message through each of an official's channels")
    )
    sp.add_argument("official", metavar="OFFICIAL", help=_("the official's id"))
    sp.add_argument("--now", help=argparse.SUPPRESS)

    sp = command("run", cmd_run, _("the daemon"))
    sp.add_argument("--once", action="store_true", help=_("one full pass, then exit"))
    sp.add_argument("--demo", action="store_true", help=_("load the built-in demo province cases"))
    sp.add_argument(
        "--now",
        metavar="T",
        help=_("start the clock at this instant (it runs on from there; with --once: stands)"),
    )

    db = sub.add_parser("db", help=_("database maintenance"), description=_("database maintenance"))
    dbsub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = dbsub.add_parser(
        "upgrade", help=_("apply schema migrations"), description=_("apply schema migrations")
    )
    up.set_defaults(func=cmd_db_upgrade)
    return p


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("expected a number, got {text}").format(text=repr(text))
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(
            _("expected a number >= 0, got {text}").format(text=repr(text))
        )
    return value


def _non_negative_int(text: str) -> int:
    value = _non_negative(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(
            _("expected a whole number, got {text}").format(text=repr(text))
        )
    return int(value)


def _lang_option(argv: Sequence[str]) -> str | None:
    """The value of `--lang` before the parser is built (its help is in that language); an
    invalid value is left for the parser to refuse."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        value = None
        if arg == "--lang" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--lang="):
            value = arg.partition("=")[2]
        if value in i18n.LANGUAGES:
            return value
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        i18n.use(_lang_option(argv))
    except i18n.LanguageError as e:  # a WATCHDOG_LANG we have no text for
        i18n.use(i18n.DEFAULT_LANGUAGE)
        _err(f"watchdog: {i18n.ENV_VAR}: {e}")
        return EXIT_USAGE
    try:
        args = build_parser().parse_args(argv)  # --help may meet a closed pipe too
        if args.lang:  # the engine's worker processes write findings in the same language
            os.environ[i18n.ENV_VAR] = i18n.use(args.lang)
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
    except UsageError as e:
        _err(f"watchdog: {e}")
        return EXIT_USAGE
    except BrokenPipeError:
        raise
    except Exception as e:
        return _failure(e)


def _failure(e: Exception) -> int:
    from watchdog.config.yamlsrc import ConfigError

    if isinstance(e, ConfigError):
        for problem in e.problems:
            _err(problem)
        return EXIT_USAGE

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
    why = " ".join(str(e).split()) or _("(no message)")
    _err(
        _("watchdog: unexpected error: {error} (set WATCHDOG_DEBUG=1 for the traceback)").format(
            error=f"{type(e).__name__}: {why}"
        )
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
