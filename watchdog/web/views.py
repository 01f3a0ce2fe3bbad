"""What each dashboard page shows, as plain values for its template. Every function here runs
in a worker thread (they read the database) and takes the account's Scope: what it may not see
is never read into a page.

Reads go through the product's own functions: `reports.board.board` (open cases and their
state), `reports.ontime.build_report` (on-time figures), `store.outbox.history` (messages),
and `store.dashboard` for the one case and the findings in scope.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from watchdog.config import Settings
from watchdog.domain import CLOSED_WITHOUT_RESULT, STATUS_LABELS, CaseRecord
from watchdog.engine.deadline import CaseState, State, open_state, result_of, timeline
from watchdog.letters.control import control_sheet
from watchdog.reports.board import BoardLine, board, board_counts_by
from watchdog.reports.ontime import By, Counts, Report, build_report
from watchdog.store import Store
from watchdog.store.dashboard import case_with_events, open_findings_in_scope
from watchdog.store.outbox import history
from watchdog.timefmt import show, show_working
from watchdog.web.auth import Scope

PAGE_SIZE = 50
TREND_MONTHS = 12
STATES = ("overdue", "due_soon", "on_track", "waiting", "no_due")


class NotVisible(Exception):
    """Not there, or not for this account: both answer 404, so that a URL tells nothing about
    cases and units outside the account's scope."""


def official_name(settings: Settings, official_id: str | None) -> str:
    return settings.official_name(official_id) or ""


def unit_name(settings: Settings, code: str | None) -> str:
    if not code:
        return ""
    found = settings.units.get(code)
    return found.name if found else code


def _remaining(status: CaseState, settings: Settings, unit_code: str) -> str:
    if status.remaining is None:
        return ""
    text = show_working(abs(status.remaining), settings.calendar_for(unit_code).day_seconds)
    if status.state is State.WAITING:
        return f"dừng ở {text}" if status.remaining >= 0 else f"dừng, quá {text}"
    return f"còn {text}" if status.remaining >= 0 else f"quá {text}"


def _line(line: BoardLine, settings: Settings, scope: Scope) -> dict[str, Any]:
    c, s = line.case, line.status
    tz = settings.calendar_for(c.unit_code).tz
    procedure = settings.procedures.get(c.procedure_code)
    return {
        "code": c.case_code,
        "procedure_code": c.procedure_code,
        "procedure": procedure.name if procedure else c.procedure_code,
        "unit_code": c.unit_code,
        "unit": unit_name(settings, c.unit_code),
        "unit_link": scope.sees_unit(c.unit_code),
        "assignee": official_name(settings, c.assignee),
        "received": show(c.received_at, tz),
        "due": show(s.due, tz),
        "remaining": _remaining(s, settings, c.unit_code),
        "state": s.state.value,
    }


# ----- the board of open cases ------------------------------------------------------------------


@dataclass
class Filters:
    unit: str | None = None
    official: str | None = None
    state: str | None = None
    page: int = 1


def _board_args(scope: Scope, settings: Settings, f: Filters) -> dict[str, Any] | None:
    """The board's filters for this account; None when the filters ask for something outside
    its scope (that shows nothing rather than more)."""
    if f.unit is not None and (f.unit not in settings.units or not _unit_allowed(scope, f.unit)):
        return None
    official = f.official
    if scope.own_cases_only:
        if official not in (None, scope.official) or not scope.official:
            return None
        official = scope.official
    unit = f.unit
    if unit is None and scope.units is not None:
        if scope.root is None:
            return None
        unit = scope.root
    return {"unit": unit, "official": official}


def _unit_allowed(scope: Scope, code: str) -> bool:
    return scope.units is None or code in scope.units


def read_board(
    store: Store,
    settings: Settings,
    now: datetime,
    args: dict[str, Any],
    state: str | None,
    limit: int | None,
    offset: int = 0,
) -> tuple[list[BoardLine], dict[str, int]]:
    """One page of the board (all of it without `limit`, none with 0) in `state` (all states
    without), and the counts of every state, in one read."""
    lines = board(store, settings, now, **args, limit=limit, offset=offset)
    counts = {s: lines.by_state.get(s, 0) for s in STATES}
    if state is not None and limit != 0:
        lines = board(store, settings, now, **args, state=state, limit=limit, offset=offset)
    return list(lines), counts


