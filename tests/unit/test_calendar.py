"""Unit tests for WorkingCalendar and compute_due (SPEC 4), default VN calendar.

Default calendar: office hours 07:00-11:30 and 13:30-17:00 (8 working hours a day),
cutoff 15:00, zone Asia/Ho_Chi_Minh (+07:00, no DST), holidays from `holidays.VN`.
Every expected instant below is worked out by hand; the comment next to it shows the sum.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from watchdog.calendar import WorkingCalendar
from watchdog.durations import Duration, Unit, compute_due

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H = 3600
M = 60
DAY = 8 * H  # working seconds of a full default working day

CAL = WorkingCalendar()


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=VN)


def due(received: datetime, text: str, cal: WorkingCalendar = CAL) -> datetime:
    return compute_due(cal, received, Duration.parse(text))


def assert_same_instant(got: datetime, expected: datetime) -> None:
    """Same instant AND expressed in the calendar's zone (+07:00)."""
    assert got == expected, f"got {got.isoformat()}, expected {expected.isoformat()}"
    assert got.utcoffset() == timedelta(hours=7), got.isoformat()


# ----- the SPEC example --------------------------------------------------------------------


def test_spec_example_tet_2026():
    # Fri 13/02 09:00 -> 17:00 = 2h30 + 3h30 = 6h; 18h left.
    # Sat 14, Sun 15, Tết Mon 16 - Fri 20, Sat 21, Sun 22 skipped.
    # Mon 23/02: 8h (10h left), Tue 24/02: 8h (2h left), Wed 25/02 07:00 + 2h = 09:00.
    got = due(vn(2026, 2, 13, 9), "3 working_days")
    assert_same_instant(got, vn(2026, 2, 25, 9))
    assert got.isoformat() == "2026-02-25T09:00:00+07:00"


def test_spec_example_received_in_utc():
    # 02:00 UTC is 09:00 in Hà Nội: same case as the SPEC example.
    received = datetime(2026, 2, 13, 2, 0, tzinfo=UTC)
    assert_same_instant(due(received, "3 working_days"), vn(2026, 2, 25, 9))


# ----- holidays ----------------------------------------------------------------------------


def test_tet_2026_days_are_off():
    for d in range(16, 21):  # Mon 16 .. Fri 20/02/2026
        assert not CAL.is_working_day(date(2026, 2, d)), d
        assert CAL.periods_of(date(2026, 2, d)) == []
    assert CAL.is_working_day(date(2026, 2, 13))  # Fri before Tết
    assert CAL.is_working_day(date(2026, 2, 23))  # Mon after Tết
    # Working days in [13/02, 24/02): only Fri 13 and Mon 23.
    assert CAL.working_days_between(date(2026, 2, 13), date(2026, 2, 24)) == 2
    assert list(CAL.working_days_in(date(2026, 2, 13), date(2026, 2, 23))) == [
        date(2026, 2, 13),
        date(2026, 2, 23),
    ]
    assert CAL.next_working_day(date(2026, 2, 13)) == date(2026, 2, 23)


def test_received_during_tet_starts_after_tet():
    # Tue 17/02/2026 (Tết) 10:00 -> clock starts Mon 23/02 07:00; 1 day -> Mon 23/02 17:00.
    assert_same_instant(CAL.clock_start(vn(2026, 2, 17, 10)), vn(2026, 2, 23, 7))
    assert_same_instant(due(vn(2026, 2, 17, 10), "1 working_day"), vn(2026, 2, 23, 17))


def test_two_days_across_tet():
    # Thu 12/02 10:00 -> 17:00: 1h30 + 3h30 = 5h; Fri 13: 8h (13h); 3h left.
    # Next working day Mon 23/02: 07:00 + 3h = 10:00.
    assert_same_instant(due(vn(2026, 2, 12, 10), "2 working_days"), vn(2026, 2, 23, 10))


def test_hung_kings_2026_observed_monday():
    # Hùng Kings 10/3 lunar = Sun 26/04/2026; holidays.VN gives Mon 27/04 as observed day.
    assert not CAL.is_working_day(date(2026, 4, 26))
    assert not CAL.is_working_day(date(2026, 4, 27))
    assert CAL.is_working_day(date(2026, 4, 28))
    # Fri 24/04 10:00 -> 17:00 = 5h; 3h left; Sat 25, Sun 26, Mon 27 off -> Tue 28/04 10:00.
    assert_same_instant(due(vn(2026, 4, 24, 10), "1 working_day"), vn(2026, 4, 28, 10))


def test_reunification_and_labour_day_2026():
    # 30/4/2026 is a Thursday, 1/5 a Friday: both off, then the weekend.
    assert not CAL.is_working_day(date(2026, 4, 30))
    assert not CAL.is_working_day(date(2026, 5, 1))
    # Wed 29/04 09:00 -> 17:00 = 6h; 2h left; Thu 30, Fri 1, Sat 2, Sun 3 off -> Mon 04/05 09:00.
    assert_same_instant(due(vn(2026, 4, 29, 9), "1 working_day"), vn(2026, 5, 4, 9))
    # Received on the holiday itself -> clock starts Mon 04/05 07:00.
    assert_same_instant(CAL.clock_start(vn(2026, 4, 30, 9)), vn(2026, 5, 4, 7))


