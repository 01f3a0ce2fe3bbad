"""The control sheet of a case (Phiếu kiểm soát quá trình giải quyết hồ sơ): each handover
between the steps of its internal procedure, when it happened, who held the step, and whether
the step was done before, on or after its allotment (trước hạn / đúng hạn / quá hạn).

Pure: computed from the case, its events and the settings, like the engine's deadline state
(`engine.deadline.timeline` replays the steps; this only names and judges them). The command,
the DOCX and HTML forms and the dashboard's case page all read the same `ControlSheet`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from watchdog.config import Settings
from watchdog.domain import CLOSED_WITHOUT_RESULT, CaseEvent, CaseRecord, Status
from watchdog.engine.deadline import Result, open_state, result_of, timeline

# The words of the form (documents are Vietnamese whatever the language of the command line).
RESULT_WORDS = {
    Result.EARLY: "Trước hạn",
    Result.ON_TIME: "Đúng hạn",
    Result.LATE: "Quá hạn",
}
OPEN_WORDS = {
    "in_time": "Đang xử lý trong hạn",
    "overdue": "Đang xử lý quá hạn",
    "open": "Đang xử lý",
    "no_due": "Không xác định được hạn",
    "waiting": "Chờ bổ sung hồ sơ",
    "withdrawn": "Rút hồ sơ",
    "stopped": "Dừng xử lý",
    "not_accepted": "Không được tiếp nhận",
}


@dataclass(frozen=True, slots=True)
class ControlRow:
    """One step run: received by its handler at `received_at` (the handover), due at
    `due_at` (start + the step's allotment), handed on at `finished_at`."""

    number: int  # 1, 2, ... in the order of the handovers
    step_code: str
    step_name: str  # the procedure's name of the step; the code when the procedure lacks it
    handler: str | None  # official id (or the name the source gave)
    handler_name: str | None  # the official's name when the id is known
    received_at: datetime
    due_at: datetime | None  # None: the procedure gives this step no allotment
    finished_at: datetime | None  # None: the step is in hand
    result: Result | None  # None while in hand or without an allotment
    status: str  # early | on_time | late | in_time | overdue | open | no_due

    @property
    def result_label(self) -> str:
        """The form's words for `status`: Trước hạn, Đúng hạn, Quá hạn, Đang xử lý ..."""
        if self.result is not None:
            return RESULT_WORDS[self.result]
        return OPEN_WORDS.get(self.status, OPEN_WORDS["open"])


@dataclass(frozen=True, slots=True)
class ControlSheet:
    case_code: str
    procedure_code: str
    procedure_name: str
    unit_code: str
    unit_name: str
    applicant_name: str | None
    received_at: datetime
    due_at: datetime | None  # the appointment in force (after a pause or an extension)
    finished_at: datetime | None
    returned_at: datetime | None
    result: Result | None  # of the whole case, once it is finished
    status: str  # early | on_time | late, or the open case's: in_time | overdue | waiting ...
    rows: tuple[ControlRow, ...]
    tz: tzinfo  # the case's calendar zone: instants are shown there

    @property
    def result_label(self) -> str:
        if self.result is not None:
            return RESULT_WORDS[self.result]
        return OPEN_WORDS.get(self.status, OPEN_WORDS["open"])


def control_sheet(
    case: CaseRecord,
    events: Sequence[CaseEvent],
    settings: Settings,
    *,
    now: datetime | None = None,
) -> ControlSheet:
    """The control sheet of a case. Rows are the step runs the engine sees (`step_started`
    events and the record's current step), in order; a finished step is judged against its
    allotment, the day of the due counting as on time (SPEC 4, `engine.deadline.result_of`).

    `now` only judges what is still in hand (a step or an open case past its due reads "Đang
    xử lý quá hạn"); without it they read "Đang xử lý"."""
    calendar = settings.calendar_for(case.unit_code)
    procedure = settings.procedures.get(case.procedure_code)
    unit = settings.units.get(case.unit_code)
    tl = timeline(case, events, procedure, calendar)
    names = {s.code: s.name for s in procedure.steps} if procedure else {}
    rows = []
    for i, run in enumerate(tl.steps, start=1):
        if run.result is not None:
            status = str(run.result)
        elif run.due is None:
            status = "no_due"
        elif run.finished_at is None and now is not None:
            status = "overdue" if now > run.due else "in_time"
        else:
            status = "open"
        rows.append(
            ControlRow(
                number=i,
                step_code=run.code,
                step_name=names.get(run.code, run.code),
                handler=run.handler,
                handler_name=settings.official_name(run.handler),
                received_at=run.started_at,
                due_at=run.due,
                finished_at=run.finished_at,
                result=run.result,
                status=status,
            )
        )
    result: Result | None = None
    if case.status in CLOSED_WITHOUT_RESULT:
        status = "withdrawn" if case.status is Status.WITHDRAWN else "stopped"
    elif case.status is Status.NOT_ACCEPTED:
        status = "not_accepted"
    elif not case.is_open and case.finished_at is not None and tl.due is not None:
        result = result_of(case.finished_at, tl.due, calendar)
        status = str(result)
    elif tl.due is None:
        status = "no_due"
    elif now is None:
        status = "open"
    else:
        state = open_state(tl, calendar, now).state
        status = {"waiting": "waiting", "overdue": "overdue"}.get(str(state), "in_time")
    return ControlSheet(
        case_code=case.case_code,
        procedure_code=case.procedure_code,
        procedure_name=procedure.name if procedure else case.procedure_code,
        unit_code=case.unit_code,
        unit_name=unit.name if unit else case.unit_code,
        applicant_name=case.applicant_name,
        received_at=case.received_at,
        due_at=tl.due,
        finished_at=case.finished_at,
        returned_at=case.returned_at,
        result=result,
        status=status,
        rows=tuple(rows),
        tz=calendar.tz,
    )
