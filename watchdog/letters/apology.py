"""The apology letter (Phiếu xin lỗi và hẹn lại ngày trả kết quả) of a case, and the new
appointment it proposes. Pure: the case, its events, the settings and `now` in, a letter out.

The new appointment (docs/letters.md, "How the new appointment is chosen"): counted from the
appointment in force (or from `now` when that has passed), plus the work left as the
procedure's internal steps allot it: the step in hand counted whole (it is behind, or the
letter would not be needed) and every step after it. A procedure without steps gets its whole
time limit counted again. Never less than one working day later than the appointment it
replaces. The letter is a draft: the official may change the date before the head signs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from watchdog.calendar import WorkingCalendar
from watchdog.config import Settings
from watchdog.config.models import ProcedureConfig
from watchdog.domain import CaseEvent, CaseRecord
from watchdog.durations import compute_due
from watchdog.engine.deadline import Timeline, timeline

DOTS = "…………………………"  # a blank to fill in by hand, as printed forms have


@dataclass(frozen=True, slots=True)
class ApologyLetter:
    case_code: str
    procedure_code: str
    procedure_name: str
    unit_name: str
    parent_agency: str  # the governing body (first heading line); "" when there is none
    agency: str  # the issuing agency (second heading line, and "we" of the body)
    applicant_name: str | None
    received_at: datetime
    original_due: datetime | None  # the appointment in force, the one the letter replaces
    new_due: datetime | None  # proposed; None without a due to start from
    reason: str | None
    signer_title: str
    signer_name: str | None
    written_at: datetime
    place: str | None
    assignee_name: str | None
    tz: tzinfo
    # What the official should know before sending it (codes; the command words them):
    # extended (an appointment was already reset once), late (written after the due),
    # notice (written less than the procedure's notice before the due), closed, no_due
    warnings: tuple[str, ...] = ()


def agency_of(settings: Settings, unit_code: str) -> tuple[str, str, str | None]:
    """(governing body, issuing agency, the issuing agency's unit code) of a case's unit.

    The issuing agency is the unit just under the top of the tree on the way to the case's
    unit (Sở Tư pháp for a case of its Phòng Hành chính tư pháp under UBND tỉnh), the unit
    itself when it is at the top or at the second level. The governing body is
    `letters.agency`, else the top unit's name."""
    chain: list[str] = []
    code: str | None = unit_code
    while code is not None and code in settings.units and code not in chain:
        chain.append(code)
        code = settings.units[code].parent
    chain.reverse()  # top first
    configured = settings.config.letters.agency
    if not chain:  # a unit the configuration does not know
        return configured or "", unit_code, None
    top = settings.units[chain[0]]
    if len(chain) == 1:
        return configured or "", top.name, top.code
    agency = settings.units[chain[1]]
    return configured or top.name, agency.name, agency.code


def _signer(settings: Settings, agency_code: str | None) -> str | None:
    """The first head of the issuing agency, else of the nearest unit above with one."""
    code = agency_code
    seen: set[str] = set()
    while code is not None and code in settings.units and code not in seen:
        seen.add(code)
        unit = settings.units[code]
        for head in unit.heads:
            official = settings.officials.get(head)
            if official is not None:
                return official.name
        code = unit.parent
    return None


def remaining_work(tl: Timeline, procedure: ProcedureConfig | None, calendar: WorkingCalendar):
    """Working seconds of work left by the procedure's steps: the step in hand (whole) and the
    ones after it; with no step in hand, the steps after the last one done (all of them when
    none was run). None when the procedure has no steps to count (or allots calendar days)."""
    if procedure is None or not procedure.steps:
        return None
    codes = [s.code for s in procedure.steps]
    current = tl.current_step
    if current is not None and current.code in codes:
        todo = procedure.steps[codes.index(current.code) :]
    elif tl.steps and tl.steps[-1].code in codes:
        todo = procedure.steps[codes.index(tl.steps[-1].code) + 1 :]
    elif not tl.steps:
        todo = procedure.steps
    else:
        return None  # the case runs steps the procedure does not name
    try:
        return sum(s.allot.working_seconds(calendar) for s in todo)
    except ValueError:  # an allotment in calendar days has no working length
        return None


def propose_new_due(
    tl: Timeline,
    procedure: ProcedureConfig | None,
    calendar: WorkingCalendar,
    now: datetime,
) -> datetime | None:
    """The new appointment a letter written at `now` proposes (see the module's docstring)."""
    if tl.due is None:
        return None
    base = max(tl.due, calendar.next_working_instant(now))
    work = remaining_work(tl, procedure, calendar)
    if work is not None:
        proposed = calendar.add_working(base, work)
    elif procedure is not None:
        proposed = compute_due(calendar, base, procedure.limit, calendar.next_working_instant(base))
    else:  # the source's appointment of an unknown procedure: nothing to count by
        proposed = base
    return max(proposed, calendar.add_working(base, calendar.day_seconds))


def apology_letter(
    case: CaseRecord,
    events: Sequence[CaseEvent],
    settings: Settings,
    now: datetime,
    *,
    reason: str | None = None,
) -> ApologyLetter:
    """The draft letter of a case written at `now`, with the new appointment proposed."""
    calendar = settings.calendar_for(case.unit_code)
    procedure = settings.procedures.get(case.procedure_code)
    unit = settings.units.get(case.unit_code)
    tl = timeline(case, events, procedure, calendar)
    parent_agency, agency, agency_code = agency_of(settings, case.unit_code)
    warnings = []
    if not case.is_open:
        warnings.append("closed")
    if tl.due is None:
        warnings.append("no_due")
    if tl.extensions or tl.late_extensions or tl.second_extensions:
        warnings.append("extended")
    if tl.due is not None:
        if now > tl.due:
            warnings.append("late")
        elif procedure is not None:
            notice = procedure.extension_notice.working_seconds(calendar)
            if calendar.working_seconds_between(now, tl.due) < notice:
                warnings.append("notice")
    assignee = None
    if case.assignee:
        official = settings.officials.get(case.assignee)
        assignee = official.name if official else case.assignee
    letters = settings.config.letters
    return ApologyLetter(
        case_code=case.case_code,
        procedure_code=case.procedure_code,
        procedure_name=procedure.name if procedure else case.procedure_code,
        unit_name=unit.name if unit else case.unit_code,
        parent_agency=parent_agency,
        agency=agency,
        applicant_name=case.applicant_name,
        received_at=case.received_at,
        original_due=tl.due,
        new_due=propose_new_due(tl, procedure, calendar, now),
        reason=(reason or "").strip() or None,
        signer_title=letters.signer_title,
        signer_name=_signer(settings, agency_code),
        written_at=now,
        place=letters.place,
        assignee_name=assignee,
        tz=calendar.tz,
        warnings=tuple(warnings),
    )


# ----- what the DOCX template sees --------------------------------------------------------------

# Every variable of the apology template, with what it holds (docs/letters.md, `watchdog check`).
APOLOGY_FIELDS: dict[str, str] = {
    "parent_agency": "governing body, first heading line (letters.agency or the top unit)",
    "agency": "issuing agency, second heading line and the body's subject",
    "number": "the letter's number, a blank to fill in (Số: …/PXL)",
    "place": "place of the date line (letters.place), else a blank",
    "date_line": "date of the letter as official documents write it: ngày 05 tháng 02 năm 2026",
    "written_date": "date of the letter, dd/mm/yyyy",
    "applicant_name": "the applicant (chủ hồ sơ)",
    "case_code": "the case code (mã hồ sơ)",
    "procedure_code": "the procedure's national code",
    "procedure_name": "the procedure's name",
    "unit_name": "the unit handling the case",
    "received_at": "received, dd/mm/yyyy HH:MM",
    "received_date": "received, dd/mm/yyyy",
    "original_due": "the appointment in force: HH:MM ngày dd/mm/yyyy",
    "original_due_date": "the appointment in force, dd/mm/yyyy",
    "original_due_time": "the appointment in force, HH:MM",
    "reason": "why the case is late (--reason), else a blank",
    "new_due": "the new appointment proposed: HH:MM ngày dd/mm/yyyy",
    "new_due_date": "the new appointment, dd/mm/yyyy",
    "new_due_time": "the new appointment, HH:MM",
    "signer_title": "title of the signing head (letters.signer_title)",
    "signer_name": "name of the signing head (first head of the issuing agency)",
    "assignee_name": "the official handling the case",
}


def date_line(t: datetime, tz: tzinfo) -> str:
    """ "ngày 05 tháng 02 năm 2026": days below 10 and the months 1 and 2 take a leading zero
    (Nghị định 30/2020/NĐ-CP, the presentation of administrative documents)."""
    local = t.astimezone(tz)
    month = f"{local.month:02d}" if local.month <= 2 else str(local.month)
    return f"ngày {local.day:02d} tháng {month} năm {local.year}"


def _day(t: datetime | None, tz: tzinfo) -> str:
    return DOTS if t is None else t.astimezone(tz).strftime("%d/%m/%Y")


def _time(t: datetime | None, tz: tzinfo) -> str:
    return "……" if t is None else t.astimezone(tz).strftime("%H:%M")


def _moment(t: datetime | None, tz: tzinfo) -> str:
    return DOTS if t is None else f"{_time(t, tz)} ngày {_day(t, tz)}"


def apology_context(letter: ApologyLetter) -> dict[str, str]:
    """The template's variables (APOLOGY_FIELDS), every one a plain string: dates already in
    dd/mm/yyyy, times in HH:MM, blanks as dots. docxtpl escapes them (autoescape=True)."""
    tz = letter.tz
    return {
        "parent_agency": letter.parent_agency,
        "agency": letter.agency,
        "number": "……",
        "place": letter.place or DOTS,
        "date_line": date_line(letter.written_at, tz),
        "written_date": _day(letter.written_at, tz),
        "applicant_name": letter.applicant_name or DOTS,
        "case_code": letter.case_code,
        "procedure_code": letter.procedure_code,
        "procedure_name": letter.procedure_name,
        "unit_name": letter.unit_name,
        "received_at": letter.received_at.astimezone(tz).strftime("%d/%m/%Y %H:%M"),
        "received_date": _day(letter.received_at, tz),
        "original_due": _moment(letter.original_due, tz),
        "original_due_date": _day(letter.original_due, tz),
        "original_due_time": _time(letter.original_due, tz),
        "reason": letter.reason or DOTS * 3,
        "new_due": _moment(letter.new_due, tz),
        "new_due_date": _day(letter.new_due, tz),
        "new_due_time": _time(letter.new_due, tz),
        "signer_title": letter.signer_title,
        "signer_name": letter.signer_name or "",
        "assignee_name": letter.assignee_name or "",
    }