def test_vietnam_cultural_day_24_11_from_2026():
    assert not CAL.is_working_day(date(2026, 11, 24))  # Tuesday, holiday from 2026
    assert CAL.is_working_day(date(2025, 11, 24))  # Monday, not yet a holiday in 2025
    # Mon 23/11/2026 16:00 is after the cutoff -> next working day is Wed 25/11 (Tue is off).
    assert_same_instant(CAL.clock_start(vn(2026, 11, 23, 16)), vn(2026, 11, 25, 7))
    assert_same_instant(due(vn(2026, 11, 23, 16), "1 working_day"), vn(2026, 11, 25, 17))
    # Mon 23/11 09:00 -> 17:00 = 6h; 2h left; Tue 24 off -> Wed 25/11 09:00.
    assert_same_instant(due(vn(2026, 11, 23, 9), "1 working_day"), vn(2026, 11, 25, 9))


def test_national_day_2025_with_adjacent_monday():
    # 2025: Mon 1/9 and Tue 2/9 off.
    assert not CAL.is_working_day(date(2025, 9, 1))
    assert not CAL.is_working_day(date(2025, 9, 2))
    assert CAL.is_working_day(date(2025, 9, 3))
    # Fri 29/08 14:00 -> 17:00 = 3h; 5h left; Sat..Tue off;
    # Wed 03/09 07:00-11:30 = 4h30 (30 min left) -> 13:30 + 30 min = 14:00.
    assert_same_instant(due(vn(2025, 8, 29, 14), "1 working_day"), vn(2025, 9, 3, 14))


def test_national_day_2026_with_swapped_days():
    # 2026: Tue 1/9 and Wed 2/9 off; Mon 31/8 off, swapped with Saturday 22/08 (worked).
    for d in (date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2)):
        assert not CAL.is_working_day(d), d
    assert CAL.is_working_day(date(2026, 8, 22))
    assert CAL.is_working_day(date(2026, 9, 3))
    # Fri 28/08 09:00 -> 17:00 = 6h; 2h left; Sat 29 .. Wed 02/09 off -> Thu 03/09 09:00.
    assert_same_instant(due(vn(2026, 8, 28, 9), "1 working_day"), vn(2026, 9, 3, 9))


def test_swapped_saturday_26_04_2025_is_worked_friday_02_05_off():
    assert CAL.is_working_day(date(2025, 4, 26))  # Saturday, worked
    assert not CAL.is_working_day(date(2025, 5, 2))  # Friday, off in exchange
    # A swapped Saturday has full office hours, not a Saturday morning.
    assert CAL.periods_of(date(2025, 4, 26)) == [
        (vn(2025, 4, 26, 7), vn(2025, 4, 26, 11, 30)),
        (vn(2025, 4, 26, 13, 30), vn(2025, 4, 26, 17)),
    ]
    # Fri 25/04 16:00 is after the cutoff -> next working day is Sat 26/04, 07:00.
    assert_same_instant(CAL.clock_start(vn(2025, 4, 25, 16)), vn(2025, 4, 26, 7))
    assert_same_instant(due(vn(2025, 4, 25, 16), "1 working_day"), vn(2025, 4, 26, 17))
    # Tue 29/04 09:00 -> 17:00 = 6h; 10h left; Wed 30/4, Thu 1/5, Fri 2/5, Sat 3, Sun 4 off;
    # Mon 05/05: 8h (2h left) -> Tue 06/05 09:00.
    assert_same_instant(due(vn(2025, 4, 29, 9), "2 working_days"), vn(2025, 5, 6, 9))


def test_swapped_saturday_22_08_2026_is_worked():
    # Fri 21/08/2026 15:30 after cutoff -> Sat 22/08 07:00 (a worked Saturday).
    assert_same_instant(CAL.clock_start(vn(2026, 8, 21, 15, 30)), vn(2026, 8, 22, 7))
    # Same-day limit -> close of that Saturday.
    assert_same_instant(due(vn(2026, 8, 21, 15, 30), "0 working_days"), vn(2026, 8, 22, 17))
    assert CAL.is_working_instant(vn(2026, 8, 22, 16, 59, 59))


def test_ordinary_weekend_is_off():
    assert not CAL.is_working_day(date(2026, 3, 14))  # Saturday
    assert not CAL.is_working_day(date(2026, 3, 15))  # Sunday
    assert CAL.is_working_day(date(2026, 3, 16))  # Monday


# ----- cutoff ------------------------------------------------------------------------------


def test_cutoff_1459_counts_from_then():
    # Tue 10/03/2026 14:59 is before the cutoff: S = 14:59.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 10, 14, 59)), vn(2026, 3, 10, 14, 59))
    # 14:59 -> 17:00 = 2h01; 5h59 left; Wed 07:00-11:30 = 4h30 (1h29 left) -> 13:30+1h29 = 14:59.
    assert_same_instant(due(vn(2026, 3, 10, 14, 59), "1 working_day"), vn(2026, 3, 11, 14, 59))


@pytest.mark.parametrize(("h", "mi"), [(15, 0), (16, 30), (16, 59), (17, 0)])
def test_cutoff_from_1500_counts_from_next_day_opening(h, mi):
    # Tue 10/03/2026 at/after 15:00 -> S = Wed 11/03 07:00; 1 day -> Wed 17:00.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 10, h, mi)), vn(2026, 3, 11, 7))
    assert_same_instant(due(vn(2026, 3, 10, h, mi), "1 working_day"), vn(2026, 3, 11, 17))


def test_cutoff_on_friday_jumps_weekend():
    # Fri 13/03/2026 15:00 -> Mon 16/03 07:00.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 13, 15)), vn(2026, 3, 16, 7))


