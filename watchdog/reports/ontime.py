"""`watchdog report`: on-time figures per unit, procedure or official (SPEC 9).

The `portal` metric is the table provinces publish: Tiếp nhận, Đúng hạn, Trong hạn, Trễ hạn and
Tỷ lệ đúng hạn = Đúng hạn / (Đúng hạn + Trễ hạn) x 100.

The `766` metric is indicator 2.1 of Quyết định 766/QĐ-TTg: (finished on or before the due +
open in time) / every case judged, with the wait for the applicant taken out of the time and a
case with more than one supplement request late (`outcome_766`, docs/reports.md).

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
from watchdog.store.reads import failed_received, report_counts, unplanned_received

UNKNOWN_NAME = "(không có trong cấu hình)"
UNASSIGNED = "(chưa phân công)"


class By(StrEnum):
    UNIT = "unit"
    PROCEDURE = "procedure"
    OFFICIAL = "official"


class Metric(StrEnum):
    PORTAL = "portal"
    QD766 = "766"


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

    @property
    def rate_766(self) -> Decimal | None:
        """100 x (on_time + in_progress) / received (SPEC 9: "/ received"), two decimals
        half-up; None when nothing was received. With the 766 metric the counts are
        `outcome_766`'s; cases withdrawn, stopped or without a due are in `received` only, so
        they lower the rate: they were received and not handled in time."""
        if not self.received:
            return None
        good = self.on_time + self.in_progress
        return (Decimal(100 * good) / self.received).quantize(Decimal("0.01"), ROUND_HALF_UP)


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
    metric: Metric = Metric.PORTAL

    def rate(self, counts: Counts) -> Decimal | None:
        """The rate of this report's metric for one row (or the total)."""
        return counts.rate_766 if self.metric is Metric.QD766 else counts.rate


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


def outcome_766(case: CaseRecord, tl: Timeline, as_of: datetime) -> Outcome:
    """QĐ 766/QĐ-TTg indicator 2.1: where a case stands at `as_of` (docs/reports.md).

    The due is the portal's (`tl.due`): the appointment, moved by the wait for the applicant
    (`pause`: the waiting working time added; `restart`: the full limit from the instant the
    documents were complete) and by one extension recorded in time. So the wait is taken out of
    the time. On top of `outcome_at`: a case with more than one supplement request on record is
    late whatever its dates; a case waiting at `as_of` for a request made before its due is
    open in time (its clock stands still); withdrawn, stopped and no-due cases are NONE (in
    `received`, outside the rate)."""
    due = tl.due
    if case.status in CLOSED_WITHOUT_RESULT or due is None:
        return Outcome.NONE
    if tl.supplements > 1:
        return Outcome.LATE
    if not is_open_at(case, as_of):
        return Outcome.ON_TIME if case.finished_at <= due else Outcome.LATE
    if tl.waiting_since is not None and tl.waiting_since <= as_of:
        return Outcome.IN_PROGRESS
    return Outcome.LATE if as_of > due else Outcome.IN_PROGRESS


