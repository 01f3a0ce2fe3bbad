"""`watchdog report`: on-time figures per unit, procedure or official (SPEC 9).

The `portal` metric is the table provinces publish: Tiếp nhận, Đúng hạn, Trong hạn, Trễ hạn and
Tỷ lệ đúng hạn = Đúng hạn / (Đúng hạn + Trễ hạn) x 100.

A case whose due cannot be computed (an instant past the calendar's years, any error of its
timeline) is left out of every count, recorded as an `evaluation_error` finding and named in
`Report.notes`; it never stops the report.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from watchdog.clock import SystemClock
from watchdog.config import Settings
from watchdog.domain import CLOSED_WITHOUT_RESULT
from watchdog.engine.deadline import CaseRecord, Timeline, is_open_at, timeline
from watchdog.i18n import N_, _, decimal
from watchdog.reports.board import SkippedCase, record_skipped, skipped_case
from watchdog.reports.table import pad, width
from watchdog.store import Store
from watchdog.store.cases import cases_received_between

UNKNOWN_NAME = "(không có trong cấu hình)"
UNASSIGNED = "(chưa phân công)"


class By(StrEnum):
    UNIT = "unit"
    PROCEDURE = "procedure"
    OFFICIAL = "official"


class Outcome(StrEnum):
    ON_TIME = "on_time"
    IN_PROGRESS = "in_progress"
    LATE = "late"
    NONE = "none"  # counted as received only: withdrawn, stopped, or nothing to judge it by


@dataclass
class Counts:
    received: int = 0
    on_time: int = 0
    in_progress: int = 0
    late: int = 0

    def add(self, outcome: Outcome) -> None:
        self.received += 1
        if outcome is not Outcome.NONE:
            setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def merge(self, other: Counts) -> None:
        self.received += other.received
        self.on_time += other.on_time
        self.in_progress += other.in_progress
        self.late += other.late

    @property
    def rate(self) -> Decimal | None:
        """100 x on_time / (on_time + late), two decimals half-up; None when nothing to judge."""
        judged = self.on_time + self.late
        if not judged:
            return None
        return (Decimal(100 * self.on_time) / judged).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass
class ReportRow:
    key: str
    name: str
    depth: int
    counts: Counts


@dataclass
class Report:
    by: By
    start: date
    end: date
    as_of: datetime
    rows: list[ReportRow]
    total: Counts
    without_due: int = 0  # cases of unknown procedures without an appointment: received only
    notes: list[str] = field(default_factory=list)
    skipped: list[SkippedCase] = field(default_factory=list)  # not counted: see the notes


def outcome_at(case: CaseRecord, tl: Timeline, as_of: datetime) -> Outcome:
    """Portal metric: where a case stands at `as_of`. A case waiting for the applicant is in
    progress only when the wait began before its due; a request made after the due stops
    nothing, so such a case is late (SPEC 4)."""
    due = tl.due
    if case.status in CLOSED_WITHOUT_RESULT or due is None:
        return Outcome.NONE
    if not is_open_at(case, as_of):
        return Outcome.ON_TIME if case.finished_at <= due else Outcome.LATE
    if tl.waiting_since is not None and tl.waiting_since <= as_of:
        return Outcome.IN_PROGRESS
    return Outcome.LATE if as_of > due else Outcome.IN_PROGRESS


def period_bounds(settings: Settings, start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the default calendar's zone."""
    tz = settings.default_calendar.tz
    return (
        datetime.combine(start, time(0), tz),
        datetime.combine(end + timedelta(days=1), time(0), tz),
    )


def build_report(
    store: Store,
    settings: Settings,
    start: date,
    end: date,
    *,
    as_of: datetime | None = None,
    by: By = By.UNIT,
    now: datetime | None = None,
) -> Report:
    """Counts of the cases received in [start, end] as they stand at `as_of` (SPEC 9).

    `as_of` defaults to the end of the period, or now when that is earlier (a report of the
    running quarter shows today's state, not a guess at its end); only cases received by
    `as_of` are counted. `now` (default: the system clock) also dates the findings of
    skipped cases."""
    now = now or SystemClock().now()
    lo, hi = period_bounds(settings, start, end)
    as_of = as_of or min(hi, now)
    hi = min(hi, as_of)
    own: dict[str, Counts] = {}
    without_due = 0
    skipped: list[SkippedCase] = []
    for case, events in cases_received_between(store, lo, hi):
        try:
            calendar = settings.calendar_for(case.unit_code)
            procedure = settings.procedures.get(case.procedure_code)
            tl = timeline(case, events, procedure, calendar)
            due = tl.due
            outcome = outcome_at(case, tl, as_of)
        except Exception as e:  # one case that cannot be computed never stops the report
            skipped.append(skipped_case(case, e))
            continue
        if due is None and case.status not in CLOSED_WITHOUT_RESULT:
            without_due += 1
        key = {
            By.UNIT: case.unit_code,
            By.PROCEDURE: case.procedure_code,
            By.OFFICIAL: case.assignee or "",
        }[by]
        own.setdefault(key, Counts()).add(outcome)
    rows = list(_rows(settings, by, own))
    total = Counts()
    for counts in own.values():
        total.merge(counts)
    report = Report(by, start, end, as_of, rows, total, without_due, skipped=skipped)
    if without_due:
        report.notes.append(
            f"{without_due} case(s) have an unknown procedure and no appointment date: "
            "counted as received only"
        )
    if skipped:
        record_skipped(store, skipped, now)
        report.notes.extend(f"{s.note}; not counted" for s in skipped)
    return report


