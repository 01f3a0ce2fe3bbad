"""Rule evaluation: case state + stages + now -> firings, findings and the next instant to look.

Pure. For each stage the case (or its current step) has a *window*: the instant the condition
starts to hold and, for conditions that stop holding by themselves, the instant it ends. Inside
the window the stage fires once, then once per `repeat`; each firing carries a key (case,
stage, step, version, repeat number) that the store keeps unique. The smallest future instant
over all stages is the case's `next_check_at`: until then nothing about it can change, unless
the case itself changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from watchdog.calendar import WorkingCalendar
from watchdog.config import Settings
from watchdog.domain import CaseEvent, CaseRecord, Fired
from watchdog.engine.deadline import Standing, StepRun, Timeline, standing, timeline
from watchdog.engine.recipients import Delivery, deliveries_for, resolve_recipients
from watchdog.engine.rules import CompiledStage, WhenKind
from watchdog.i18n import N_, _, decimal
from watchdog.timefmt import show

ONE_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class FiringKey:
    stage: str
    step: str
    version: str
    repeat_no: int


@dataclass(frozen=True, slots=True)
class Firing:
    case_id: int | None
    case_code: str
    key: FiringKey
    fire_at: datetime
    due: datetime | None
    deliveries: tuple[Delivery, ...]
    urgent: bool
    template: str
    attach: str | None


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    subject: str
    detail: str


@dataclass
class Evaluation:
    firings: list[Firing] = field(default_factory=list)
    next_check_at: datetime | None = None
    findings: list[Finding] = field(default_factory=list)
    standing: Standing | None = None  # what the reads store (None when it cannot be computed)


class _Window(NamedTuple):  # a tuple: made seven times per case, built faster than a dataclass
    first: datetime
    end: datetime | None  # exclusive; None = holds until the case changes
    version: str
    step: str


def _window(
    s: CompiledStage,
    tl: Timeline,
    run: StepRun | None,
    calendar: WorkingCalendar,
    add: Callable[[datetime, int], datetime],
) -> _Window | None:
    kind, value = s.kind, s.value
    if s.extended is not None and (tl.extensions > 0) != s.extended:
        return None
    if kind is WhenKind.WAITING:
        if tl.waiting_since is None:
            return None
        first = add(tl.waiting_since, value.working_seconds(calendar))
        return _Window(first, None, f"{tl.due_version}@{_stamp(tl.waiting_since)}", "")
    if tl.waiting_since is not None:
        return None  # the clock is stopped while the applicant is asked for documents
    if s.step_scope:
        if run is None or run.due is None:
            return None
        start, due, step = calendar.next_working_instant(run.started_at), run.due, run.code
        version, waited = f"{tl.due_version}@{_stamp(run.started_at)}", 0
    else:
        if tl.due is None:
            return None
        start, due, step, version, waited = tl.start, tl.due, "", str(tl.due_version), tl.waited
    if kind is WhenKind.REMAINING:
        first = add(due, -value.working_seconds(calendar))
        return _Window(first, due, version, step)
    if kind is WhenKind.ELAPSED:
        total = max(0, calendar.working_seconds_between(start, due) - waited)
        first = add(start, waited + round(value * total))
        return _Window(first, due, version, step)
    if kind is WhenKind.OVERDUE:
        late = value.working_seconds(calendar)
        first = add(due, late) if late else due + ONE_SECOND
        return _Window(first, None, version, step)
    if kind is WhenKind.ON_DUE_DAY:
        local_due = calendar.local(due)
        first = datetime.combine(local_due.date(), value, calendar.tz)
        return _Window(first, due, version, step) if first < due else None
    if kind is WhenKind.IDLE:
        since = max(tl.last_activity, run.started_at) if run else tl.last_activity
        first = add(since, value.working_seconds(calendar))
        return _Window(first, None, f"{version}@{_stamp(since)}", step)
    raise AssertionError(f"unhandled condition {kind}")


def _windows(
    stages: Sequence[CompiledStage],
    tl: Timeline,
    run: StepRun | None,
    calendar: WorkingCalendar,
    now: datetime,
    add: Callable[[datetime, int], datetime],
) -> dict[str, _Window | None]:
    """Every stage's window, skipping the work that cannot change the outcome.

    An `overdue: X>0` window of a due still in the future opens after that due; when another
    window opens no later than the due, it can be neither active nor the next instant to look,
    so it is left for a later evaluation. Most cases are on track, so this saves most of the
    calendar arithmetic of a full plan.
    """
    windows: dict[str, _Window | None] = {}
    deferred: list[tuple[CompiledStage, datetime]] = []
    soonest: datetime | None = None  # the first window still to open
    waiting = tl.waiting_since is not None
    for s in stages:
        due = (run.due if run else None) if s.step_scope else tl.due
        if s.deferrable and due is not None and not waiting and due > now:
            deferred.append((s, due))
            continue
        w = windows[s.key] = _window(s, tl, run, calendar, add)
        if (
            w is not None
            and w.first > now
            and (w.end is None or w.first < w.end)
            and (soonest is None or w.first < soonest)
        ):
            soonest = w.first
    if deferred:
        for s, due in deferred:
            skip = soonest is not None and soonest <= due
            windows[s.key] = None if skip else _window(s, tl, run, calendar, add)
    return windows


def _stamp(t: datetime) -> str:
    return f"{int(t.timestamp())}"


def evaluate(
    case: CaseRecord,
    events: Sequence[CaseEvent],
    stages: Sequence[CompiledStage],
    settings: Settings,
    fired: Mapping[tuple[str, str, str], Fired],
    now: datetime,
) -> Evaluation:
    """Everything the engine decides about one case at `now`."""
    calendar = settings.calendar_for(case.unit_code)
    # The calendar's instants are in its zone: comparing two datetimes of one tzinfo is a
    # field comparison, across zones it asks both for their offsets (a fifth of a plan).
    now = now.astimezone(calendar.tz)
    procedure = settings.procedures.get(case.procedure_code)
    tl = timeline(case, events, procedure, calendar)
    memo: dict[tuple[datetime, int], datetime] = {}

    def add(t: datetime, seconds: int) -> datetime:  # stages often share an instant
        key = (t, seconds)
        found = memo.get(key)
        if found is None:
            found = memo[key] = calendar.add_working(t, seconds)
        return found

    result = Evaluation(
        findings=findings_of(case, tl, settings, calendar),
        standing=standing(case, tl, calendar, add),
    )
    if not case.is_open:
        return result
    run = tl.current_step
    windows = _windows(stages, tl, run, calendar, now, add)
    active = {
        key
        for key, w in windows.items()
        if w is not None and w.first <= now and (w.end is None or now < w.end)
    }
    inhibitors: dict[str, list[_Window]] = {}
    for s in stages:
        if s.inhibits and s.key in active:
            for other in s.inhibits:
                inhibitors.setdefault(other, []).append(windows[s.key])  # type: ignore[arg-type]
    upcoming: list[datetime] = []
    for s in stages:
        w = windows[s.key]
        if w is None:
            continue
        if now < w.first:
            if w.end is None or w.first < w.end:
                upcoming.append(w.first)
            continue
        if s.key not in active:
            continue  # the window has closed
        before = fired.get((s.key, w.step, w.version))
        repeat_s = s.repeat.working_seconds(calendar) if s.repeat else 0
        n = calendar.working_seconds_between(w.first, now) // repeat_s if repeat_s else 0
        if before is not None and before.acknowledged and s.until_ack:
            continue  # acknowledged: no more repeats of this episode
        if repeat_s:
            nxt = calendar.add_working(w.first, (n + 1) * repeat_s)
            if w.end is None or nxt < w.end:
                upcoming.append(nxt)
        if s.key in inhibitors:
            # look again when the inhibiting windows close: this stage may fire then
            upcoming.extend(iw.end for iw in inhibitors[s.key] if iw.end is not None)
            continue
        fire_at = calendar.add_working(w.first, n * repeat_s) if n else w.first
        if before is not None and before.covers(n, fire_at):
            continue
        # a repeat number is never reused, even when a new interval counts fewer repeats
        number = n if before is None else max(n, before.last_repeat + 1)
        result.firings.append(_firing(case, s, w, number, fire_at, tl, run, settings, now))
    result.next_check_at = min(upcoming) if upcoming else None
    return result


def _firing(
    case: CaseRecord,
    s: CompiledStage,
    w: _Window,
    n: int,
    fire_at: datetime,
    tl: Timeline,
    run: StepRun | None,
    settings: Settings,
    now: datetime,
) -> Firing:
    stage = s.stage
    step_scope = stage.scope == "step" and run is not None
    handler = run.handler if run else case.step_handler
    unit = case.unit_code
    if step_scope and handler in settings.officials:
        unit = settings.officials[handler].unit
    local_day = settings.calendar_for(case.unit_code).local(now).date()
    recipients = resolve_recipients(
        stage.notify,
        settings,
        unit_code=unit,
        assignee=case.assignee,
        step_handler=handler,
        on=local_day,
    )
    deliveries = tuple(d for r in recipients for d in deliveries_for(r, stage, settings))
    return Firing(
        case_id=case.id,
        case_code=case.case_code,
        key=FiringKey(s.key, w.step, w.version, n),
        fire_at=fire_at,
        due=run.due if step_scope else tl.due,
        deliveries=deliveries,
        urgent=stage.urgent,
        template=stage.template_name,
        attach=stage.attach,
    )


def findings_of(
    case: CaseRecord, tl: Timeline, settings: Settings, calendar: WorkingCalendar
) -> list[Finding]:
    """Findings for the admin. Extensions the law does not accept are found on open and
    closed cases alike (they decide whether a closed case was late); the data-quality ones
    only on open cases."""
    code = case.case_code
    refused = (
        (
            "late_extension",
            tl.late_extensions,
            N_(
                "extension recorded {at}, with less than the required notice before the due: "
                "the due stays where it was"
            ),
        ),
        (
            "second_extension",
            tl.second_extensions,
            N_(
                "second extension recorded {at}; the law allows only one: the due stays where "
                "it was"
            ),
        ),
    )
    out = [
        Finding(kind, code, _(text).format(at=show(times[0], calendar.tz)))
        for kind, times, text in refused
        if times
    ]
    if not case.is_open:
        return out
    if case.procedure_code not in settings.procedures:
        out.append(
            Finding(
                "unknown_procedure",
                code,
                _("procedure {code} is not in the configuration").format(code=case.procedure_code),
            )
        )
    if case.unit_code not in settings.units:
        out.append(
            Finding(
                "unknown_unit",
                code,
                _("unit {code} is not in the configuration").format(code=case.unit_code),
            )
        )
    if not case.assignee:
        out.append(Finding("no_assignee", code, _("open case without an assignee")))
    elif case.assignee not in settings.officials:
        out.append(
            Finding(
                "unknown_official",
                code,
                _("assignee {id} is not in the configuration").format(id=case.assignee),
            )
        )
    if tl.source_due is not None and tl.computed_due is not None:
        gap = calendar.working_seconds_between(tl.computed_due, tl.source_due)
        if abs(gap) > calendar.day_seconds:
            out.append(
                Finding(
                    "due_mismatch",
                    code,
                    _(
                        "appointment {appointment} differs from the computed due {due} by "
                        "{gap} working days"
                    ).format(
                        appointment=show(tl.source_due, calendar.tz),
                        due=show(tl.computed_due, calendar.tz),
                        gap=decimal(gap / calendar.day_seconds, 1, sign=True),
                    ),
                )
            )
    run = tl.current_step
    if run is not None and not run.handler:
        out.append(
            Finding(
                "step_without_handler",
                code,
                _("step {step} has no handler").format(step=run.code),
            )
        )
    return out