def board_page(
    store: Store, settings: Settings, scope: Scope, now: datetime, f: Filters
) -> dict[str, Any]:
    state = f.state if f.state in STATES else None
    args = _board_args(scope, settings, f)
    counts = dict.fromkeys(STATES, 0)
    shown: list[BoardLine] = []
    page = max(1, f.page)
    if args is not None:
        # one read gives the page and the counts of every state; a page past the end is read
        # again as the last one
        shown, counts = read_board(
            store, settings, now, args, state, PAGE_SIZE, (page - 1) * PAGE_SIZE
        )
        total = counts[state] if state else sum(counts.values())
        last = max(1, math.ceil(total / PAGE_SIZE))
        if page > last:
            page = last
            shown, counts = read_board(
                store, settings, now, args, state, PAGE_SIZE, (page - 1) * PAGE_SIZE
            )
    total = counts[state] if state else sum(counts.values())
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return {
        "lines": [_line(x, settings, scope) for x in shown],
        "counts": counts,
        "total": total,
        "page": page,
        "pages": pages,
        "first": (page - 1) * PAGE_SIZE + 1 if shown else 0,
        "last": (page - 1) * PAGE_SIZE + len(shown),
        "filters": replace(f, state=state, page=page),
        "units": scope.visible_units(settings),
        "officials": _officials_in_scope(settings, scope, f.unit if args else None),
    }


OFFICIALS_LISTED = 300  # a longer list of officials is not offered: choose a unit first


def _officials_in_scope(
    settings: Settings, scope: Scope, unit: str | None = None
) -> list[tuple[str, str]]:
    """The officials the filter offers: those of the chosen unit and below, else of the
    account's scope; none beyond OFFICIALS_LISTED (a country's 20,000 made the page 1.5 MB)."""
    if scope.own_cases_only:
        return []
    units = settings.subtree(unit) if unit else scope.units
    found = [(o.id, o.name) for o in settings.config.officials if units is None or o.unit in units]
    return found if len(found) <= OFFICIALS_LISTED else []


# ----- units ------------------------------------------------------------------------------------


def units_page(store: Store, settings: Settings, scope: Scope, now: datetime) -> dict[str, Any]:
    """The units in scope, in tree order, with their open and overdue cases (own and below):
    one grouped count by unit, summed up the tree."""
    own = board_counts_by(store, settings, now, "unit")
    rows = []
    for depth, code, name in scope.visible_units(settings):
        subtree = settings.subtree(code)
        counts = [n for (unit, _s), n in own.items() if unit in subtree]
        late = [n for (unit, s), n in own.items() if unit in subtree and s == "overdue"]
        rows.append(
            {"depth": depth, "code": code, "name": name, "open": sum(counts), "late": sum(late)}
        )
    return {"units": rows}


@dataclass
class TrendCache:
    """Monthly reports of past months change little: kept for `ttl` of the app's clock."""

    ttl: timedelta = timedelta(minutes=10)
    reports: dict[tuple[int, date, str], tuple[datetime, Report]] = field(default_factory=dict)

    def report(
        self, store: Store, settings: Settings, start: date, end: date, now: datetime, unit: str
    ):
        key = (id(settings), start, unit)
        found = self.reports.get(key)
        if found is not None and found[0] > now - self.ttl:
            return found[1]
        report = build_report(store, settings, start, end, now=now, by=By.UNIT, unit=unit)
        if end < settings.default_calendar.local(now).date():
            if len(self.reports) > 64:
                self.reports.clear()
            self.reports[key] = (now, report)
        return report


def _months(today: date, n: int) -> list[tuple[date, date]]:
    out = []
    y, m = today.year, today.month
    for _ in range(n):
        first = date(y, m, 1)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        out.append((first, min(nxt - timedelta(days=1), today)))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def trend(
    store: Store, settings: Settings, code: str, now: datetime, cache: TrendCache
) -> list[dict[str, Any]]:
    today = settings.default_calendar.local(now).date()
    points = []
    for start, end in _months(today, TREND_MONTHS):
        report = cache.report(store, settings, start, end, now, code)
        counts = next((r.counts for r in report.rows if r.key == code), Counts())
        rate = counts.rate
        points.append(
            {
                "label": f"{start.month:02d}/{start.year % 100:02d}",
                "month": f"{start.month:02d}/{start.year}",
                "received": counts.received,
                "on_time": counts.on_time,
                "late": counts.late,
                "rate": None if rate is None else float(rate),
                "rate_text": "" if rate is None else f"{rate:.2f}".replace(".", ","),
            }
        )
    return points


CHART_W, CHART_H = 640, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 10, 20, 40


