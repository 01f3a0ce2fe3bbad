"""Typed, frozen configuration (SPEC 3). Parsed once at start-up; nothing reads YAML later."""

from __future__ import annotations

import codecs
import itertools
import re
from datetime import date, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from watchdog.domain import fold, parse_channel, parse_status, procedure_code
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


class DatabaseConfig(Model):
    url: str = "sqlite:///var/watchdog.db"


class CalendarConfig(Model):
    country: str = "VN"
    office_hours: OfficeHours = parse_office_hours("07:00-11:30, 13:30-17:00")
    cutoff: TimeOfDay = time(15, 0)
    extra_holidays: tuple[date, ...] = ()
    extra_workdays: tuple[date, ...] = ()
    saturday_morning: bool = False

    @model_validator(mode="after")
    def _disjoint(self) -> CalendarConfig:
        both = set(self.extra_holidays) & set(self.extra_workdays)
        if both:
            days = ", ".join(sorted(d.isoformat() for d in both))
            raise ValueError(
                _("dates both in extra_holidays and extra_workdays: {days}").format(days=days)
            )
        return self


class UnitConfig(Model):
    code: Code
    name: str
    parent: Code | None = None
    heads: tuple[Code, ...] = ()
    calendar: str | None = None
    kind: str | None = None


class DateRange(Model):
    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str) and ".." in value:
            a, b = value.split("..", 1)
            return {"from": a.strip(), "to": b.strip()}
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(
                _("range ends ({end}) before it starts ({start})").format(
                    end=self.end.strftime("%d/%m/%Y"), start=self.start.strftime("%d/%m/%Y")
                )
            )
        return self

    def __contains__(self, d: date) -> bool:
        return self.start <= d <= self.end


class OfficialConfig(Model):
    id: Code
    name: str
    unit: Code
    email: str | None = None
    telegram: Code | None = None
    role: str | None = None
    deputy: Code | None = None
    absent: tuple[DateRange, ...] = ()

    def is_absent(self, d: date) -> bool:
        return any(d in r for r in self.absent)


class StepConfig(Model):
    code: Code
    name: str
    allot: DurationField
    role: str | None = None


class ProcedureConfig(Model):
    code: ProcedureCode
    name: str
    field: str | None = None
    limit: DurationField
    steps: tuple[StepConfig, ...] = ()
    on_supplement: Literal["pause", "restart"] = "pause"
    # An extension (gia hạn) moves the due only when recorded at least this long before the
    # due it replaces (SPEC 4: "no later than 1 day before the due date").
    extension_notice: DurationField = Duration(1, Unit.WORKING_DAYS)


class EmailChannelConfig(Model):
    host: str = "localhost"
    port: int = 25
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    user: str | None = None
    password: str | None = None
    from_: str = Field(alias="from")
    timeout: Span = timedelta(seconds=30)


class TelegramChannelConfig(Model):
    token: str
    # The Bot API root: requests go to {api_url}/bot{token}/{method}; a value already ending in
    # /bot is taken as it is (the older form), so local Bot API servers and tests work.
    api_url: str = "https://api.telegram.org"
    # Applicant names and phones are masked on Telegram (Nguyễn V*** A*, 09******89).
    mask_applicant: bool = True


class WebhookChannelConfig(Model):
    url: str
    secret: str = Field(min_length=16)
    timeout: Span = timedelta(seconds=10)


class FileChannelConfig(Model):
    dir: str = "var/outbox"
    format: Literal["eml", "json"] = "eml"


class ChannelsConfig(Model):
    email: EmailChannelConfig | None = None
    telegram: TelegramChannelConfig | None = None
    webhook: WebhookChannelConfig | None = None
    file: FileChannelConfig | None = None


class DeliveryConfig(Model):
    quiet_hours: bool = True
    group_window: Span = timedelta(minutes=5)
    max_attempts: int = Field(8, ge=1)
    backoff: Span = timedelta(minutes=1)
    # How long a sender holds a message it claimed; a sender that dies holding it leaves it to
    # be sent again (as the next attempt) once this has passed.
    lease: Span = timedelta(minutes=5)