def test_cutoff_before_tet_jumps_tet():
    # Fri 13/02/2026 15:30 -> next working day Mon 23/02 07:00; same-day limit -> 17:00.
    assert_same_instant(CAL.clock_start(vn(2026, 2, 13, 15, 30)), vn(2026, 2, 23, 7))
    assert_same_instant(due(vn(2026, 2, 13, 15, 30), "0 working_days"), vn(2026, 2, 23, 17))


def test_received_on_saturday_or_holiday_starts_next_opening():
    # Sat 14/03/2026 09:00 and 16:00 (after the cutoff hour, day off anyway) -> Mon 16/03 07:00.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 14, 9)), vn(2026, 3, 16, 7))
    assert_same_instant(CAL.clock_start(vn(2026, 3, 14, 16)), vn(2026, 3, 16, 7))
    # Holiday Fri 01/05/2026 10:00 -> Mon 04/05 07:00.
    assert_same_instant(CAL.clock_start(vn(2026, 5, 1, 10)), vn(2026, 5, 4, 7))
    # 4 working hours from Mon 16/03 07:00 -> 11:00.
    assert_same_instant(due(vn(2026, 3, 14, 9), "4 working_hours"), vn(2026, 3, 16, 11))


# ----- lunch break -------------------------------------------------------------------------


def test_received_at_lunch_starts_1330():
    assert_same_instant(CAL.clock_start(vn(2026, 3, 10, 12)), vn(2026, 3, 10, 13, 30))
    assert_same_instant(CAL.clock_start(vn(2026, 3, 10, 11, 30)), vn(2026, 3, 10, 13, 30))
    # 2 working hours from 13:30 -> 15:30.
    assert_same_instant(due(vn(2026, 3, 10, 12), "2 working_hours"), vn(2026, 3, 10, 15, 30))


def test_thirty_minutes_across_lunch():
    # 11:15 + 30 min: 15 min before 11:30, 15 min after 13:30 -> 13:45.
    assert_same_instant(CAL.add_working(vn(2026, 3, 10, 11, 15), 30 * M), vn(2026, 3, 10, 13, 45))


def test_landing_exactly_on_period_end_gives_the_end():
    # 11:00 + 30 min ends exactly at 11:30: earliest instant is 11:30, not 13:30.
    assert_same_instant(CAL.add_working(vn(2026, 3, 10, 11), 30 * M), vn(2026, 3, 10, 11, 30))
    # 16:30 + 30 min -> 17:00 the same day, not 07:00 the next day.
    assert_same_instant(CAL.add_working(vn(2026, 3, 10, 16, 30), 30 * M), vn(2026, 3, 10, 17))


def test_lunch_is_not_working_time():
    assert CAL.working_seconds_between(vn(2026, 3, 10, 11, 30), vn(2026, 3, 10, 13, 30)) == 0
    # 11:00 -> 14:00 = 30 min + 30 min.
    assert CAL.working_seconds_between(vn(2026, 3, 10, 11), vn(2026, 3, 10, 14)) == H
    assert not CAL.is_working_instant(vn(2026, 3, 10, 12))
    assert not CAL.is_working_instant(vn(2026, 3, 10, 11, 30))  # periods are [start, end)
    assert CAL.is_working_instant(vn(2026, 3, 10, 11, 29, 59))
    assert CAL.is_working_instant(vn(2026, 3, 10, 13, 30))


# ----- instants outside office hours -------------------------------------------------------


def test_early_morning_starts_at_opening():
    # Tue 10/03 06:00 -> 07:00 the same day; 4 working hours -> 11:00.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 10, 6)), vn(2026, 3, 10, 7))
    assert_same_instant(due(vn(2026, 3, 10, 6), "4 working_hours"), vn(2026, 3, 10, 11))
    assert not CAL.is_working_instant(vn(2026, 3, 10, 6, 59, 59))
    assert CAL.is_working_instant(vn(2026, 3, 10, 7))


def test_evening_starts_next_morning():
    # Tue 10/03 17:30 -> Wed 11/03 07:00.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 10, 17, 30)), vn(2026, 3, 11, 7))
    assert_same_instant(CAL.next_working_instant(vn(2026, 3, 10, 17, 30)), vn(2026, 3, 11, 7))
    assert_same_instant(CAL.next_working_instant(vn(2026, 3, 10, 17)), vn(2026, 3, 11, 7))
    assert not CAL.is_working_instant(vn(2026, 3, 10, 17))


def test_night_across_midnight():
    # Tue 23:59 and Wed 00:30 both start Wed 07:00; nothing is worked overnight.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 10, 23, 59)), vn(2026, 3, 11, 7))
    assert_same_instant(CAL.clock_start(vn(2026, 3, 11, 0, 30)), vn(2026, 3, 11, 7))
    assert CAL.working_seconds_between(vn(2026, 3, 10, 17, 30), vn(2026, 3, 11, 6)) == 0
    # Tue 16:00 -> Wed 08:00 = 1h + 1h.
    assert CAL.working_seconds_between(vn(2026, 3, 10, 16), vn(2026, 3, 11, 8)) == 2 * H
    # 1 working hour from Tue 20:00 -> Wed 08:00.
    assert_same_instant(CAL.add_working(vn(2026, 3, 10, 20), H), vn(2026, 3, 11, 8))
    # Tue 16:00 = 09:00 UTC; +2h working crosses the night -> Wed 08:00 local.
    t = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    assert_same_instant(CAL.add_working(t, 2 * H), vn(2026, 3, 11, 8))


