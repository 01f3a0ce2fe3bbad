"""Deadline state of a case: a pure function of its record, its procedure, the calendar and now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from watchdog.calendar import WorkingCalendar
from watchdog.config.models import ProcedureConfig
from watchdog.domain import CLOSED_WITHOUT_RESULT, Status
from watchdog.durations import compute_due

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


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """What the engine needs of a case, independent of where it is stored."""

    case_code: str
    procedure_code: str
    unit_code: str
    received_at: datetime
    status: Status
    due_at: datetime | None = None
    finished_at: datetime | None = None
    returned_at: datetime | None = None
    assignee: str | None = None
    current_step: str | None = None
    step_started_at: datetime | None = None
    step_handler: str | None = None
    applicant_name: str | None = None
    id: int | None = None

    @classmethod
    def from_row(cls, row: Any) -> CaseRecord:
        m = row._mapping if hasattr(row, "_mapping") else row
        return cls(
            case_code=m["case_code"],
            procedure_code=m["procedure_code"],
            unit_code=m["unit_code"],
            received_at=m["received_at"],
            status=Status(m["status"]),
            due_at=m["due_at"],
            finished_at=m["finished_at"],
            returned_at=m["returned_at"],
            assignee=m["assignee"],
            current_step=m["current_step"],
            step_started_at=m["step_started_at"],
            step_handler=m["step_handler"],
            applicant_name=m["applicant_name"],
            id=m["id"],
        )


@dataclass(frozen=True, slots=True)
class Deadline:
    due: datetime | None  # the due that counts: the source's appointment, else computed
    computed_due: datetime | None  # from the procedure's limit; None for an unknown procedure
    from_source: bool


def case_deadline(
    case: CaseRecord, procedure: ProcedureConfig | None, calendar: WorkingCalendar
) -> Deadline:
    computed = compute_due(calendar, case.received_at, procedure.limit) if procedure else None
    if case.due_at is not None:
        return Deadline(case.due_at, computed, True)
    return Deadline(computed, computed, False)


def result_of(finished_at: datetime, due: datetime, calendar: WorkingCalendar) -> Result:
    """Early when finished on an earlier day than the due day, on time on the due day."""
    if finished_at > due:
        return Result.LATE
    if calendar.local(finished_at).date() < calendar.local(due).date():
        return Result.EARLY
    return Result.ON_TIME


@dataclass(frozen=True, slots=True)
class CaseState:
    """Where an open case stands at `now`."""

    state: State
    due: datetime | None
    remaining: int | None  # working seconds until due; negative once overdue


def open_state(
    case: CaseRecord, deadline: Deadline, calendar: WorkingCalendar, now: datetime
) -> CaseState:
    if deadline.due is None:
        return CaseState(State.NO_DUE, None, None)
    remaining = calendar.working_seconds_between(now, deadline.due)
    if case.status.is_waiting:
        state = State.WAITING
    elif now > deadline.due:
        state = State.OVERDUE
    elif remaining <= DUE_SOON_DAYS * calendar.day_seconds:
        state = State.DUE_SOON
    else:
        state = State.ON_TRACK
    return CaseState(state, deadline.due, remaining)


def is_open_at(case: CaseRecord, at: datetime) -> bool:
    """Open at an instant: received by then, not finished by then, not closed without result."""
    if case.status in CLOSED_WITHOUT_RESULT or case.status is Status.NOT_ACCEPTED:
        return False
    return case.finished_at is None or case.finished_at > at