OUTCOME_OF = {Metric.PORTAL: outcome_at, Metric.QD766: outcome_766}


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
    metric: Metric | str = Metric.PORTAL,
    unit: str | None = None,
) -> Report:
    """Counts of the cases received in [start, end] as they stand at `as_of` (SPEC 9).

    `as_of` defaults to the end of the period, or now when that is earlier (a report of the
    running quarter shows today's state, not a guess at its end); only cases received by
    `as_of` are counted. `now` (default: the system clock) also dates the findings of
    skipped cases. `metric` chooses how a case is judged (`outcome_at` or `outcome_766`) and
    which rate the rows show (`Report.rate`). With `unit`, only the cases of that unit and
    below are counted (the dashboard's trend of one unit)."""
    metric = Metric(metric)
    judge = OUTCOME_OF[metric]
    now = now or SystemClock().now()
    lo, hi = period_bounds(settings, start, end)
    as_of = as_of or min(hi, now)
    hi = min(hi, as_of)
    own: dict[str, Counts] = {}
    without_due = 0
    skipped: list[SkippedCase] = []
    key_of = {
        By.UNIT: lambda c: c.unit_code,
        By.PROCEDURE: lambda c: c.procedure_code,
        By.OFFICIAL: lambda c: c.assignee or "",
    }[by]
    # Cases changed since their plan (few while the daemon runs): computed here, as the engine
    # will; the others are counted by the database from their stored standing.
    units = settings.subtree(unit) if unit else None
    for case, events in unplanned_received(store, lo, hi):
        if units is not None and case.unit_code not in units:
            continue
        try:
            calendar = settings.calendar_for(case.unit_code)
            procedure = settings.procedures.get(case.procedure_code)
            tl = timeline(case, events, procedure, calendar)
            due = tl.due
            outcome = judge(case, tl, as_of)
        except Exception as e:  # one case that cannot be computed never stops the report
            skipped.append(skipped_case(case, e))
            continue
        if due is None and case.status not in CLOSED_WITHOUT_RESULT:
            without_due += 1
        own.setdefault(key_of(case), Counts()).add(outcome)
    if skipped:
        record_skipped(store, skipped, now)
    counted = report_counts(store, lo, hi, as_of, by.value, metric.value, units=units)
    for (key, outcome), n in counted.items():
        if outcome == "error":
            continue  # listed below, with the engine's finding
        counts = own.setdefault(key, Counts())
        counts.received += n
        if outcome == "no_due":
            without_due += n
        elif outcome != "none":
            setattr(counts, outcome, getattr(counts, outcome) + n)
    skipped += [
        SkippedCase(case, error)
        for case, error in failed_received(store, lo, hi)
        if units is None or case.unit_code in units
    ]
    rows = list(_rows(settings, by, own))
    total = Counts()
    for counts in own.values():
        total.merge(counts)
    report = Report(by, start, end, as_of, rows, total, without_due, skipped=skipped, metric=metric)
    if without_due:
        report.notes.append(
            _(
                "{n} case(s) have an unknown procedure and no appointment date: counted as "
                "received only"
            ).format(n=without_due)
        )
    report.notes.extend(_("{note}; not counted").format(note=s.note) for s in skipped)
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


RATE_COLUMN = {Metric.PORTAL: "on_time_rate", Metric.QD766: "rate_766"}


def header(by: By, metric: Metric = Metric.PORTAL) -> list[str]:
    """The CSV header: SPEC 9's for the portal metric; with 766 the same columns (holding
    outcome_766's counts) and the rate named `rate_766`."""
    first = {
        By.UNIT: ("unit_code", "unit_name"),
        By.PROCEDURE: ("procedure_code", "procedure_name"),
        By.OFFICIAL: ("official_id", "official_name"),
    }[by]
    return [*first, "received", "on_time", "in_progress", "late", RATE_COLUMN[metric]]


def _cells(key: str, name: str, c: Counts, rate: Decimal | None) -> list[str]:
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
    w.writerow(header(report.by, report.metric))
    for row in report.rows:
        w.writerow(_cells(row.key, row.name, row.counts, report.rate(row.counts)))
    w.writerow(_cells("TOTAL", "Tổng cộng", report.total, report.rate(report.total)))
    return out.getvalue()


