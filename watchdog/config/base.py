"""The base of the configuration's models and the types of its fields (spans, times of day,
durations, codes): imported by `models` and by the sections kept in modules of their own."""

from __future__ import annotations

import itertools
import re
from datetime import time, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
)

from watchdog.domain import procedure_code
from watchdog.durations import Duration, Unit
from watchdog.i18n import _, integer

_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    m = _TIME.match(str(value))
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ValueError(
            _('expected a time of day such as "15:00", got {value}').format(value=repr(value))
        )
    return time(int(m.group(1)), int(m.group(2)))


def parse_office_hours(value: Any) -> tuple[tuple[time, time], ...]:
    """ "07:00-11:30, 13:30-17:00" or a list of "HH:MM-HH:MM" strings."""
    parts = value if isinstance(value, list) else str(value).split(",")
    periods = []
    for part in parts:
        a, sep, b = str(part).partition("-")
        if not sep:
            raise ValueError(
                _('expected periods such as "07:00-11:30, 13:30-17:00", got {value}').format(
                    value=repr(value)
                )
            )
        start, end = parse_time(a), parse_time(b)
        if end <= start:
            raise ValueError(
                _("office period {period} ends before it starts").format(period=repr(part.strip()))
            )
        periods.append((start, end))
    periods.sort()
    for (_start, end), (start, _end) in itertools.pairwise(periods):
        if start < end:
            raise ValueError(_("office periods overlap in {value}").format(value=repr(value)))
    return tuple(periods)


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|seconds?|m|min|minutes?|h|hours?)\s*$")


def parse_span(value: Any) -> timedelta:
    """Wall-clock spans for delivery settings: "90s", "5m", "2 hours", or plain seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    m = _SPAN.match(str(value))
    if not m:
        raise ValueError(
            _('expected a span such as "90s", "5m" or "2h", got {value}').format(value=repr(value))
        )
    factor = {"s": 1, "m": 60, "h": 3600}[m.group(2)[0]]
    return timedelta(seconds=float(m.group(1)) * factor)


# Largest duration a configuration may give, per unit: about ten years (see check_duration_bounds).
MAX_DURATION: dict[Unit, int] = {
    Unit.WORKING_DAYS: 2_500,
    Unit.WORKING_HOURS: 20_000,
    Unit.WORKING_MINUTES: 1_200_000,
    Unit.CALENDAR_DAYS: 3_650,
}


def check_duration_bounds(duration: Duration, value: Any = None) -> Duration:
    """The duration itself when it is within MAX_DURATION, else ValueError naming the bound.

    Why about ten years: the working calendar computes the years 1900-2200 only
    (watchdog.calendar), and nothing an office does by law (a procedure's time limit, a step's
    allotment, a rule's `remaining`/`overdue`/`idle`/`waiting` or `repeat`) comes near ten
    years; the longest procedures count months. A larger value is a typo (an extra zero, a
    number pasted into the wrong cell) and would put dues past the calendar's last year, where
    every command that computes the case fails. The bounds:

    - 2,500 working days: ~10 years at the ~245-250 working days of a VN year;
    - 20,000 working hours: 2,500 days of the default 8 office hours (on a shorter office day
      it stretches further, yet stays within a century, computable for any case received now);
    - 1,200,000 working minutes: the same 20,000 hours;
    - 3,650 calendar days: 10 years.

    A case received near the calendar's edge (year 2200) can still reach past it: the engine,
    the board and the report skip such a case and record an `evaluation_error` finding.
    """
    bound = MAX_DURATION[duration.unit]
    if duration.amount > bound:
        shown = value if isinstance(value, str) else str(duration)
        raise ValueError(
            _(
                "expected at most {bound} {unit} (about ten years; the working calendar covers "
                "the years 1900-2200), got {value}"
            ).format(bound=integer(bound), unit=duration.unit.value, value=repr(shown))
        )
    return duration


def parse_duration(value: Any) -> Duration:
    """A duration within MAX_DURATION: procedure limits and step allotments."""
    d = value if isinstance(value, Duration) else Duration.parse(value)
    return check_duration_bounds(d, value)


TimeOfDay = Annotated[time, BeforeValidator(parse_time)]
OfficeHours = Annotated[tuple[tuple[time, time], ...], BeforeValidator(parse_office_hours)]
Span = Annotated[timedelta, BeforeValidator(parse_span)]
DurationField = Annotated[
    Duration, BeforeValidator(parse_duration), PlainSerializer(str, return_type=str)
]
Code = Annotated[
    str, BeforeValidator(lambda v: str(v).strip() if isinstance(v, int | float) else v)
]


def _procedure_code(value: Any) -> Any:
    """A procedure's code: unquoted YAML `1.012790` is the number 1.01279, restored to the
    national d.dddddd form "1.012790"; a number no such code gives (1.0127901) is refused, never
    truncated. A quoted code is taken as written."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return procedure_code(value)
    return value


ProcedureCode = Annotated[str, BeforeValidator(_procedure_code)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