def test_sunday():
    # Sun 15/03/2026 10:00 -> Mon 16/03 07:00; 1 working hour from Sunday -> Mon 08:00.
    assert_same_instant(CAL.clock_start(vn(2026, 3, 15, 10)), vn(2026, 3, 16, 7))
    assert_same_instant(CAL.add_working(vn(2026, 3, 15, 10), H), vn(2026, 3, 16, 8))
    assert not CAL.is_working_instant(vn(2026, 3, 15, 10))
    # Fri 13/03 16:00 -> Mon 16/03 08:00 = 1h + 1h; the weekend counts for nothing.
    assert CAL.working_seconds_between(vn(2026, 3, 13, 16), vn(2026, 3, 16, 8)) == 2 * H


# ----- durations ---------------------------------------------------------------------------


def test_n_working_days_from_opening_ends_at_close_of_nth_day():
    # Mon 09/03/2026 07:00: day 1 is Monday, day 5 is Friday 13/03 -> 17:00.
    assert_same_instant(due(vn(2026, 3, 9, 7), "5 working_days"), vn(2026, 3, 13, 17))
    # 1 day from an opening ends at that day's close, not at the next opening.
    assert_same_instant(due(vn(2026, 3, 9, 7), "1 working_day"), vn(2026, 3, 9, 17))
    # Received 06:00 = from the opening too.
    assert_same_instant(due(vn(2026, 3, 9, 6), "2 working_days"), vn(2026, 3, 10, 17))
    # 6 days from Mon 09/03 07:00: Mon..Fri, then Mon 16/03 -> 17:00.
    assert_same_instant(due(vn(2026, 3, 9, 7), "6 working_days"), vn(2026, 3, 16, 17))


def test_fifteen_working_days():
    # Mon 02/03/2026 07:00, 15 working days (no holiday in March 2026):
    # weeks 02-06, 09-13, 16-20/03 -> close of Fri 20/03.
    assert_same_instant(due(vn(2026, 3, 2, 7), "15 working_days"), vn(2026, 3, 20, 17))


def test_working_days_from_mid_day():
    # Mon 09/03 10:00 + 8h: Mon 10:00-17:00 = 5h; 3h left -> Tue 10:00.
    assert_same_instant(due(vn(2026, 3, 9, 10), "1 working_day"), vn(2026, 3, 10, 10))
    # Half a day = 4h: 10:00-11:30 1h30, 2h30 left -> 13:30 + 2h30 = 16:00.
    assert_same_instant(due(vn(2026, 3, 9, 10), "0.5 working_days"), vn(2026, 3, 9, 16))


def test_n_working_hours():
    # Mon 09/03 10:00 + 4h: 1h30 before lunch, 2h30 after -> 16:00.
    assert_same_instant(due(vn(2026, 3, 9, 10), "4 working_hours"), vn(2026, 3, 9, 16))
    # + 8h: 5h on Monday, 3h on Tuesday -> Tue 10:00.
    assert_same_instant(due(vn(2026, 3, 9, 10), "8 working_hours"), vn(2026, 3, 10, 10))
    # + 1h from 14:59 -> 15:59 (before the cutoff, so S = 14:59).
    assert_same_instant(due(vn(2026, 3, 9, 14, 59), "1 working_hour"), vn(2026, 3, 9, 15, 59))
    # Minutes: 11:00 + 45 min -> 11:30 is 30 min, 15 min after 13:30 -> 13:45.
    assert_same_instant(due(vn(2026, 3, 9, 11), "45 working_minutes"), vn(2026, 3, 9, 13, 45))


def test_n_calendar_days():
    # Mon 09/03/2026 + 30 days = Wed 08/04/2026 -> close 17:00.
    assert_same_instant(due(vn(2026, 3, 9, 10), "30 calendar_days"), vn(2026, 4, 8, 17))
    # Counted from the date of the clock's start (Civil Code art. 148, SPEC 4): Mon 16:00 is
    # after the cutoff, S = Tue 10/03 07:00; + 1 day = Wed 11/03 -> close 17:00.
    assert_same_instant(due(vn(2026, 3, 9, 16), "1 calendar_day"), vn(2026, 3, 11, 17))
    # Received Saturday 14/03 10:00: S = Mon 16/03 07:00; + 3 days = Thu 19/03 -> 17:00.
    assert_same_instant(due(vn(2026, 3, 14, 10), "3 calendar_days"), vn(2026, 3, 19, 17))


def test_calendar_days_landing_on_day_off():
    # Mon 09/03 + 5 = Sat 14/03 (off) -> close of next working day Mon 16/03.
    assert_same_instant(due(vn(2026, 3, 9, 10), "5 calendar_days"), vn(2026, 3, 16, 17))
    # Fri 06/02/2026 + 10 = Mon 16/02 (Tết) -> close of Mon 23/02.
    assert_same_instant(due(vn(2026, 2, 6, 10), "10 calendar_days"), vn(2026, 2, 23, 17))
    # 0 calendar days on a Sunday -> close of Monday.
    assert_same_instant(due(vn(2026, 3, 15, 10), "0 calendar_days"), vn(2026, 3, 16, 17))


def test_calendar_days_use_the_local_date():
    # 20:00 UTC on 09/03 is 03:00 on Tue 10/03 in Hà Nội: + 1 day -> Wed 11/03 17:00.
    received = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)
    assert_same_instant(due(received, "1 calendar_day"), vn(2026, 3, 11, 17))