TABLE_HEADER = (
    N_("Received"),
    N_("On time"),
    N_("In progress"),
    N_("Late"),
)
TABLE_RATE = {Metric.PORTAL: N_("On-time rate (%)"), Metric.QD766: N_("766 rate (%)")}
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
        value = report.rate(c)
        rate = "" if value is None else decimal(float(value), 2)
        counts = [str(c.received), str(c.on_time), str(c.in_progress), str(c.late)]
        return [key, _(TABLE_NAMES[name]) if name in TABLE_NAMES else name, *counts, rate]

    lines = [cells(r.key, r.name, r.counts) for r in report.rows]
    for cells_, row in zip(lines, report.rows, strict=True):
        cells_[1] = "  " * row.depth + cells_[1]
    lines.append(["", _("Total"), *cells("", "", report.total)[2:]])
    header = [_(t) for t in (*TABLE_FIRST[report.by], *TABLE_HEADER, TABLE_RATE[report.metric])]
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
    if report.metric is Metric.QD766:
        out.insert(
            1,
            _(
                "Decision 766/QĐ-TTg, indicator 2.1: (on time + in progress) / received; "
                "waiting for the applicant not counted; more than one supplement request is late"
            ),
        )
    for n, row in enumerate(table):
        text = "  ".join(
            pad(c, w, right=i >= 2) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        out.append(text.rstrip())
        if n == 0 or n == len(table) - 2:
            out.append(rule)
    return "\n".join(out) + "\n"


# ----- the provincial layout (XLSX and HTML) ---------------------------------------------------

ROMAN = (
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
)


def roman(n: int) -> str:
    out = []
    for value, letters in ROMAN:
        while n >= value:
            out.append(letters)
            n -= value
    return "".join(out)


LAYOUT_NAMES = {UNKNOWN_NAME: "không có trong cấu hình", UNASSIGNED: "chưa phân công"}


@dataclass(frozen=True)
class SheetRow:
    """One line of the Vietnamese table: its STT (`I`, `1`, `1.2`), name, indent level,
    whether it is a group row (bold, a roman numeral, its subtree's counts) and its figures."""

    number: str
    name: str
    level: int
    group: bool
    counts: Counts
    rate: Decimal | None
    key: str


def provincial_rows(report: Report, settings: Settings) -> list[SheetRow]:
    """The rows of the provincial table, in tree order (docs/reports.md, "Layout").

    By unit: the top units get roman numerals (I, II, ...) and are group rows counting their
    whole subtree; the units under each are numbered 1, 2, ... from 1 again in each group, and
    deeper ones 1.1, 1.2, 1.1.1 under their parent's number, indented. A tree with a single
    root (the province, whose figures are the total row) starts one level down: the root's
    children are the groups. When no top unit has units under it the list is flat (1, 2, ...)
    and has no group rows. Units not in the configuration come after the tree as top units.
    By procedure or official: 1, 2, ... and no group rows.
    """
    if report.by is not By.UNIT:
        out = []
        for n, row in enumerate(report.rows, 1):
            if row.name == UNASSIGNED:
                name = f"({LAYOUT_NAMES[row.name]})"
            elif row.name == UNKNOWN_NAME:
                name = f"{row.key} ({LAYOUT_NAMES[row.name]})"
            else:
                name = f"{row.name} ({row.key})" if report.by is By.PROCEDURE else row.name
            out.append(
                SheetRow(str(n), name, 0, False, row.counts, report.rate(row.counts), row.key)
            )
        return out
    roots = [u.code for depth, u in settings.unit_tree() if depth == 0]
    skip = roots[0] if len(roots) == 1 and settings.children.get(roots[0]) else None
    lines: list[tuple[int, ReportRow]] = []
    for row in report.rows:
        if row.key == skip:
            continue
        known = row.key in settings.units
        lines.append((row.depth - (1 if skip and known else 0) if known else 0, row))
    grouped = any(level > 0 for level, _row in lines)
    out = []
    groups = 0
    counters: list[int] = []  # the number of the current line at each level below its group
    for level, row in lines:
        name = f"{row.key} ({LAYOUT_NAMES[row.name]})" if row.name in LAYOUT_NAMES else row.name
        if not grouped:
            number, group = str(len(out) + 1), False
        elif level == 0:
            groups += 1
            counters = []
            number, group = roman(groups), True
        else:
            counters = counters[:level]
            counters += [0] * (level - len(counters))
            counters[-1] += 1
            number, group = ".".join(map(str, counters)), False
        out.append(
            SheetRow(number, name, level, group, row.counts, report.rate(row.counts), row.key)
        )
    return out


REPORT_TITLE = "BÁO CÁO TÌNH HÌNH GIẢI QUYẾT HỒ SƠ THỦ TỤC HÀNH CHÍNH"
NAME_HEADER = {
    By.UNIT: "Tên đơn vị",
    By.PROCEDURE: "Tên thủ tục hành chính",
    By.OFFICIAL: "Cán bộ, công chức",
}
RATE_HEADER = {
    Metric.PORTAL: "Tỷ lệ đúng hạn (%)",
    Metric.QD766: "Tỷ lệ đúng hạn theo QĐ 766 (%)",
}


def layout_header(report: Report) -> list[str]:
    """STT, Tên đơn vị, Tiếp nhận, Đúng hạn, Trong hạn, Trễ hạn, Tỷ lệ đúng hạn (%)."""
    return [
        "STT",
        NAME_HEADER[report.by],
        "Tiếp nhận",
        "Đúng hạn",
        "Trong hạn",
        "Trễ hạn",
        RATE_HEADER[report.metric],
    ]


def layout_lines(report: Report, tz: tzinfo) -> list[str]:
    """The lines under the title: the period, the as-of instant, and how the rate is read."""
    as_of = report.as_of.astimezone(tz)
    if as_of.time() == time(0):  # the end of a day, as a period's end is
        state = f"Số liệu tính đến hết ngày {as_of - timedelta(days=1):%d/%m/%Y}"
    else:
        state = f"Số liệu tính đến {as_of:%H:%M} ngày {as_of:%d/%m/%Y}"
    lines = [f"Từ ngày {report.start:%d/%m/%Y} đến ngày {report.end:%d/%m/%Y}", state]
    if report.metric is Metric.QD766:
        lines.append(
            "Chỉ số 2.1 Quyết định 766/QĐ-TTg: Tỷ lệ = (Đúng hạn + Trong hạn) / Tiếp nhận; "
            "không tính thời gian chờ bổ sung hồ sơ; hồ sơ yêu cầu bổ sung quá 1 lần tính là "
            "trễ hạn"
        )
    else:
        lines.append("Tỷ lệ đúng hạn = Đúng hạn / (Đúng hạn + Trễ hạn) × 100")
    return lines


def layout_notes(report: Report) -> list[str]:
    """Notes under the table, in Vietnamese."""
    notes = []
    if report.without_due:
        notes.append(
            f"{report.without_due} hồ sơ thuộc thủ tục không có trong cấu hình và không có ngày "
            "hẹn trả: chỉ tính vào cột Tiếp nhận."
        )
    if report.skipped:
        notes.append(
            f"{len(report.skipped)} hồ sơ không tính được hạn xử lý: không tính vào báo cáo "
            "(xem danh sách phát hiện dữ liệu)."
        )
    return notes


def report_filename(report: Report, ext: str) -> str:
    """`bao-cao-dung-han-2026-11.xlsx` for a calendar month, `-2026-Q4` for a quarter, else
    `-20261101-20261130`; `-766` after `dung-han` with that metric, `-thu-tuc` / `-can-bo`
    at the end by procedure or official."""
    start, end = report.start, report.end
    next_day = end + timedelta(days=1)
    whole_months = start.day == 1 and next_day.day == 1
    months = (next_day.year - start.year) * 12 + next_day.month - start.month
    if whole_months and months == 1:
        period = f"{start:%Y-%m}"
    elif whole_months and months == 3 and start.month % 3 == 1:
        period = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    else:
        period = f"{start:%Y%m%d}-{end:%Y%m%d}"
    metric = "-766" if report.metric is Metric.QD766 else ""
    by = {By.UNIT: "", By.PROCEDURE: "-thu-tuc", By.OFFICIAL: "-can-bo"}[report.by]
    return f"bao-cao-dung-han{metric}-{period}{by}.{ext}"