def chart(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Geometry of the trend chart (bars of the on-time rate, 0-100 %), drawn as SVG by the
    template: the browser needs no script and the page prints as it shows."""
    plot_w = CHART_W - _LEFT - _RIGHT
    plot_h = CHART_H - _TOP - _BOTTOM
    slot = plot_w / max(1, len(points))
    bars = []
    for i, p in enumerate(points):
        x = _LEFT + i * slot
        rate = p["rate"]
        h = 0.0 if rate is None else plot_h * rate / 100
        level = (
            "none" if rate is None else "good" if rate >= 95 else "fair" if rate >= 80 else "poor"
        )
        bars.append(
            p
            | {
                "x": round(x + slot * 0.15, 1),
                "w": round(slot * 0.7, 1),
                "y": round(_TOP + plot_h - h, 1),
                "h": round(h, 1),
                "cx": round(x + slot / 2, 1),
                "level": level,
            }
        )
    grid = [
        {"y": round(_TOP + plot_h - plot_h * v / 100, 1), "label": f"{v}%"}
        for v in (0, 25, 50, 75, 100)
    ]
    return {
        "width": CHART_W,
        "height": CHART_H,
        "bars": bars,
        "grid": grid,
        "left": _LEFT,
        "right": CHART_W - _RIGHT,
        "base": _TOP + plot_h,
        "label_y": CHART_H - _BOTTOM + 16,
    }


def unit_page(
    store: Store, settings: Settings, scope: Scope, now: datetime, code: str, cache: TrendCache
) -> dict[str, Any]:
    unit = settings.units.get(code)
    if unit is None or not scope.sees_unit(code):
        raise NotVisible(code)
    by_official = board_counts_by(store, settings, now, "assignee", unit=code)
    counts = dict.fromkeys(STATES, 0)
    backlog: dict[str, dict[str, Any]] = {}
    for (who, state), n in by_official.items():
        counts[state] += n
        row = backlog.setdefault(
            who,
            {
                "id": who,
                "name": official_name(settings, who) or "(chưa phân công)",
                "open": 0,
                "overdue": 0,
                "due_soon": 0,
                "waiting": 0,
            },
        )
        row["open"] += n
        if state in row:
            row[state] += n
    rows = sorted(backlog.values(), key=lambda r: (-r["overdue"], -r["open"], r["name"]))
    points = trend(store, settings, code, now, cache)
    parent = unit.parent if unit.parent and scope.sees_unit(unit.parent) else None
    return {
        "unit": {"code": unit.code, "name": unit.name},
        "parent": {"code": parent, "name": unit_name(settings, parent)} if parent else None,
        "children": [
            {"code": c, "name": unit_name(settings, c)} for c in settings.children.get(code, [])
        ],
        "backlog": rows,
        "open": sum(counts.values()),
        "overdue": counts["overdue"],
        "chart": chart(points),
        "points": points,
    }


# ----- one case ---------------------------------------------------------------------------------

# The shipped rules' stages (rules/default.yaml); a stage of an admin's own rules shows its id.
STAGE_NAMES = {
    "due_soon": "Sắp đến hạn",
    "due_today": "Đến hạn hôm nay",
    "apology_needed": "Cần phiếu xin lỗi",
    "overdue": "Quá hạn",
    "overdue_agency": "Quá hạn (báo thủ trưởng)",
    "overdue_supervisor": "Quá hạn (báo cơ quan giám sát)",
    "step_overdue": "Bước xử lý quá hạn",
    "idle": "Không có xử lý",
    "waiting_too_long": "Chờ bổ sung quá lâu",
}
EVENT_DATA = {"step": "bước", "handler": "người xử lý", "assignee": "cán bộ", "reason": "lý do"}


def case_page(
    store: Store, settings: Settings, scope: Scope, now: datetime, code: str
) -> dict[str, Any]:
    found = case_with_events(store, code)
    if found is None or not scope.sees_case(found[0]):
        raise NotVisible(code)
    case, events = found
    calendar = settings.calendar_for(case.unit_code)
    tz = calendar.tz
    procedure = settings.procedures.get(case.procedure_code)
    tl = timeline(case, events, procedure, calendar)
    state = open_state(tl, calendar, now) if case.is_open else None
    outcome = None
    if (
        not case.is_open
        and case.finished_at
        and tl.due
        and case.status not in CLOSED_WITHOUT_RESULT
    ):
        outcome = result_of(case.finished_at, tl.due, calendar).value
    steps, sheet_result = _steps(case, events, settings, now)
    messages = [
        {
            "id": m.id,
            "created": show(m.created_at, tz),
            "sent": show(m.sent_at, tz),
            "recipient": official_name(settings, m.recipient),
            "channel": m.channel,
            "stages": ", ".join(
                dict.fromkeys(
                    STAGE_NAMES.get(s.rpartition("/")[2], s.rpartition("/")[2]) for s in m.stages
                )
            ),
            "subject": m.subject or "",
            "status": m.status,
            "attempts": m.attempts,
            "error": m.last_error or "",
            "acknowledged": show(m.acknowledged_at, tz),
            "kind": m.kind,
        }
        for m in history(store, case_code=case.case_code)
    ]
    findings, _ = open_findings_in_scope(store, case_code=case.case_code, limit=100)
    return {
        "case": _case_fields(case, settings, scope, tz),
        "procedure": procedure.name if procedure else None,
        "state": state.state.value if state else None,
        "remaining": _remaining(state, settings, case.unit_code) if state else "",
        "outcome": outcome,
        "due": show(tl.due, tz),
        "computed_due": show(tl.computed_due, tz),
        "source_due": show(tl.source_due, tz),
        "extensions": tl.extensions,
        "supplements": tl.supplements,
        "events": [
            {
                "at": show(e.at, tz),
                "kind": e.kind,
                "details": _event_details(e.data, settings, tz),
            }
            for e in events
        ],
        "steps": steps,
        "sheet_result": sheet_result,
        "messages": messages,
        "findings": [
            {"kind": f.kind, "detail": f.detail, "found": show(f.found_at, tz)} for f in findings
        ],
    }


def _case_fields(case: CaseRecord, settings: Settings, scope: Scope, tz) -> dict[str, Any]:
    return {
        "code": case.case_code,
        "procedure_code": case.procedure_code,
        "unit_code": case.unit_code,
        "unit": unit_name(settings, case.unit_code),
        "unit_link": scope.sees_unit(case.unit_code),
        "status": STATUS_LABELS.get(case.status, str(int(case.status))),
        "received": show(case.received_at, tz),
        "finished": show(case.finished_at, tz),
        "returned": show(case.returned_at, tz),
        "assignee": official_name(settings, case.assignee),
        "step_handler": official_name(settings, case.step_handler),
        "current_step": case.current_step or "",
        "applicant": case.applicant_name or "",
        "channel": {"direct": "Trực tiếp", "online": "Trực tuyến", "postal": "Bưu chính"}.get(
            case.submission_channel or "", case.submission_channel or ""
        ),
    }


def _event_details(data: Any, settings: Settings, tz) -> str:
    parts = []
    for key, value in (data or {}).items():
        if key in ("new_due", "previous_due"):
            with contextlib.suppress(ValueError):
                value = show(datetime.fromisoformat(str(value)), tz)
            label = "hẹn mới" if key == "new_due" else "hẹn cũ"
        elif key in ("handler", "assignee"):
            value = official_name(settings, str(value))
            label = EVENT_DATA[key]
        else:
            label = EVENT_DATA.get(key, key)
        parts.append(f"{label}: {value}")
    return "; ".join(parts)


TONES = {  # colour of a step's result: the board's states
    "early": "on_track",
    "on_time": "on_track",
    "in_time": "on_track",
    "late": "overdue",
    "overdue": "overdue",
}


def _steps(
    case: CaseRecord, events: Any, settings: Settings, now: datetime
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The control sheet's rows (each handover, its handler, times and result) and the
    case's own result, as `watchdog letters control-sheet` gives them."""
    tz = settings.calendar_for(case.unit_code).tz
    sheet = control_sheet(case, events, settings, now=now)
    rows = [
        {
            "name": r.step_name,
            "handler": r.handler_name or r.handler or "",
            "started": show(r.received_at, tz),
            "due": show(r.due_at, tz),
            "finished": show(r.finished_at, tz),
            "result": r.result_label,
            "tone": TONES.get(r.status, "waiting"),
        }
        for r in sheet.rows
    ]
    return rows, {"label": sheet.result_label, "tone": TONES.get(sheet.status, "waiting")}


# ----- findings ---------------------------------------------------------------------------------


def findings_page(
    store: Store, settings: Settings, scope: Scope, now: datetime, page: int
) -> dict[str, Any]:
    units = None if scope.units is None else scope.units
    official = scope.official or "" if scope.own_cases_only else None
    page = max(1, page)
    rows, total = open_findings_in_scope(
        store,
        units=units,
        official=official,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    tz = settings.default_calendar.tz
    return {
        "findings": [
            {
                "kind": r.kind,
                "subject": r.subject,
                "detail": r.detail,
                "found": show(r.found_at, tz),
                "case_code": r.case_code,
                "unit": unit_name(settings, r.unit_code),
            }
            for r in rows
        ],
        "total": total,
        "page": page,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
    }


# ----- the on-time report -----------------------------------------------------------------------


def scoped_report(
    store: Store,
    settings: Settings,
    scope: Scope,
    now: datetime,
    start: date,
    end: date,
    by: By,
) -> Report:
    """The on-time report as this account may see it: a unit head gets its units' rows, the
    total being its own unit's (which counts its subtree); everyone else above an official
    gets the whole table."""
    if scope.units is not None:
        by = By.UNIT
    report = build_report(store, settings, start, end, by=by, now=now)
    if scope.units is None:
        return report
    top = next((r.depth for r in report.rows if r.key == scope.root), 0)
    rows = [replace(r, depth=r.depth - top) for r in report.rows if r.key in scope.units]
    total = next((r.counts for r in rows if r.key == scope.root), Counts())
    return replace(report, rows=rows, total=total, notes=[], skipped=[])
