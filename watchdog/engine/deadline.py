"""Deadline state of a case: a pure function of its record, its events, its procedure, the
calendar and `now` (SPEC 4).

`timeline()` replays the case's events once into a `Timeline` (due, due version, pauses,
extensions, steps, last activity); `Timeline.measure(now)` then gives remaining, elapsed and
overdue working time. Nothing here reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from watchdog.calendar import WorkingCalendar
from watchdog.config.models import ProcedureConfig
from watchdog.domain import (
    CLOSED_WITHOUT_RESULT,
    CaseEvent,
    CaseRecord,
    EventKind,
    Rank,
    Status,
)
from watchdog.durations import Duration, Unit, compute_due

DEFAULT_EXTENSION_NOTICE = Duration(1, Unit.WORKING_DAYS)  # for cases of unknown procedures
DUE_SOON_DAYS = 1  # "due soon" = at most one working day left, as the shipped due_soon stage


class State(StrEnum):
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    WAITING = "waiting"
    NO_DUE = "no_due"  # unknown procedure and no appointment from the source


class Result(StrEnum):
    """Result of finished work, as on the control sheet: trước hạn, đúng hạn, quá hạn."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"


# New appointments that are not a gia hạn: reset after documents arrived, or first given.
_NOT_EXTENSIONS = ("supplement", "appointment")
# Replay order of events at the same instant: a completed supplement before a new appointment.
_ORDER = {k: i for i, k in enumerate(EventKind)}


@dataclass(frozen=True, slots=True)
class StepRun:
    """One pass through a step of the internal procedure (quy trình nội bộ)."""

    code: str
    handler: str | None
    started_at: datetime
    due: datetime | None  # None when the procedure does not define the step
    finished_at: datetime | None
    result: Result | None


@dataclass(frozen=True, slots=True)
class Measure:
    """Where a case stands at an instant, in working seconds."""

    remaining: int  # until due; negative once overdue
    elapsed: int  # since the clock started, waiting time excluded
    share: float  # elapsed / (elapsed + remaining), 0..1+ ; 1.0 at the due
    overdue: int  # working seconds past due, 0 before


@dataclass(frozen=True, slots=True)
class Timeline:
    start: datetime  # S, the start of the clock
    due: datetime | None  # the due that counts now
    computed_due: datetime | None  # from the procedure's limit; None for an unknown procedure
    source_due: datetime | None  # the first appointment the source gave
    due_version: int  # bumped by each extension and completed supplement
    extensions: int  # extensions (gia hạn) that moved the due: 0 or 1
    supplements: int  # supplement requests made (late ones included)
    waiting_since: datetime | None  # set while waiting for the applicant
    waited: int  # working seconds of completed waits
    last_activity: datetime
    steps: tuple[StepRun, ...]
    late_extensions: tuple[datetime, ...] = ()  # recorded too close to (or after) the due
    second_extensions: tuple[datetime, ...] = ()  # after the one extension the law allows
    late_supplements: tuple[datetime, ...] = ()  # requested after the due: they pause nothing

    @property
    def current_step(self) -> StepRun | None:
        return self.steps[-1] if self.steps and self.steps[-1].finished_at is None else None

    def measure(self, calendar: WorkingCalendar, now: datetime) -> Measure | None:
        """Remaining and elapsed working time at `now`; frozen while waiting."""
        if self.due is None:
            return None
        at = min(now, self.waiting_since) if self.waiting_since else now
        remaining = calendar.working_seconds_between(at, self.due)
        elapsed = max(0, calendar.working_seconds_between(self.start, at) - self.waited)
        total = elapsed + remaining
        share = elapsed / total if total > 0 else 1.0
        return Measure(remaining, elapsed, share, max(0, -remaining))