def test_zero_working_days_is_close_of_the_day_containing_s():
    # Tue 10/03 09:00, 12:00 (lunch), 14:59 and 06:00 -> close of Tue 10/03.
    for h, mi in ((9, 0), (12, 0), (14, 59), (6, 0)):
        assert_same_instant(due(vn(2026, 3, 10, h, mi), "0 working_days"), vn(2026, 3, 10, 17))
    # Received after the cutoff -> close of the next working day.
    assert_same_instant(due(vn(2026, 3, 10, 15), "0 working_days"), vn(2026, 3, 11, 17))
    assert_same_instant(due(vn(2026, 3, 13, 16), "0 working_days"), vn(2026, 3, 16, 17))
    # Received on Saturday -> close of Monday.
    assert_same_instant(due(vn(2026, 3, 14, 10), "0 working_days"), vn(2026, 3, 16, 17))


# ----- configuration -----------------------------------------------------------------------


def test_extra_holidays_on_a_weekday():
    cal = WorkingCalendar(name="local", extra_holidays=frozenset({date(2026, 3, 10)}))
    assert not cal.is_working_day(date(2026, 3, 10))
    assert CAL.is_working_day(date(2026, 3, 10))  # the default calendar is untouched
    # Mon 09/03 09:00 -> 17:00 = 6h; 2h left; Tue 10 off -> Wed 11/03 09:00.
    assert_same_instant(due(vn(2026, 3, 9, 9), "1 working_day", cal), vn(2026, 3, 11, 9))
    assert_same_instant(cal.clock_start(vn(2026, 3, 10, 9)), vn(2026, 3, 11, 7))


def test_extra_workdays_on_a_sunday():
    cal = WorkingCalendar(name="local", extra_workdays=frozenset({date(2026, 3, 15)}))
    assert cal.is_working_day(date(2026, 3, 15))
    assert not cal.is_working_day(date(2026, 3, 14))  # the Saturday stays off
    # Full office hours on the extra workday.
    assert cal.periods_of(date(2026, 3, 15)) == [
        (vn(2026, 3, 15, 7), vn(2026, 3, 15, 11, 30)),
        (vn(2026, 3, 15, 13, 30), vn(2026, 3, 15, 17)),
    ]
    # Fri 13/03 09:00 -> 17:00 = 6h; 2h left; Sat off, Sun 15 works -> Sun 09:00.
    assert_same_instant(due(vn(2026, 3, 13, 9), "1 working_day", cal), vn(2026, 3, 15, 9))
    # Received Sunday 10:00 counts from then; 1h -> 11:00.
    assert_same_instant(due(vn(2026, 3, 15, 10), "1 working_hour", cal), vn(2026, 3, 15, 11))


def test_extra_workdays_override_public_holidays():
    # SPEC 4 order: ... minus extra_holidays, plus extra_workdays (last word).
    cal = WorkingCalendar(name="local", extra_workdays=frozenset({date(2026, 11, 24)}))
    assert cal.is_working_day(date(2026, 11, 24))


def test_extra_holiday_on_a_weekend_changes_nothing():
    cal = WorkingCalendar(name="local", extra_holidays=frozenset({date(2026, 3, 14)}))
    assert_same_instant(due(vn(2026, 3, 13, 9), "1 working_day", cal), vn(2026, 3, 16, 9))


def test_saturday_morning_is_reception_time_never_limit_time():
    """SPEC 4: `saturday_morning` opens the desk for receiving (and delivering); limits count
    Monday-Friday working days only, and a case received on Saturday counts from Monday."""
    cal = WorkingCalendar(name="desk", saturday_morning=True)
    sat = date(2026, 3, 14)
    assert not cal.is_working_day(sat) and cal.is_reception_day(sat)
    assert cal.periods_of(sat) == []  # no working time at all
    assert cal.is_desk_instant(vn(2026, 3, 14, 11, 29))
    assert not cal.is_desk_instant(vn(2026, 3, 14, 14))
    assert not cal.is_working_instant(vn(2026, 3, 14, 10))
    assert not cal.is_reception_day(date(2026, 3, 15))  # Sunday stays off
    # Received Sat 10:00: S = Mon 16/03 07:00; 1 working day -> Mon 17:00.
    assert_same_instant(cal.clock_start(vn(2026, 3, 14, 10)), vn(2026, 3, 16, 7))
    assert_same_instant(due(vn(2026, 3, 14, 10), "1 working_day", cal), vn(2026, 3, 16, 17))
    # Fri 15:30 after cutoff -> Mon 07:00 (the Saturday does not count) -> Mon 17:00.
    assert_same_instant(cal.clock_start(vn(2026, 3, 13, 15, 30)), vn(2026, 3, 16, 7))
    assert_same_instant(due(vn(2026, 3, 13, 15, 30), "1 working_day", cal), vn(2026, 3, 16, 17))
    # Same-day limit received Saturday morning -> close of Monday.
    assert_same_instant(due(vn(2026, 3, 14, 9), "0 working_days", cal), vn(2026, 3, 16, 17))
    # Fri 16:00 -> Mon 08:00: Fri 1h + Mon 1h; Saturday adds nothing.
    assert cal.working_seconds_between(vn(2026, 3, 13, 16), vn(2026, 3, 16, 8)) == 2 * H
    # Messages wait for the desk: Fri 18:00 -> Sat 07:00; Sat 12:00 -> Mon 07:00.
    assert_same_instant(cal.next_desk_instant(vn(2026, 3, 13, 18)), vn(2026, 3, 14, 7))
    assert_same_instant(cal.next_desk_instant(vn(2026, 3, 14, 12)), vn(2026, 3, 16, 7))
    # Without saturday_morning the desk waits for Monday.
    assert_same_instant(CAL.next_desk_instant(vn(2026, 3, 13, 18)), vn(2026, 3, 16, 7))


