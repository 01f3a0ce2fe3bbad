"""Digest schedules are standard cron: Sunday is 0 (and 7), "1-5" is Monday to Friday.
APScheduler 3's own from_crontab counts from Monday = 0 and would fire Tuesday to Saturday."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from watchdog.engine.rules import _dow, cron_trigger

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def fires(expression: str, days: int = 7) -> list[str]:
    trigger = cron_trigger(expression, VN)
    t = datetime(2026, 11, 15, 0, 0, tzinfo=VN)  # a Sunday
    out = []
    while (t := trigger.get_next_fire_time(None, t)) < datetime(2026, 11, 15 + days, tzinfo=VN):
        out.append(t.strftime("%a %H:%M"))
        t += timedelta(seconds=1)
    return out


def test_weekdays_are_monday_to_friday() -> None:
    assert fires("30 7 * * 1-5") == [f"{d} 07:30" for d in ("Mon", "Tue", "Wed", "Thu", "Fri")]


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "fri,sat,sun"),
        ("*/2", "sun,tue,thu,sat"),
        ("1-5/2", "mon,wed,fri"),
        ("0,6", "sun,sat"),
        ("mon-fri", "mon-fri"),
        ("*", "*"),
    ],
)
def test_day_of_week_numbers_become_names(field: str, names: str) -> None:
    assert _dow(field) == names


@pytest.mark.parametrize("bad", ["30 7 * *", "30 7 * * 8", "30 7 * * 5-1"])
def test_bad_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        cron_trigger(bad, VN)