def timeline(
    case: CaseRecord,
    events: Sequence[CaseEvent],
    procedure: ProcedureConfig | None,
    calendar: WorkingCalendar,
) -> Timeline:
    """Replay a case's events into its deadline state (SPEC 4).

    - An extension (a new appointment that is neither the first one the source gives nor the
      reset after documents arrived) moves the due only when it is the first one and was
      recorded at least `extension_notice` (1 working day) before the due it replaces; a late
      or a second one leaves the due where it was and is listed for a finding.
    - A supplement request after the due pauses nothing: the case stays late.
    - Instants are the source's (event `at`, the record's `source_updated_at`).
    """
    start = calendar.clock_start(case.received_at)
    computed = (
        compute_due(calendar, case.received_at, procedure.limit, start) if procedure else None
    )
    ordered = sorted(events, key=_replay_order) if events else ()
    # The first appointment: the one an extension replaced, else the one the source first
    # gave (until then the computed due applied), else the record's.
    first_ext = next((e for e in ordered if e.kind == EventKind.EXTENDED), None)
    if first_ext is None:
        source_due = case.due_at
        due = source_due or computed
    elif first_ext.data.get("previous_due"):
        source_due = due = _instant(first_ext.data["previous_due"])
    else:
        source_due, due = _instant(first_ext.data.get("new_due")), computed
    version = extensions = supplements = waited = 0
    late_ext: list[datetime] = []
    second_ext: list[datetime] = []
    late_sup: list[datetime] = []
    waiting_since: datetime | None = None
    last_activity = case.received_at
    for e in ordered:
        last_activity = max(last_activity, e.at)
        if e.kind == EventKind.SUPPLEMENT_REQUESTED:
            supplements += 1
            if waiting_since is None and due is not None and e.at > due:
                late_sup.append(e.at)  # too late to stop the clock
            else:
                waiting_since = waiting_since or e.at
        elif e.kind == EventKind.SUPPLEMENT_RECEIVED and waiting_since is not None:
            pause = max(0, calendar.working_seconds_between(waiting_since, e.at))
            waited += pause
            if procedure is not None and procedure.on_supplement == "restart":
                due = compute_due(calendar, e.at, procedure.limit)
                waited = calendar.working_seconds_between(start, calendar.clock_start(e.at))
            elif due is not None:
                due = calendar.add_working(due, pause) if pause else due
            waiting_since = None
            version += 1
        elif e.kind == EventKind.EXTENDED:
            new_due = _instant(e.data.get("new_due"))
            if new_due is None:
                continue
            if e.data.get("reason") in _NOT_EXTENSIONS or due is None:
                due = new_due
                version += 1
            elif extensions:
                second_ext.append(e.at)
            elif calendar.working_seconds_between(e.at, due) < _notice(procedure, calendar):
                late_ext.append(e.at)
            else:
                due = new_due
                version += 1
                extensions = 1
    if case.status.is_waiting and waiting_since is None and not late_sup:
        # Waiting with no request on record (first seen already waiting): since the source's
        # last change; a wait that began after the due stops nothing either.
        began = case.source_updated_at or case.received_at
        if due is None or began <= due:
            waiting_since = began
        else:
            late_sup.append(began)
    if not case.status.is_waiting:
        waiting_since = None
    for t in (case.step_started_at, case.source_updated_at):
        if t is not None:
            last_activity = max(last_activity, t)
    steps = _steps(case, ordered, procedure, calendar)
    return Timeline(
        start=start,
        due=due,
        computed_due=computed,
        source_due=source_due,
        due_version=version,
        extensions=extensions,
        supplements=supplements,
        waiting_since=waiting_since,
        waited=waited,
        last_activity=last_activity,
        steps=steps,
        late_extensions=tuple(late_ext),
        second_extensions=tuple(second_ext),
        late_supplements=tuple(late_sup),
    )


def _replay_order(e: CaseEvent) -> tuple[datetime, int]:
    return e.at, _ORDER.get(e.kind, 99)


def _notice(procedure: ProcedureConfig | None, calendar: WorkingCalendar) -> int:
    """The notice an extension needs before the due it replaces, in working seconds."""
    notice = procedure.extension_notice if procedure else DEFAULT_EXTENSION_NOTICE
    return notice.working_seconds(calendar)


