"""Reading and writing instants the way our sources and users write them (SPEC 4, 6)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo

from watchdog.i18n import N_, _

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_VN = re.compile(
    r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})"
    r"(?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
FORMATS_HELP = "ISO 8601, dd/mm/yyyy, dd/mm/yyyy HH:MM[:SS], yyyyMMddHHmmss"  # in any language


MIN_YEAR, MAX_YEAR = 1900, 2200  # what the working-time calendar covers


class DateError(ValueError):
    """A value that is no date we read; `complete` when the message already says what is
    accepted (the caller need not add the accepted forms)."""

    def __init__(self, message: str, *, complete: bool = False):
        super().__init__(message)
        self.complete = complete


def parse_when(value: object, tz: tzinfo) -> datetime | date:
    """An aware datetime, or a bare date when the value holds no time of day.

    Values without a zone are local time in `tz`. Raises ValueError naming the accepted forms.
    """
    when = _parse_when(value, tz)
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        raise DateError(
            _("year {year} is outside {low}-{high}: {value}").format(
                year=when.year, low=MIN_YEAR, high=MAX_YEAR, value=repr(value)
            ),
            complete=True,
        )
    return when


def _parse_when(value: object, tz: tzinfo) -> datetime | date:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if m := _VN.match(text):
            d = date(int(m["y"]), int(m["m"]), int(m["d"]))
            if m["H"] is None:
                return d
            t = time(int(m["H"]), int(m["M"]), int(m["S"] or 0))
            return datetime.combine(d, t, tz)
        if m := _COMPACT.match(text):
            y, mo, d, h, mi, s = (int(g) for g in m.groups())
            return datetime(y, mo, d, h, mi, s, tzinfo=tz)
        if m := _COMPACT_DATE.match(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if _ISO_DATE.match(text):
            return date.fromisoformat(text)
        if text and text[0].isdigit() and "-" in text[:5]:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return dt if dt.tzinfo else dt.replace(tzinfo=tz)
    except ValueError as e:
        if not str(e).startswith("Invalid isoformat string"):  # a form of ours, a bad value
            raise DateError(
                _("not a valid date: {value} ({reason})").format(
                    value=repr(text), reason=_reason(e)
                )
            ) from None
    raise DateError(
        _("expected a date as {formats}, got {value}").format(
            formats=FORMATS_HELP, value=repr(text)
        ),
        complete=True,
    )


# Python's words for a date that does not exist, in the user's language.
_REASONS = (
    ("day is out of range for month", N_("that month has no such day")),
    ("month must be in 1..12", N_("the month must be 1-12")),
    ("hour must be in 0..23", N_("the hour must be 0-23")),
    ("minute must be in 0..59", N_("the minute must be 0-59")),
    ("second must be in 0..59", N_("the second must be 0-59")),
)


def _reason(e: ValueError) -> str:
    text = str(e)
    for python, ours in _REASONS:
        if text.startswith(python):
            return _(ours)
    return text


def parse_instant(value: object, tz: tzinfo) -> datetime:
    """Like parse_when, but a bare date means its midnight (the start of that day)."""
    when = parse_when(value, tz)
    if isinstance(when, datetime):
        return when
    return datetime.combine(when, time(0), tz)


def parse_period_end(value: object, tz: tzinfo) -> datetime:
    """The end of a period as people write it: an instant as given, and a bare date means the
    END of that day (the next midnight), so `--to 30/11/2026` includes the whole of 30/11. The
    one parser for every period end (`report --to/--as-of`, `simulate --to`)."""
    when = parse_when(value, tz)
    if isinstance(when, datetime):
        return when
    return datetime.combine(when + timedelta(days=1), time(0), tz)


def show(t: datetime | None, tz: tzinfo) -> str:
    """dd/mm/yyyy HH:MM in the calendar's zone, for messages and tables."""
    return "" if t is None else t.astimezone(tz).strftime("%d/%m/%Y %H:%M")


def iso(t: datetime | None, tz: tzinfo) -> str | None:
    """ISO 8601 with offset in the calendar's zone, for machine output."""
    return None if t is None else t.astimezone(tz).isoformat()


def show_working(seconds: int, day_seconds: int) -> str:
    """Working time as officials say it: '2 ngày 3 giờ', '-1 ngày 0 giờ 30 phút'."""
    sign = "-" if seconds < 0 else ""
    s = abs(int(seconds))
    days, rest = divmod(s, day_seconds)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days} ngày")
    if hours:
        parts.append(f"{hours} giờ")
    if minutes or not parts:
        parts.append(f"{minutes} phút")
    return sign + " ".join(parts)
