"""`watchdog cases`: the board of open cases, most urgent first.

A case whose deadline cannot be computed (an instant past the calendar's years, any error of
its timeline) is skipped, never fatal: it is recorded as an `evaluation_error` finding, as the
engine does, and listed in `Board.skipped` for the caller to mention.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from watchdog.config import Settings
from watchdog.engine.deadline import (
    CaseRecord,
    CaseState,
    Rank,
    Standing,
    State,
    open_state,
    standing,
    timeline,
)
from watchdog.i18n import N_, STATES, _, finding_label, remaining, state_label
from watchdog.reports.table import render_table
from watchdog.store import Store
from watchdog.store.findings import NewFinding, record_findings
from watchdog.store.reads import (
    board_counts,
    board_lines,
    counts_by,
    failed_open,
    unplanned_open,
)
from watchdog.timefmt import iso, show

log = logging.getLogger(__name__)

EVALUATION_ERROR = "evaluation_error"  # the finding kind the engine's runner records too


@dataclass(frozen=True)
class BoardLine:
    case: CaseRecord
    status: CaseState
    rank: Rank = Rank.RUNNING

    def urgency(self) -> tuple[int, float, int]:
        """Board order: running cases by due (the most overdue first), then those waiting for
        the applicant, then those with no due; the same order the store reads them in."""
        due = self.status.due
        return (int(self.rank), due.timestamp() if due is not None else 0.0, self.case.id)


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
    """One page of the board's lines, most urgent first; `total` lines in all and `by_state`
    their counts; `skipped` the cases it had to leave out."""

    def __init__(
        self,
        lines: Iterable[BoardLine] = (),
        skipped: Iterable[SkippedCase] = (),
        by_state: dict[str, int] | None = None,
    ):
        super().__init__(lines)
        self.skipped: list[SkippedCase] = list(skipped)
        self.by_state: dict[str, int] = by_state if by_state is not None else _count(self)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def notes(self) -> list[str]:
        return [s.note for s in self.skipped]


def _count(lines: Iterable[BoardLine]) -> dict[str, int]:
    found = dict.fromkeys(STATES, 0)
    for line in lines:
        found[line.status.state.value] += 1
    return found


def _line(record: CaseRecord, st: Standing, settings: Settings, now: datetime) -> BoardLine:
    """A board line from a stored standing: its state at `now` and the working time left
    (frozen while waiting), without the case's events."""
    state = st.state_at(now) or State.NO_DUE
    remaining = None
    if st.due is not None:
        calendar = settings.calendar_for(record.unit_code)
        at = min(now, st.waiting_since) if st.waiting_since is not None else now
        remaining = calendar.working_seconds_between(at, st.due)
    return BoardLine(record, CaseState(state, st.due, remaining), st.rank)


class _Scope:
    """The filters of one board read, and the cases it computes itself (changed since their
    plan): those are few while the daemon runs, all of them before the first plan."""

    def __init__(self, store, settings, now, unit, official, state, units=None):
        self.args = (store, settings, now)
        self.units = settings.subtree(unit) if unit else (None if units is None else set(units))
        self.official, self.state = official, state
        self.computed: list[BoardLine] = []
        self.skipped: list[SkippedCase] = []
        for case, events in unplanned_open(store, units=self.units, official=official):
            try:
                calendar = settings.calendar_for(case.unit_code)
                procedure = settings.procedures.get(case.procedure_code)
                tl = timeline(case, events, procedure, calendar)
                status = open_state(tl, calendar, now)
                rank = standing(case, tl, calendar).rank
            except Exception as e:  # one case that cannot be computed never stops the board
                self.skipped.append(skipped_case(case, e))
                continue
            if state is None or status.state == state:
                self.computed.append(BoardLine(case, status, rank))
        self.computed.sort(key=BoardLine.urgency)
        if self.skipped:
            record_skipped(store, self.skipped, now)
        for record, error in failed_open(store, units=self.units, official=official):
            self.skipped.append(SkippedCase(record, error))

    def lines(self, limit: int | None) -> Iterator[BoardLine]:
        store, settings, now = self.args
        planned = (
            _line(record, Standing(*st), settings, now)
            for record, st in board_lines(
                store,
                now,
                units=self.units,
                official=self.official,
                state=self.state,
                limit=limit,
            )
        )
        return heapq.merge(planned, self.computed, key=BoardLine.urgency)

    def counts_by(self, by: str) -> dict[tuple[str, str], int]:
        """Open cases by (unit or assignee, state), the computed ones included."""
        store, _settings, now = self.args
        found = {
            (k or "", s): n
            for (k, s), n in counts_by(
                store, now, by, units=self.units, official=self.official
            ).items()
        }
        for line in self.computed:
            k = (line.case.unit_code if by == "unit" else line.case.assignee) or ""
            key = (k, line.status.state.value)
            found[key] = found.get(key, 0) + 1
        return found

    def by_state(self) -> dict[str, int]:
        store, _settings, now = self.args
        found = board_counts(store, now, units=self.units, official=self.official)
        found = {s: found.get(s, 0) for s in STATES}
        for line in self.computed:
            found[line.status.state.value] += 1
        if self.state is not None:
            found = {s: (n if s == self.state else 0) for s, n in found.items()}
        return found


def board(
    store: Store,
    settings: Settings,
    now: datetime,
    *,
    unit: str | None = None,
    official: str | None = None,
    state: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> Board:
    """Open cases with their state at `now`, most urgent first: the `limit` lines after
    `offset` (all of them without `limit`), with the counts of all. A case that cannot be
    computed is skipped (recorded as a finding) and listed in `Board.skipped`, whatever
    `state`. Filtered, ordered and counted by the database (`store.reads`)."""
    scope = _Scope(store, settings, now, unit, official, state)
    end = None if limit is None else offset + limit
    page = islice(scope.lines(end), offset, end)
    return Board(page, scope.skipped, scope.by_state())


def board_counts_by(
    store: Store,
    settings: Settings,
    now: datetime,
    by: str,
    *,
    unit: str | None = None,
    official: str | None = None,
    units: Collection[str] | None = None,
) -> dict[tuple[str, str], int]:
    """Open cases by (unit code or assignee, state at `now`), counted by the database: the
    dashboard's list of units and backlog per official, whatever the number of cases.
    `units`: these units exactly (a digest's, the union of subtrees), instead of `unit`'s."""
    return _Scope(store, settings, now, unit, official, None, units).counts_by(by)


def iter_board(
    store: Store,
    settings: Settings,
    now: datetime,
    *,
    unit: str | None = None,
    official: str | None = None,
    state: str | None = None,
) -> tuple[Iterator[BoardLine], list[SkippedCase]]:
    """Every line of the board, read from the database a page at a time (`cases --format
    jsonl` of a million cases holds one page in memory), and the skipped cases."""
    scope = _Scope(store, settings, now, unit, official, state)
    return scope.lines(None), scope.skipped


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


def counts(by_state: dict[str, int]) -> str:
    """One line of counts per state, most urgent first: "Quá hạn: 3 · Sắp đến hạn: 5 · ...".
    A state without a due is named only when some case has none."""
    shown = [s for s in STATES if s != State.NO_DUE or by_state.get(s)]
    return " · ".join(f"{state_label(s)}: {by_state.get(s, 0)}" for s in shown)


def render(lines: Board, settings: Settings) -> str:
    """The board for people: the line of counts, a blank line, then the table."""
    table = render_table(COLUMNS, as_rows(lines, settings), headers())
    return f"{counts(lines.by_state)}\n\n{table}"


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