def _instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _steps(
    case: CaseRecord,
    ordered: Sequence[CaseEvent],
    procedure: ProcedureConfig | None,
    calendar: WorkingCalendar,
) -> tuple[StepRun, ...]:
    """Step runs from step_started events, completed by the record's current step."""
    starts = [
        (e.at, str(e.data.get("step")), e.data.get("handler"))
        for e in ordered
        if e.kind == EventKind.STEP_STARTED and e.data.get("step")
    ]
    if case.current_step and case.step_started_at:
        current = (case.step_started_at, case.current_step, case.step_handler)
        if not starts or (starts[-1][0], starts[-1][1]) != current[:2]:
            starts.append(current)
    allot = {s.code: s.allot for s in procedure.steps} if procedure else {}
    runs = []
    closed_at = case.finished_at if not case.is_open else None
    for i, (at, code, handler) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else closed_at
        due = None
        if code in allot:
            # a handover is not a reception: no cutoff, the step's time runs from its start
            due = calendar.add_working(at, allot[code].working_seconds(calendar))
        result = result_of(end, due, calendar) if end is not None and due is not None else None
        runs.append(StepRun(code, handler, at, due, end, result))
    return tuple(runs)


def result_of(finished_at: datetime, due: datetime, calendar: WorkingCalendar) -> Result:
    """Early when finished on an earlier day than the due day, on time on the due day."""
    if finished_at > due:
        return Result.LATE
    if calendar.local(finished_at).date() < calendar.local(due).date():
        return Result.EARLY
    return Result.ON_TIME


@dataclass(frozen=True, slots=True)
class CaseState:
    """Where an open case stands at `now`, for the board."""

    state: State
    due: datetime | None
    remaining: int | None  # working seconds until due; negative once overdue


def open_state(tl: Timeline, calendar: WorkingCalendar, now: datetime) -> CaseState:
    m = tl.measure(calendar, now)
    if m is None:
        return CaseState(State.NO_DUE, None, None)
    if tl.waiting_since is not None:
        state = State.WAITING
    elif now > tl.due:
        state = State.OVERDUE
    elif m.remaining <= DUE_SOON_DAYS * calendar.day_seconds:
        state = State.DUE_SOON
    else:
        state = State.ON_TRACK
    return CaseState(state, tl.due, m.remaining)


def is_open_at(case: CaseRecord, at: datetime) -> bool:
    """Open at an instant: not finished by then and not closed without a result."""
    if case.status in CLOSED_WITHOUT_RESULT or case.status is Status.NOT_ACCEPTED:
        return False
    return case.finished_at is None or case.finished_at > at


@dataclass(frozen=True, slots=True)
class Standing:
    """What the reads need of a case, computed when it is planned; the state at any instant
    follows from it without the case's events (`state_at`)."""

    rank: Rank
    due: datetime | None
    due_soon_at: datetime | None  # from here on, at most DUE_SOON_DAYS working days remain
    waiting_since: datetime | None
    supplements: int

    def state_at(self, now: datetime) -> State | None:
        """The board's state at `now` (None for a closed case or one that cannot be computed);
        the same as `open_state` of the timeline it was computed from."""
        if self.rank is Rank.WAITING:
            return State.WAITING
        if self.rank is Rank.NO_DUE:
            return State.NO_DUE
        if self.rank is not Rank.RUNNING or self.due is None:
            return None
        if now > self.due:
            return State.OVERDUE
        if self.due_soon_at is not None and now >= self.due_soon_at:
            return State.DUE_SOON
        return State.ON_TRACK


def standing(
    case: CaseRecord,
    tl: Timeline,
    calendar: WorkingCalendar,
    add: Callable[[datetime, int], datetime] | None = None,
) -> Standing:
    """`add`: the calendar's `add_working`, or the evaluation's memo of it (the shipped
    `due_soon` stage asks for the same instant)."""
    if not case.is_open:
        rank = Rank.CLOSED
    elif tl.due is None:
        rank = Rank.NO_DUE
    elif tl.waiting_since is not None:
        rank = Rank.WAITING
    else:
        rank = Rank.RUNNING
    soon = None
    if tl.due is not None and rank is not Rank.CLOSED:
        # the earliest instant with at most a working day left (`add_working` going back)
        soon = (add or calendar.add_working)(tl.due, -DUE_SOON_DAYS * calendar.day_seconds)
    return Standing(rank, tl.due, soon, tl.waiting_since, tl.supplements)