class SqlSourceConfig(Model):
    type: Literal["sql"]
    name: str
    url: str
    query: str
    interval: Span = timedelta(minutes=5)
    # An incremental poll: the column (of the query's result) that grows with every change,
    # such as a last-modified time; the query gets the highest value seen so far as :watermark.
    watermark: str | None = None


class HttpSourceConfig(Model):
    type: Literal["http"]
    name: str
    token: str


SourceConfig = Annotated[SqlSourceConfig | HttpSourceConfig, Field(discriminator="type")]


def _bytes(value: Any) -> int:
    """A size: 10485760, "10 MB", "512 kB"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", str(value), re.IGNORECASE)
    if not m:
        raise ValueError(
            _('expected a size such as "10 MB", got {value}').format(value=repr(value))
        )
    factor = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}[(m.group(2) or "b").lower()]
    return int(float(m.group(1)) * factor)


Size = Annotated[int, BeforeValidator(_bytes)]


class HttpConfig(Model):
    listen: str = "127.0.0.1:8080"
    max_body: Size = 10 * 1024 * 1024
    # Signs the e-mail "Đã nhận" links; links point at this address (what officials can reach).
    public_url: str | None = None


class LoggingConfig(Model):
    format: Literal["plain", "json"] = "plain"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def _status_code(value: Any) -> int:
    return int(parse_status(value))


def _channel_code(value: Any) -> str:
    return parse_channel(value)


def _encoding(value: Any) -> str:
    try:
        codecs.lookup(str(value))
        b"    ".decode(str(value), "ignore")  # LookupError for non-text codecs such as base64
    except LookupError:
        raise ValueError(
            _("unknown encoding {encoding}; use utf-8 (the default), cp1258 or utf-16").format(
                encoding=repr(value)
            )
        ) from None
    return str(value)


Label = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int | float) else v)]


class ImportConfig(Model):
    """`import:` (SPEC 3, 6): labels of the local one-stop software -> portal codes, and the
    default text encoding of CSV files. Labels are compared folded (no case, accents, spaces);
    the common Vietnamese labels are built in (watchdog.sources.fields)."""

    status_map: dict[Label, Annotated[int, BeforeValidator(_status_code)]] = Field(
        default_factory=dict
    )
    channel_map: dict[Label, Annotated[str, BeforeValidator(_channel_code)]] = Field(
        default_factory=dict
    )
    encoding: Annotated[str, BeforeValidator(_encoding)] = "utf-8"

    @field_validator("status_map", "channel_map")
    @classmethod
    def _one_code_per_label(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        seen: dict[str, str] = {}
        for label, code in mapping.items():
            other = seen.setdefault(fold(label), label)
            if other != label and mapping[other] != code:
                raise ValueError(
                    _(
                        "{first} and {second} are the same label (compared without case, "
                        "accents or spaces) with different codes"
                    ).format(first=repr(other), second=repr(label))
                )
        return mapping


class Config(Model):
    """The whole configuration file, after `procedures_file` has been merged in."""

    database: DatabaseConfig = DatabaseConfig()
    timezone: str = "Asia/Ho_Chi_Minh"
    calendars: dict[str, CalendarConfig] = Field(default_factory=dict)
    units: tuple[UnitConfig, ...] = ()
    officials: tuple[OfficialConfig, ...] = ()
    procedures: tuple[ProcedureConfig, ...] = ()
    procedures_file: str | None = None
    rules: tuple[str, ...] | None = None
    channels: ChannelsConfig = ChannelsConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    supervisors: tuple[str, ...] = ()
    # Where dead letters and delivery problems are reported (default: the supervisors).
    admin_email: tuple[str, ...] = ()

    @field_validator("admin_email", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    sources: tuple[SourceConfig, ...] = ()
    http: HttpConfig = HttpConfig()
    logging: LoggingConfig = LoggingConfig()
    import_: ImportConfig = Field(ImportConfig(), alias="import")
