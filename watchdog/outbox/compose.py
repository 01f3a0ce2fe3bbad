"""What the renderer is given: views built from claimed messages, the directory and the clock.

A case is shown as it stands when its message is first sent (its deadline state at that
instant), not as it stood when the firing was written minutes or a night earlier.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from watchdog.channels import Recipient
from watchdog.config import Settings
from watchdog.domain import CaseEvent, CaseRecord
from watchdog.engine.deadline import State, open_state, timeline
from watchdog.outbox.grouping import urgency_key
from watchdog.outbox.views import CaseView
from watchdog.store.outbox import Claimed

log = logging.getLogger(__name__)


def recipient_of(settings: Settings, who: str) -> Recipient:
    official = settings.officials.get(who)
    if official is None:  # a bare e-mail address from `notify` or `supervisors`
        return Recipient(id=who, name=who, email=who if "@" in who else None)
    return Recipient(
        id=official.id,
        name=official.name,
        unit=official.unit,
        email=official.email,
        telegram=official.telegram,
    )


def case_view(
    settings: Settings,
    record: CaseRecord,
    events: list[CaseEvent],
    now: datetime,
    *,
    stage: str = "",
    template: str = "",
    urgent: bool = False,
) -> CaseView:
    calendar = settings.calendar_for(record.unit_code)
    procedure = settings.procedures.get(record.procedure_code)
    unit = settings.units.get(record.unit_code)
    state, due, remaining = "no_due", record.due_at, None
    step_name = step_handler = None
    try:
        tl = timeline(record, events, procedure, calendar)
        if record.is_open:
            st = open_state(tl, calendar, now)
            state, due, remaining = str(st.state), st.due, st.remaining
        else:
            state, due = "closed", tl.due
        step = tl.current_step
        if step is not None:
            names = {s.code: s.name for s in procedure.steps} if procedure else {}
            step_name = names.get(step.code, step.code)
            step_handler = settings.official_name(step.handler)
    except Exception as e:  # the message still goes out, with what is known
        log.warning("case %s: deadline not computed for a message: %s", record.case_code, e)
        state = str(State.NO_DUE)
    if step_name is None and record.current_step:
        step_name = record.current_step
        step_handler = settings.official_name(record.step_handler)
    return CaseView(
        case_code=record.case_code,
        procedure_code=record.procedure_code,
        procedure_name=procedure.name if procedure else record.procedure_code,
        unit_code=record.unit_code,
        unit_name=unit.name if unit else record.unit_code,
        applicant_name=record.applicant_name,
        applicant_phone=record.applicant_phone,
        received_at=record.received_at,
        due_at=due,
        state=state,
        remaining_working_seconds=remaining,
        working_day_seconds=calendar.day_seconds,
        step_name=step_name,
        step_handler=step_handler,
        assignee=settings.official_name(record.assignee),
        stage=stage,
        template=template,
        urgent=urgent,
        finished_at=record.finished_at,
    )


def alert_cases(settings: Settings, claimed: Claimed, now: datetime) -> list[CaseView]:
    """The cases of an alert, once each (its most urgent stage), most urgent first."""
    seen: dict[str, CaseView] = {}
    for item in claimed.items:
        view = case_view(
            settings,
            item.record,
            item.events,
            now,
            stage=item.stage,
            template=item.template,
            urgent=item.urgent,
        )
        known = seen.get(view.case_code)
        if known is None or _order(view) < _order(known):
            seen[view.case_code] = view
    return sorted(seen.values(), key=_order)


def _order(v: CaseView) -> tuple:
    # overdue first among equals: a larger overdue is more urgent than a later stage name
    return urgency_key(v.urgent, v.due_at, v.case_code)


def webhook_cases(views: Iterable[CaseView], tz, mask) -> list[dict[str, Any]]:
    """The `cases` of a webhook body (SPEC 7), applicant masked as on Telegram."""
    return [
        {
            "case_code": v.case_code,
            "procedure_code": v.procedure_code,
            "procedure_name": v.procedure_name,
            "unit_code": v.unit_code,
            "received_at": v.received_at.astimezone(tz).isoformat(),
            "due_at": v.due_at.astimezone(tz).isoformat() if v.due_at else None,
            "state": v.state,
            "remaining_working_minutes": (
                None if v.remaining_working_seconds is None else v.remaining_working_seconds // 60
            ),
            "applicant_name": mask(v.applicant_name) if v.applicant_name else None,
        }
        for v in views
    ]