def test_no_saturday_reception_inside_a_holiday_break():
    """A Saturday whose Friday before or Monday after is a holiday, or which is one itself,
    lies in a holiday break: the desk stays closed."""
    cal = WorkingCalendar(name="desk", saturday_morning=True)
    # Thu 30/04 and Fri 01/05/2026 are holidays: Saturday 02/05 is in the break.
    assert not cal.is_reception_day(date(2026, 5, 2))
    # 2/9/2026: Mon 31/08 (swapped for the worked Sat 22/08), Tue 01/09 and Wed 02/09 are off:
    # Saturday 29/08 is in the break; Saturday 22/08 is a full working day.
    assert not cal.is_reception_day(date(2026, 8, 29))
    assert cal.is_working_day(date(2026, 8, 22))
    # Tue 24/11/2026 is a holiday, but Mon 23/11 works: Saturday 21/11 opens.
    assert cal.is_reception_day(date(2026, 11, 21))
    # Hùng Kings 26/04/2026 is a Sunday, observed Monday 27/04: Saturday 25/04 is in the break.
    assert not cal.is_reception_day(date(2026, 4, 25))
    # An extra holiday on the Friday closes the Saturday too.
    local = WorkingCalendar(
        name="local", saturday_morning=True, extra_holidays=frozenset({date(2026, 3, 13)})
    )
    assert not local.is_reception_day(date(2026, 3, 14))


def test_the_cutoff_applies_on_every_reception_day():
    # A desk whose cutoff is before the Saturday close: received Saturday 10:30 after an
    # 10:00 cutoff, or at 09:00 before it: either way the clock starts Monday 07:00.
    cal = WorkingCalendar(name="desk", saturday_morning=True, cutoff=time(10))
    assert_same_instant(cal.clock_start(vn(2026, 3, 14, 10, 30)), vn(2026, 3, 16, 7))
    assert_same_instant(cal.clock_start(vn(2026, 3, 14, 9)), vn(2026, 3, 16, 7))
    # On a weekday at 10:30, after this cutoff: the next working day.
    assert_same_instant(cal.clock_start(vn(2026, 3, 12, 10, 30)), vn(2026, 3, 13, 7))


def test_saturday_morning_public_holiday_stays_off():
    # Sat 01/02/2025 is the 4th day of Tết: off even on a Saturday-morning desk.
    cal = WorkingCalendar(name="desk", saturday_morning=True)
    assert not cal.is_working_day(date(2025, 2, 1))
    # Swapped Saturday 26/04/2025 gets the full day, not only the morning.
    assert cal.periods_of(date(2025, 4, 26))[-1][1] == vn(2025, 4, 26, 17)


def test_custom_office_hours_and_cutoff():
    cal = WorkingCalendar(
        name="province",
        office_hours=((time(8), time(12)), (time(13), time(17))),
        cutoff=time(16),
    )
    assert cal.day_seconds == DAY
    # Tue 10/03 15:30 is before this cutoff: S = 15:30; + 8h: Tue 1h30, 6h30 left;
    # Wed 08:00-12:00 4h (2h30 left) -> 13:00 + 2h30 = 15:30.
    assert_same_instant(cal.clock_start(vn(2026, 3, 10, 15, 30)), vn(2026, 3, 10, 15, 30))
    assert_same_instant(due(vn(2026, 3, 10, 15, 30), "1 working_day", cal), vn(2026, 3, 11, 15, 30))
    # 16:00 -> Wed 08:00 -> Wed 17:00.
    assert_same_instant(cal.clock_start(vn(2026, 3, 10, 16)), vn(2026, 3, 11, 8))
    assert_same_instant(due(vn(2026, 3, 10, 16), "1 working_day", cal), vn(2026, 3, 11, 17))
    # Lunch 12:00-13:00: 12:30 -> 13:00; 07:30 -> 08:00.
    assert_same_instant(cal.clock_start(vn(2026, 3, 10, 12, 30)), vn(2026, 3, 10, 13))
    assert_same_instant(cal.clock_start(vn(2026, 3, 10, 7, 30)), vn(2026, 3, 10, 8))
    # 11:45 + 30 min -> 15 min before 12:00, 15 min after 13:00 -> 13:15.
    assert_same_instant(cal.add_working(vn(2026, 3, 10, 11, 45), 30 * M), vn(2026, 3, 10, 13, 15))


def test_custom_office_hours_shorter_day():
    # 07:30-11:30 + 13:00-16:30 = 4h + 3h30 = 7h30 a day.
    cal = WorkingCalendar(
        name="short", office_hours=((time(13), time(16, 30)), (time(7, 30), time(11, 30)))
    )
    assert cal.day_seconds == 7 * H + 30 * M
    # From Mon 09/03 07:30, 2 working days -> close of Tue 10/03 16:30.
    assert_same_instant(due(vn(2026, 3, 9, 7, 30), "2 working_days", cal), vn(2026, 3, 10, 16, 30))
    assert_same_instant(cal.opening(date(2026, 3, 14)), vn(2026, 3, 16, 7, 30))
    assert_same_instant(cal.close(date(2026, 3, 14)), vn(2026, 3, 16, 16, 30))