def _rows(settings: Settings, by: By, own: dict[str, Counts]) -> Iterator[ReportRow]:
    if by is By.UNIT:
        for depth, unit in settings.unit_tree():
            counts = Counts()
            for code in settings.subtree(unit.code):
                if code in own:
                    counts.merge(own[code])
            yield ReportRow(unit.code, unit.name, depth, counts)
        known = settings.units
    elif by is By.PROCEDURE:
        for p in settings.config.procedures:
            yield ReportRow(p.code, p.name, 0, own.get(p.code, Counts()))
        known = settings.procedures
    else:
        for o in settings.config.officials:
            if o.id in own:
                yield ReportRow(o.id, o.name, 0, own[o.id])
        known = settings.officials
    for key in sorted(k for k in own if k not in known):
        yield ReportRow(key, UNASSIGNED if key == "" else UNKNOWN_NAME, 0, own[key])


def header(by: By) -> list[str]:
    first = {
        By.UNIT: ("unit_code", "unit_name"),
        By.PROCEDURE: ("procedure_code", "procedure_name"),
        By.OFFICIAL: ("official_id", "official_name"),
    }[by]
    return [*first, "received", "on_time", "in_progress", "late", "on_time_rate"]


def _cells(key: str, name: str, c: Counts) -> list[str]:
    rate = c.rate
    return [
        key,
        name,
        str(c.received),
        str(c.on_time),
        str(c.in_progress),
        str(c.late),
        "" if rate is None else str(rate),
    ]


def to_csv(report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header(report.by))
    for row in report.rows:
        w.writerow(_cells(row.key, row.name, row.counts))
    w.writerow(_cells("TOTAL", "Tổng cộng", report.total))
    return out.getvalue()


TABLE_HEADER = (
    N_("Received"),
    N_("On time"),
    N_("In progress"),
    N_("Late"),
    N_("On-time rate (%)"),
)
TABLE_FIRST = {
    By.UNIT: (N_("Unit code"), N_("Unit")),
    By.PROCEDURE: (N_("Procedure code"), N_("Procedure")),
    By.OFFICIAL: (N_("Official ID"), N_("Name")),
}
TABLE_NAMES = {UNKNOWN_NAME: N_("(not in the configuration)"), UNASSIGNED: N_("(not assigned)")}


def to_table(report: Report, tz: tzinfo | None = None) -> str:
    """Aligned text for a terminal in the current language: a title line with the period and
    the as-of instant (in `tz`, default the as-of's own zone), units indented under their
    parent, decimals as people write them (comma in Vietnamese)."""

    def cells(key: str, name: str, c: Counts) -> list[str]:
        rate = "" if c.rate is None else decimal(float(c.rate), 2)
        counts = [str(c.received), str(c.on_time), str(c.in_progress), str(c.late)]
        return [key, _(TABLE_NAMES[name]) if name in TABLE_NAMES else name, *counts, rate]

    lines = [cells(r.key, r.name, r.counts) for r in report.rows]
    for cells_, row in zip(lines, report.rows, strict=True):
        cells_[1] = "  " * row.depth + cells_[1]
    lines.append(["", _("Total"), *cells("", "", report.total)[2:]])
    header = [_(t) for t in (*TABLE_FIRST[report.by], *TABLE_HEADER)]
    table = [header, *lines]
    widths = [max(width(r[i]) for r in table) for i in range(len(header))]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    as_of = report.as_of.astimezone(tz or report.as_of.tzinfo)
    out = [
        _("Cases received from {start} to {end}, as they stand at {as_of}").format(
            start=report.start.strftime("%d/%m/%Y"),
            end=report.end.strftime("%d/%m/%Y"),
            as_of=as_of.strftime("%d/%m/%Y %H:%M"),
        ),
        "",
    ]
    for n, row in enumerate(table):
        text = "  ".join(
            pad(c, w, right=i >= 2) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        out.append(text.rstrip())
        if n == 0 or n == len(table) - 2:
            out.append(rule)
    return "\n".join(out) + "\n"
