"""Scheduled on-time reports (`reports.scheduled`): when a month or a quarter has ended, each
recipient gets one e-mail with the period's report as an XLSX attachment (docs/reports.md).

The report is due on the first working day after the period (default calendar), at the
report's `at`. Like digests, a send missed while no daemon ran is still made when it is less
than `GRACE` late, never later; every (report, period, recipient) has its dedup key in the
outbox, so restarts, replicas and repeated runs write it exactly once. Messages carry only
what identifies the report (`content`); the letters side renders the e-mail at send time and
attaches `report_attachment(...)`, built then from the store.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from watchdog.config import Settings
from watchdog.config.reportsconf import SUPERVISORS, ScheduledReportConfig, is_email
from watchdog.reports.ontime import By, Metric, build_report, report_filename, roman
from watchdog.store import Store
from watchdog.store.outbox import NewMessage, dedup_keys_present, enqueue_message

log = logging.getLogger(__name__)

GRACE = timedelta(hours=2)
KIND = "report"

_warned: set[str] = set()  # periods of reports nobody could get, logged once per process


def last_period(every: str, today: date) -> tuple[date, date]:
    """The last whole month or quarter that ended before `today`: (first day, last day)."""
    if every == "month":
        first = today.replace(day=1)
    elif every == "quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    else:
        raise ValueError(f"every: expected month or quarter, got {every!r}")
    end = first - timedelta(days=1)
    start = end.replace(day=1) if every == "month" else date(end.year, end.month - 2, 1)
    return start, end


def send_at(settings: Settings, report: ScheduledReportConfig, end: date) -> datetime:
    """`at` on the first working day after the period's last day."""
    calendar = settings.default_calendar
    return datetime.combine(calendar.next_working_day(end), report.at, calendar.tz)


def recipients(settings: Settings, report: ScheduledReportConfig) -> list[tuple[str, str | None]]:
    """(recipient, e-mail address or None) in the order given; `[]` and `supervisors` stand for
    the `supervisors`; each recipient once."""
    names: list[str] = []
    for who in report.to or (SUPERVISORS,):
        names.extend(settings.config.supervisors if who == SUPERVISORS else (who,))
    out: dict[str, str | None] = {}
    for who in names:
        official = settings.officials.get(who)
        if official is not None:
            out.setdefault(who, str(official.email) if official.email else None)
        else:
            out.setdefault(who, who if is_email(who) else None)
    return list(out.items())


def channel(settings: Settings) -> str | None:
    """E-mail; without an SMTP server configured, the `file` channel (which writes the same
    e-mail as an .eml: the demo and test set-ups); None when neither is configured."""
    channels = settings.channels
    if channels.email is not None:
        return "email"
    if channels.file is not None:
        return "file"
    return None


def dedup_key(name: str, start: date, end: date, recipient: str) -> str:
    return f"report:{name}:{start.isoformat()}:{end.isoformat()}:{recipient}"


def enqueue_due_reports(store: Store, settings: Settings, now: datetime) -> int:
    """Write the messages of the scheduled reports due in (now - GRACE, now] not written yet;
    returns how many were written."""
    calendar = settings.default_calendar
    via = channel(settings)
    written = 0
    for report in settings.config.reports.scheduled:
        periods = {last_period(report.every, calendar.local(t).date()) for t in (now - GRACE, now)}
        for start, end in sorted(periods):
            at = send_at(settings, report, end)
            if not now - GRACE < at <= now:
                continue
            targets, skipped = [], []
            for who, address in recipients(settings, report):
                if address is None or via is None:
                    skipped.append(who)
                else:
                    targets.append((who, address, dedup_key(report.name, start, end, who)))
            present = dedup_keys_present(store, [t[2] for t in targets])
            new = 0
            for who, address, key in targets:
                if key in present:
                    continue
                message = NewMessage(
                    kind=KIND,
                    recipient=who,
                    channel=via,
                    address=address,
                    content={
                        "name": report.name,
                        "every": report.every,
                        "start": start.isoformat(),
                        "end": end.isoformat(),
                        "by": report.by,
                        "metric": report.metric,
                    },
                    stages=(f"report/{report.name}",),
                    dedup_key=key,
                )
                new += enqueue_message(store, message, now, now) is not None
            written += new
            # said when the others' messages are written (once), or when nobody can get it
            # (once per process: the job looks every minute)
            quiet = f"{report.name}:{start.isoformat()}"
            if skipped and (new or (not targets and quiet not in _warned)):
                _warned.add(quiet)
                log.warning(
                    "report %s of %s to %s: %s skipped (%s)",
                    report.name,
                    start.isoformat(),
                    end.isoformat(),
                    ", ".join(skipped),
                    "no e-mail address" if via else "no email or file channel",
                )
    return written


def report_attachment(
    content: dict, settings: Settings, store: Store, now: datetime
) -> tuple[str, bytes]:
    """The XLSX of a scheduled report's message: its file name (`bao-cao-dung-han-2026-11.xlsx`,
    `bao-cao-dung-han-2026-Q4.xlsx`, `bao-cao-dung-han-766-...` with the 766 metric) and bytes.
    The figures are taken at the end of the period (SPEC 9's default as-of)."""
    from watchdog.reports.xlsx import to_xlsx

    report = build_report(
        store,
        settings,
        date.fromisoformat(content["start"]),
        date.fromisoformat(content["end"]),
        by=By(content.get("by", "unit")),
        metric=Metric(content.get("metric", "portal")),
        now=now,
    )
    return report_filename(report, "xlsx"), to_xlsx(report, settings)


def period_label(content: dict) -> str:
    """How the period reads in a subject line: `tháng 11/2026`, `quý IV/2026`, or the dates."""
    start, end = date.fromisoformat(content["start"]), date.fromisoformat(content["end"])
    if content.get("every") == "month":
        return f"tháng {start.month:02d}/{start.year}"
    if content.get("every") == "quarter":
        return f"quý {roman((start.month - 1) // 3 + 1)}/{start.year}"
    return f"từ {start:%d/%m/%Y} đến {end:%d/%m/%Y}"