@pytest.mark.parametrize(
    "hours",
    [
        (),
        ((time(11), time(9)),),
        ((time(7), time(12)), (time(11), time(17))),
        ((time(7), time(7)),),
    ],
)
def test_invalid_office_hours_are_rejected(hours):
    with pytest.raises(ValueError):
        WorkingCalendar(name="bad", office_hours=hours)


# ----- measuring and negative arithmetic ---------------------------------------------------


def test_working_seconds_between_across_year_boundary():
    a = vn(2025, 12, 31, 15)  # Wed: 15:00-17:00 = 2h
    b = vn(2026, 1, 2, 9)  # Thu 1/1 is New Year's Day; Fri 07:00-09:00 = 2h
    assert CAL.working_seconds_between(a, b) == 4 * H
    assert CAL.working_seconds_between(b, a) == -4 * H
    assert CAL.working_seconds_between(a, a) == 0


def test_working_seconds_of_the_whole_year_2025():
    # 2025 starts on a Wednesday: 52 weeks + 1 day -> 261 weekdays.
    # Weekday holidays: 1/1, Tết 27-31/1 (5), 7/4, 30/4, 1/5, 2/5, 1/9, 2/9 -> 12.
    # Plus the swapped Saturday 26/4 -> 261 - 12 + 1 = 250 working days.
    a = vn(2024, 12, 31, 17)  # close of the last working day of 2024
    b = vn(2026, 1, 1, 12)  # New Year's Day 2026, nothing worked yet
    assert CAL.working_seconds_between(a, b) == 250 * DAY
    assert CAL.working_seconds_between(b, a) == -250 * DAY
    assert CAL.working_days_between(date(2025, 1, 1), date(2026, 1, 1)) == 250


def test_working_seconds_between_several_years():
    # From the close of 2024 to 09:00 on Fri 2/1/2026: all of 2025 + 2h.
    a = vn(2024, 12, 31, 17)
    b = vn(2026, 1, 2, 9)
    assert CAL.working_seconds_between(a, b) == 250 * DAY + 2 * H
    assert CAL.working_seconds_between(b, a) == -(250 * DAY + 2 * H)


def test_add_working_across_year_boundary():
    # Wed 31/12/2025 15:00 + 4h: 2h on Wednesday, 1/1 off, Fri 02/01 07:00 + 2h = 09:00.
    assert_same_instant(CAL.add_working(vn(2025, 12, 31, 15), 4 * H), vn(2026, 1, 2, 9))
    # Exactly to the close of the year's last working day stays in that year.
    assert_same_instant(CAL.add_working(vn(2025, 12, 31, 15), 2 * H), vn(2025, 12, 31, 17))


def test_add_working_negative_seconds():
    # Wed 11/03 09:00 - 3h: 2h back to 07:00, then 1h from Tue's close -> Tue 10/03 16:00.
    assert_same_instant(CAL.add_working(vn(2026, 3, 11, 9), -3 * H), vn(2026, 3, 10, 16))
    # Mon 23/02/2026 08:00 - 2h: 1h on Monday, Tết skipped, 1h from Fri 13/02 close -> 16:00.
    assert_same_instant(CAL.add_working(vn(2026, 2, 23, 8), -2 * H), vn(2026, 2, 13, 16))
    # Across the year: Fri 02/01/2026 09:00 - 4h -> Wed 31/12/2025 15:00.
    assert_same_instant(CAL.add_working(vn(2026, 1, 2, 9), -4 * H), vn(2025, 12, 31, 15))
    # 13:45 - 30 min -> 15 min back to 13:30, 15 min before 11:30 -> 11:15.
    assert_same_instant(CAL.add_working(vn(2026, 3, 10, 13, 45), -30 * M), vn(2026, 3, 10, 11, 15))
    # Over a whole year: Fri 02/01/2026 09:00 - (250 days + 3h): 2h on 02/01, all 250 working
    # days of 2025, then 1h before the close of Tue 31/12/2024 -> 16:00.
    assert_same_instant(
        CAL.add_working(vn(2026, 1, 2, 9), -(250 * DAY + 3 * H)), vn(2024, 12, 31, 16)
    )


def test_add_working_negative_landing_on_day_boundary_gives_earliest_instant():
    # "Earliest instant" (docstring): Wed 11/03 08:00 - 1h has elapsed from Tue 17:00 on
    # (nothing is worked overnight), so the answer is Tue 10/03 17:00, not Wed 07:00.
    assert_same_instant(CAL.add_working(vn(2026, 3, 11, 8), -H), vn(2026, 3, 10, 17))
    # Same across Tết: Mon 23/02/2026 08:00 - 1h -> Fri 13/02 17:00.
    assert_same_instant(CAL.add_working(vn(2026, 2, 23, 8), -H), vn(2026, 2, 13, 17))


def test_add_working_negative_landing_on_year_boundary_gives_earliest_instant():
    # Same rule across New Year: Fri 02/01/2026 08:00 - 1h -> Wed 31/12/2025 17:00
    # (1/1 is a holiday; nothing is worked between Wed 17:00 and Fri 07:00).
    assert_same_instant(CAL.add_working(vn(2026, 1, 2, 8), -H), vn(2025, 12, 31, 17))


def test_add_working_negative_whole_year_lands_on_previous_close():
    # Fri 02/01/2026 09:00 - (250 days + 2h): 2h on 02/01 and the 250 working days of 2025;
    # the earliest instant with that much working time before t is the close of 2024
    # (Tue 31/12/2024 17:00), not the opening of Thu 02/01/2025.
    assert_same_instant(
        CAL.add_working(vn(2026, 1, 2, 9), -(250 * DAY + 2 * H)), vn(2024, 12, 31, 17)
    )


