"""`watchdog cases`: the board of open cases, most urgent first."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchdog.config import Settings
from watchdog.engine.deadline import CaseRecord, CaseState, State, open_state, timeline
from watchdog.store import Store
from watchdog.store.cases import open_cases
from watchdog.timefmt import iso, show, show_working


@dataclass(frozen=True)
class BoardLine:
    case: CaseRecord
    status: CaseState

    def urgency(self) -> tuple[int, float]:
        """Sort key: running cases by remaining time, then waiting ones, then those with no due."""
        s = self.status
        if s.state is State.NO_DUE:
            return (2, 0)
        return (1 if s.state is State.WAITING else 0, s.remaining or 0)


def board(
    store: Store,
    settings: Settings,
    now: datetime,
    *,
    unit: str | None = None,
    official: str | None = None,
    state: str | None = None,
) -> list[BoardLine]:
    units = settings.subtree(unit) if unit else None
    lines = []
    for case, events in open_cases(store, units=units, official=official):
        calendar = settings.calendar_for(case.unit_code)
        tl = timeline(case, events, settings.procedures.get(case.procedure_code), calendar)
        status = open_state(tl, calendar, now)
        if state is None or status.state == state:
            lines.append(BoardLine(case, status))
    lines.sort(key=BoardLine.urgency)
    return lines


COLUMNS = ("case_code", "unit", "procedure", "assignee", "received", "due", "remaining", "state")


def as_rows(lines: Iterable[BoardLine], settings: Settings) -> Iterator[dict[str, Any]]:
    """Human rows: dd/mm/yyyy HH:MM and working time in days and hours."""
    for line in lines:
        c, s = line.case, line.status
        cal = settings.calendar_for(c.unit_code)
        yield {
            "case_code": c.case_code,
            "unit": c.unit_code,
            "procedure": c.procedure_code,
            "assignee": c.assignee or "",
            "received": show(c.received_at, cal.tz),
            "due": show(s.due, cal.tz),
            "remaining": "" if s.remaining is None else show_working(s.remaining, cal.day_seconds),
            "state": s.state.value,
        }


def as_json(line: BoardLine, settings: Settings) -> dict[str, Any]:
    """Machine rows: ISO 8601 with offset and remaining working minutes."""
    c, s = line.case, line.status
    cal = settings.calendar_for(c.unit_code)
    return {
        "case_code": c.case_code,
        "unit_code": c.unit_code,
        "procedure_code": c.procedure_code,
        "assignee": c.assignee,
        "status": int(c.status),
        "received_at": iso(c.received_at, cal.tz),
        "due_at": iso(s.due, cal.tz),
        "remaining_working_minutes": None if s.remaining is None else int(s.remaining / 60),
        "state": s.state.value,
    }
