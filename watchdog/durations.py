"""Durations as admins write them in YAML ("15 working_days", "4 working_hours", "75%").

Pure parsing plus the one function that turns a procedure's time limit into a due instant
(SPEC 4), so the CLI, the importer, the engine and reports all agree on the arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from watchdog.calendar import WorkingCalendar
from watchdog.i18n import N_, _


class Unit(StrEnum):
    WORKING_DAYS = "working_days"
    WORKING_HOURS = "working_hours"
    WORKING_MINUTES = "working_minutes"
    CALENDAR_DAYS = "calendar_days"


_ALIASES = {
    "working_day": Unit.WORKING_DAYS,
    "working_days": Unit.WORKING_DAYS,
    "working_hour": Unit.WORKING_HOURS,
    "working_hours": Unit.WORKING_HOURS,
    "working_minute": Unit.WORKING_MINUTES,
    "working_minutes": Unit.WORKING_MINUTES,
    "calendar_day": Unit.CALENDAR_DAYS,
    "calendar_days": Unit.CALENDAR_DAYS,
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+([a-z_]+)\s*$")
EXAMPLES = N_('"15 working_days", "4 working_hours", "30 calendar_days" or "0 working_days"')


@dataclass(frozen=True)
class Duration:
    """An amount of working or calendar time."""

    amount: float
    unit: Unit

    @classmethod
    def parse(cls, text: object) -> Duration:
        """Parse "N unit"; raises ValueError with the expected form when it is not one."""
        m = _PATTERN.match(str(text)) if isinstance(text, str | int | float) else None
        unit = _ALIASES.get(m.group(2)) if m else None
        if m is None or unit is None:
            raise ValueError(
                _("expected a duration such as {examples}, got {value}").format(
                    examples=_(EXAMPLES), value=repr(text)
                )
            )
        amount = float(m.group(1))
        if unit is Unit.CALENDAR_DAYS and amount != int(amount):
            raise ValueError(
                _(
                    "expected a duration such as {examples} (calendar days are whole), got {value}"
                ).format(examples=_(EXAMPLES), value=repr(text))
            )
        return cls(amount, unit)

    def __str__(self) -> str:
        amount = int(self.amount) if self.amount == int(self.amount) else self.amount
        return f"{amount} {self.unit.value}"

    def working_seconds(self, calendar: WorkingCalendar) -> int:
        """Length in working seconds; calendar days have no fixed working length."""
        if self.unit is Unit.WORKING_DAYS:
            return round(self.amount * calendar.day_seconds)
        if self.unit is Unit.WORKING_HOURS:
            return round(self.amount * 3600)
        if self.unit is Unit.WORKING_MINUTES:
            return round(self.amount * 60)
        raise ValueError("calendar days are not a working-time length")


def compute_due(
    calendar: WorkingCalendar,
    received: datetime,
    limit: Duration,
    start: datetime | None = None,
) -> datetime:
    """Due instant of a case received at `received` under a time limit (SPEC 4).

    `start` is the start of the clock when the caller already has it.
    """
    start = start or calendar.clock_start(received)
    if limit.unit is Unit.CALENDAR_DAYS:
        # Civil Code 2015 art. 148: counted from the date of the clock's start (a receipt after
        # the cutoff or on a day off starts on the next working day), ending at the close of a
        # working day: the date itself when it works, else the next working day.
        day = calendar.local(start).date() + timedelta(days=int(limit.amount))
        return calendar.close(day)
    if limit.amount == 0 and limit.unit is Unit.WORKING_DAYS:  # same-day procedures
        return calendar.day_close_of(start)
    return calendar.add_working(start, limit.working_seconds(calendar))