def test_add_working_zero_is_next_working_instant():
    assert_same_instant(CAL.add_working(vn(2026, 3, 10, 9), 0), vn(2026, 3, 10, 9))
    assert_same_instant(CAL.add_working(vn(2026, 3, 10, 12), 0), vn(2026, 3, 10, 13, 30))
    assert_same_instant(CAL.add_working(vn(2026, 3, 14, 12), 0), vn(2026, 3, 16, 7))


def test_opening_close_day_close_of():
    assert_same_instant(CAL.opening(date(2026, 3, 10)), vn(2026, 3, 10, 7))
    assert_same_instant(CAL.close(date(2026, 3, 10)), vn(2026, 3, 10, 17))
    # A day off -> the next working day.
    assert_same_instant(CAL.opening(date(2026, 2, 14)), vn(2026, 2, 23, 7))
    assert_same_instant(CAL.close(date(2026, 2, 14)), vn(2026, 2, 23, 17))
    assert_same_instant(CAL.day_close_of(vn(2026, 3, 10, 13, 30)), vn(2026, 3, 10, 17))
    # 10/03 01:00 UTC is 08:00 local, still Tuesday.
    assert_same_instant(CAL.day_close_of(datetime(2026, 3, 10, 1, tzinfo=UTC)), vn(2026, 3, 10, 17))


# ----- Duration.parse ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("15 working_days", 15, Unit.WORKING_DAYS),
        ("1 working_day", 1, Unit.WORKING_DAYS),
        ("4 working_hours", 4, Unit.WORKING_HOURS),
        ("30 calendar_days", 30, Unit.CALENDAR_DAYS),
        ("0 working_days", 0, Unit.WORKING_DAYS),
        ("  2   working_hours ", 2, Unit.WORKING_HOURS),
        ("0.5 working_days", 0.5, Unit.WORKING_DAYS),
        ("45 working_minutes", 45, Unit.WORKING_MINUTES),
    ],
)
def test_duration_parse_accepts(text, amount, unit):
    d = Duration.parse(text)
    assert d == Duration(amount, unit)
    assert d.amount == amount
    assert d.unit is unit


def test_duration_str_round_trip():
    for text in ("15 working_days", "4 working_hours", "30 calendar_days", "0 working_days"):
        assert str(Duration.parse(text)) == text
    assert str(Duration.parse("1 working_day")) == "1 working_days"
    half = Duration.parse("0.5 working_days")
    assert Duration.parse(str(half)) == half == Duration(0.5, Unit.WORKING_DAYS)


@pytest.mark.parametrize("text", ["1 dy", "abc", "", "-1 working_days", "working_days", "3"])
def test_duration_parse_rejects(text):
    with pytest.raises(ValueError, match="expected a duration such as") as exc:
        Duration.parse(text)
    assert repr(text) in str(exc.value)  # the message quotes what it got


def test_duration_parse_rejects_non_strings():
    for value in (None, [], {"a": 1}):
        with pytest.raises(ValueError, match="expected a duration such as"):
            Duration.parse(value)


def test_duration_parse_rejects_fractional_calendar_days():
    with pytest.raises(ValueError, match="expected a duration such as"):
        Duration.parse("1.5 calendar_days")


def test_duration_working_seconds():
    assert Duration.parse("15 working_days").working_seconds(CAL) == 15 * DAY
    assert Duration.parse("0.5 working_days").working_seconds(CAL) == 4 * H
    assert Duration.parse("4 working_hours").working_seconds(CAL) == 4 * H
    assert Duration.parse("30 working_minutes").working_seconds(CAL) == 30 * M
    with pytest.raises(ValueError):
        Duration.parse("30 calendar_days").working_seconds(CAL)
    short = WorkingCalendar(name="short", office_hours=((time(8), time(11)),))
    assert Duration.parse("2 working_days").working_seconds(short) == 6 * H


# ----- naive datetimes ---------------------------------------------------------------------


def test_naive_datetimes_are_rejected():
    naive = datetime(2026, 3, 10, 9)
    aware = vn(2026, 3, 10, 9)
    calls = [
        lambda: CAL.local(naive),
        lambda: CAL.clock_start(naive),
        lambda: CAL.add_working(naive, H),
        lambda: CAL.add_working(naive, 0),
        lambda: CAL.add_working(naive, -H),
        lambda: CAL.working_seconds_between(naive, aware),
        lambda: CAL.working_seconds_between(aware, naive),
        lambda: CAL.is_working_instant(naive),
        lambda: CAL.next_working_instant(naive),
        lambda: CAL.day_close_of(naive),
        lambda: compute_due(CAL, naive, Duration.parse("3 working_days")),
        lambda: compute_due(CAL, naive, Duration.parse("30 calendar_days")),
        lambda: compute_due(CAL, naive, Duration.parse("0 working_days")),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_holidays_of_one_country_are_the_library_s_own():
    """`country_holidays` loads only the Vietnam module (start-up time of `watchdog due`) and
    must give exactly what the library's lookup gives, weekend workdays included."""
    import holidays

    from watchdog.calendar import country_holidays

    ours = country_holidays("VN", years=range(2000, 2061))
    theirs = holidays.country_holidays("VN", years=range(2000, 2061))
    assert dict(ours) == dict(theirs) and len(ours) > 800
    assert ours.weekend_workdays == theirs.weekend_workdays
    assert type(ours).__name__ == "Vietnam"
