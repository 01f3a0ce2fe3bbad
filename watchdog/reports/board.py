"""`watchdog cases`: the board of open cases, most urgent first.

A case whose deadline cannot be computed (an instant past the calendar's years, any error of
its timeline) is skipped, never fatal: it is recorded as an `evaluation_error` finding, as the
engine does, and listed in `Board.skipped` for the caller to mention.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watchdog.config import Settings
from watchdog.engine.deadline import CaseRecord, CaseState, State, open_state, timeline
from watchdog.i18n import N_, STATES, _, finding_label, remaining, state_label
from watchdog.reports.table import render_table
from watchdog.store import Store
from watchdog.store.cases import open_cases
from watchdog.store.findings import NewFinding, record_findings
from watchdog.timefmt import iso, show

log = logging.getLogger(__name__)

EVALUATION_ERROR = "evaluation_error"  # the finding kind the engine's runner records too


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


@dataclass(frozen=True)
class SkippedCase:
    """A case left out of a listing because its deadline cannot be computed."""

    case: CaseRecord
    error: str  # "ValueError: year 2201 is outside the supported range 1900-2200"

    @property
    def note(self) -> str:
        """One line for stderr; names the finding's kind as `watchdog findings --kind` takes it."""
        return _(
            "case {case}: left out, its deadline cannot be computed ({error}); recorded as "
            'finding "{label}" ({kind})'
        ).format(
            case=self.case.case_code,
            error=self.error,
            label=finding_label(EVALUATION_ERROR),
            kind=EVALUATION_ERROR,
        )


def skipped_case(case: CaseRecord, error: Exception) -> SkippedCase:
    # The caller prints the note; the traceback is for debugging only.
    log.debug("case %s cannot be computed", case.case_code, exc_info=error)
    return SkippedCase(case, f"{type(error).__name__}: {error}")


def record_skipped(store: Store, skipped: Sequence[SkippedCase], now: datetime) -> None:
    """Record each skipped case as an `evaluation_error` finding (kind, case code) in one write.

    A read command must still answer when the finding cannot be written (a read-only
    database, a lock held too long): that is logged, and the notes still name the cases.
    """
    found = [NewFinding(EVALUATION_ERROR, s.case.case_code, s.error, s.case.id) for s in skipped]
    try:
        record_findings(store, found, now)
    except Exception as e:
        log.warning(
            _("could not record {n} finding(s) {kind}: {error}").format(
                n=len(found), kind=EVALUATION_ERROR, error=f"{type(e).__name__}: {e}"
            )
        )


class Board(list[BoardLine]):
    """The board's lines, most urgent first, plus the cases it had to skip (`skipped`)."""

    def __init__(self, lines: Iterable[BoardLine] = (), skipped: Iterable[SkippedCase] = ()):
        super().__init__(lines)
        self.skipped: list[SkippedCase] = list(skipped)

    @property
    def notes(self) -> list[str]:
        return [s.note for s in self.skipped]


def board(
    store: Store,
    settings: Settings,
    now: datetime,
    *,
    unit: str | None = None,
    official: str | None = None,
    state: str | None = None,
) -> Board:
    """Open cases with their state at `now`. A case that cannot be computed is skipped and
    recorded as a finding; `Board.skipped` lists those (all of them, whatever `state`)."""
    units = settings.subtree(unit) if unit else None
    lines: list[BoardLine] = []
    skipped: list[SkippedCase] = []
    for case, events in open_cases(store, units=units, official=official):
        try:
            calendar = settings.calendar_for(case.unit_code)
            tl = timeline(case, events, settings.procedures.get(case.procedure_code), calendar)
            status = open_state(tl, calendar, now)
        except Exception as e:  # one case that cannot be computed never stops the board
            skipped.append(skipped_case(case, e))
            continue
        if state is None or status.state == state:
            lines.append(BoardLine(case, status))
    lines.sort(key=BoardLine.urgency)
    if skipped:
        record_skipped(store, skipped, now)
    return Board(lines, skipped)


COLUMNS = ("case_code", "unit", "procedure", "assignee", "received", "due", "remaining", "state")
HEADERS = {
    "case_code": N_("Case"),
    "unit": N_("Unit"),
    "procedure": N_("Procedure"),
    "assignee": N_("Assignee"),
    "received": N_("Received on"),
    "due": N_("Due"),
    "remaining": N_("Remaining"),
    "state": N_("State"),
}


def headers() -> dict[str, str]:
    """The column titles in the current language."""
    return {key: _(title) for key, title in HEADERS.items()}


def counts(lines: Iterable[BoardLine]) -> str:
    """One line of counts per state, most urgent first: "Quá hạn: 3 · Sắp đến hạn: 5 · ...".
    A state without a due is named only when some case has none."""
    found = {state: 0 for state in STATES}
    for line in lines:
        found[line.status.state.value] += 1
    shown = [s for s in STATES if s != State.NO_DUE or found[s]]
    return " · ".join(f"{state_label(s)}: {found[s]}" for s in shown)


def render(lines: Sequence[BoardLine], settings: Settings) -> str:
    """The board for people: the line of counts, a blank line, then the table."""
    table = render_table(COLUMNS, as_rows(lines, settings), headers())
    return f"{counts(lines)}\n\n{table}"


NAME_WIDTH = 32  # a longer unit or official name is cut with "…" to keep the board readable


def _named(code: str | None, names: dict[str, Any]) -> str:
    """`STP.HC · Phòng Hành chính tư pháp`: the code people type, the name they read."""
    if not code:
        return ""
    known = names.get(code)
    if known is None:
        return code
    name = " ".join(known.name.split())
    if len(name) > NAME_WIDTH:
        name = name[: NAME_WIDTH - 1].rstrip() + "…"
    return f"{code} · {name}"


def as_rows(lines: Iterable[BoardLine], settings: Settings) -> Iterator[dict[str, Any]]:
    """Human rows: names beside codes, dd/mm/yyyy HH:MM, remaining time in words, state names."""
    for line in lines:
        c, s = line.case, line.status
        cal = settings.calendar_for(c.unit_code)
        yield {
            "case_code": c.case_code,
            "unit": _named(c.unit_code, settings.units),
            "procedure": c.procedure_code,
            "assignee": _named(c.assignee, settings.officials),
            "received": show(c.received_at, cal.tz),
            "due": show(s.due, cal.tz),
            "remaining": "" if s.remaining is None else remaining(s.remaining, cal.day_seconds),
            "state": state_label(s.state.value),
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
