"""Typed, frozen configuration (SPEC 3). Parsed once at start-up; nothing reads YAML later."""

from __future__ import annotations

import codecs
import re
from datetime import date, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from watchdog.config.base import (  # noqa: F401  (re-exported: models is their old home)
    MAX_DURATION,
    Code,
    DurationField,
    Model,
    OfficeHours,
    ProcedureCode,
    Span,
    TimeOfDay,
    check_duration_bounds,
    parse_duration,
    parse_office_hours,
    parse_span,
    parse_time,
)
from watchdog.config.dashboard import DashboardConfig
from watchdog.config.letters import LettersConfig
from watchdog.config.reportsconf import ReportsConfig
from watchdog.domain import fold, parse_channel, parse_status
from watchdog.durations import Duration, Unit
from watchdog.i18n import _


class DatabaseConfig(Model):
    url: str = Field(
        "sqlite:///var/watchdog.db",
        description="SQLAlchemy URL of the watchdog's own database: `sqlite:///relative/file.db` "
        "(relative to the configuration file's folder), `sqlite:////absolute/file.db`, or "
        "`postgresql+psycopg://USER:PASSWORD@HOST/DB` for several replicas",
    )


class CalendarConfig(Model):
    country: str = Field(
        "VN",
        description="Country whose public holidays (with compensatory and swapped days) the "
        "`holidays` package supplies",
    )
    office_hours: OfficeHours = Field(
        parse_office_hours("07:00-11:30, 13:30-17:00"),
        description="Office periods of a working day; a full working day is their sum (8 hours "
        "by default)",
    )
    cutoff: TimeOfDay = Field(
        time(15, 0),
        description="A case received at or after this time on a working day counts from the "
        "next working day",
    )
    extra_holidays: tuple[date, ...] = Field(
        (),
        description="Local days off the `holidays` package does not know (announced late); they "
        "win over weekdays and swapped Saturdays",
    )
    extra_workdays: tuple[date, ...] = Field(
        (),
        description="Local make-up working days; they win over weekends and public holidays; a "
        "date may not be in both lists",
    )
    saturday_morning: bool = Field(
        False,
        description="`true`: the desk receives cases and messages are delivered on Saturday "
        "mornings; that time counts toward no limit (a Saturday receipt counts from the next "
        "working day)",
    )

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
    code: Code = Field(
        description="Unit code, unique (the agency's electronic identifier, as the portal's "
        "`DonViXuLy`); cases name their unit by it",
    )
    name: str = Field(description="Full name of the unit, as messages and reports show it")
    parent: Code | None = Field(
        None, description="Code of the unit above; unset = a top unit of the tree"
    )
    heads: tuple[Code, ...] = Field(
        (),
        description="Official ids of the unit's heads: whom rules reach as `unit_head` or "
        "`agency_head` and digests as `unit_heads` or `agency_heads`",
    )
    calendar: str | None = Field(
        None,
        description="Name of an entry of `calendars`; unset = the parent's calendar, at the top "
        "the default calendar (see `calendars`)",
    )
    kind: str | None = Field(
        None,
        description="Free label of the kind of unit (`so`, `phong`, `phuong`, ...); stored, "
        "nothing depends on it",
    )


class DateRange(Model):
    start: date = Field(alias="from", description="First day of the range (included)")
    end: date = Field(alias="to", description="Last day of the range (included), not before `from`")

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
    id: Code = Field(
        description="Official id, unique: named by `heads`, `deputy`, `supervisors`, "
        "`admin_email`, rules and cases' assignees",
    )
    name: str = Field(description="Full name (a case's assignee may give it instead of the id)")
    unit: Code = Field(description="Code of the unit the official works in")
    email: str | None = Field(
        None, description="E-mail address for messages; several may be separated by commas"
    )
    telegram: Code | None = Field(
        None,
        description="Telegram chat id; a chat the official linked with `/start CODE` "
        "(`watchdog officials link-code`) wins over it",
    )
    role: str | None = Field(
        None,
        description="Free label of the post (`chuyen_vien`, `lanh_dao_phong`, `thu_truong`, "
        "...), as steps' `role` names it",
    )
    deputy: Code | None = Field(
        None,
        description="Official id that receives this official's messages on the days they are "
        "`absent` (followed up to 3 deputies deep)",
    )
    absent: tuple[DateRange, ...] = Field(
        (),
        description='Days away: ranges `"YYYY-MM-DD..YYYY-MM-DD"` or `{from: ..., to: ...}`, '
        "both days included; messages go to the `deputy` meanwhile",
    )

    def is_absent(self, d: date) -> bool:
        return any(d in r for r in self.absent)


class StepConfig(Model):
    code: Code = Field(description="Step code (`B1`, `B2`, ...), unique within the procedure")
    name: str = Field(description="What the step does")
    allot: DurationField = Field(
        description="Time allotted to the step; the allotments of all steps normally add up to "
        "the procedure's `limit`",
    )
    role: str | None = Field(
        None, description="Role (an official's `role`) of whoever handles the step"
    )


class ProcedureConfig(Model):
    code: ProcedureCode = Field(
        description="National procedure code (CSDLQG), as cases give it in `procedure_code`; "
        "unique",
    )
    name: str = Field(description="Name of the procedure")
    field: str | None = Field(
        None,
        description="Field (lĩnh vực); rules select procedures by it (`match.fields`, compared "
        "exactly)",
    )
    limit: DurationField = Field(
        description='Time limit of the published procedure, from the start of the clock; `"0 '
        'working_days"` = the same working day',
    )
    steps: tuple[StepConfig, ...] = Field((), description="Internal steps B1..Bn, in order")
    on_supplement: Literal["pause", "restart"] = Field(
        "pause",
        description="A request for more documents: `pause` adds the working time waited to the "
        "due; `restart` runs the whole limit again once the documents are complete",
    )
    # SPEC 4: "no later than 1 day before the due date".
    extension_notice: DurationField = Field(
        Duration(1, Unit.WORKING_DAYS),
        description="An extension (gia hạn) moves the due only when recorded at least this long "
        "before the due it replaces",
    )


class EmailChannelConfig(Model):
    host: str = Field("localhost", description="SMTP server")
    port: int = Field(25, description="SMTP port: usually 587 with `starttls`, 465 with `implicit`")
    tls: Literal["starttls", "implicit", "none"] = Field(
        "starttls",
        description="`starttls`: upgrade to TLS or send nothing (never in clear); `implicit`: "
        "TLS from the first byte (port 465); `none`: clear text, never upgraded; certificates "
        "are checked against the system's trust store",
    )
    user: str | None = Field(None, description="SMTP login; unset = no log-in")
    password: str | None = Field(
        None,
        description="SMTP password, used only with `user`; from the environment "
        "(`${WATCHDOG_SMTP_PASSWORD}`)",
    )
    from_: str = Field(
        alias="from",
        description='Sender of every e-mail, `"Name <address>"`; its domain ends the `Message-ID`s',
    )
    timeout: Span = Field(
        timedelta(seconds=30),
        description="Limit on connecting and on each SMTP exchange; past it the send fails and "
        "is retried",
    )


class TelegramChannelConfig(Model):
    token: str = Field(
        description="The bot's token (from @BotFather); from the environment "
        "(`${WATCHDOG_TELEGRAM_TOKEN}`)",
    )
    # A value ending in /bot is the older form, still accepted, so that local Bot API servers
    # and tests written for it work.
    api_url: str = Field(
        "https://api.telegram.org",
        description="Bot API root: requests go to `{api_url}/bot{token}/{method}` (a value "
        "already ending in `/bot` is taken as it is); change it for a local Bot API server",
    )
    mask_applicant: bool = Field(
        True,
        description="Mask applicants' names and phones on Telegram (`Nguyễn V*** A*`, "
        "`09******89`)",
    )


class WebhookChannelConfig(Model):
    url: str = Field(
        description="Address each message is POSTed to as signed JSON (redirects not followed)"
    )
    secret: str = Field(
        min_length=16,
        description="Key of the HMAC-SHA256 `X-Watchdog-Signature` the receiver checks; from the "
        "environment (`${WATCHDOG_WEBHOOK_SECRET}`)",
    )
    timeout: Span = Field(
        timedelta(seconds=10),
        description="How long to wait for the receiver's answer; past it the send is retried",
    )


class FileChannelConfig(Model):
    dir: str = Field(
        "var/outbox",
        description="Folder for the message files, one per message; relative to the "
        "configuration file's folder",
    )
    format: Literal["eml", "json"] = Field(
        "eml",
        description="`eml`: the e-mail as it would be sent (open it in a mail client); `json`: "
        "the webhook body, indented",
    )


class ChannelsConfig(Model):
    email: EmailChannelConfig | None = Field(None, description="SMTP; unset = no e-mail")
    telegram: TelegramChannelConfig | None = Field(
        None, description="A Telegram bot; unset = no Telegram"
    )
    webhook: WebhookChannelConfig | None = Field(
        None, description="Signed JSON POSTs (a Zalo OA bridge, a chat); unset = no webhook"
    )
    file: FileChannelConfig | None = Field(
        None,
        description="Message files in a folder, for trials; unset = none, unless no channel is "
        "configured at all (then `var/outbox`)",
    )


class DeliveryConfig(Model):
    quiet_hours: bool = Field(
        True,
        description="`true`: a non-urgent message written outside the recipient's office hours "
        "waits for the next opening of their unit's calendar (stages with `urgent: true` never "
        "wait)",
    )
    group_window: Span = Field(
        timedelta(minutes=5),
        description="Messages for one recipient on one channel released within this span are "
        "sent as one, at its end, most urgent case first",
    )
    max_attempts: int = Field(
        8,
        ge=1,
        description="Sends of a message, the first included; when the last fails the message "
        "is dead and the admin is told",
    )
    backoff: Span = Field(
        timedelta(minutes=1),
        description="Wait before the first retry; it doubles with each retry up to 1 hour, "
        "each wait drawn between half and all of that",
    )
    lease: Span = Field(
        timedelta(minutes=5),
        description="How long a sender holds a message it claimed; a message whose sender died "
        "holding it is sent again (as its next attempt) once this has passed",
    )


class SqlSourceConfig(Model):
    type: Literal["sql"] = Field(description="Polls a database of the one-stop software")
    name: str = Field(
        description="Names the source in logs and problems; cases from it are marked "
        "`sql:<name>`; unique among sources",
    )
    url: str = Field(
        description="SQLAlchemy URL of the database to read, with a read-only login; the "
        "password from the environment",
    )
    query: str = Field(
        description="SELECT whose columns are named as an import's headers; it may use "
        "`:watermark`",
    )
    interval: Span = Field(timedelta(minutes=5), description="Time between polls")
    watermark: str | None = Field(
        None,
        description="Column of the query's result that grows with every change (a last-modified "
        "time): the query gets the highest value seen so far as `:watermark` (NULL at first); "
        "unset = every poll reads all the query returns",
    )


class HttpSourceConfig(Model):
    type: Literal["http"] = Field(description="A program that pushes cases to the HTTP API")
    name: str = Field(
        description="Recorded as the `source` of every case it pushes; unique among sources"
    )
    token: str = Field(
        description="Bearer token the program sends (`Authorization: Bearer ...`); from the "
        "environment",
    )


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
    listen: str = Field(
        "127.0.0.1:8080",
        description='`HOST:PORT` the daemon serves HTTP on; `""` = no HTTP server',
    )
    max_body: Size = Field(
        10 * 1024 * 1024,
        description="Largest request body accepted; a larger one is refused with 413",
    )
    public_url: str | None = Field(
        None,
        description="The server's address as officials reach it (`https://watchdog.example`): "
        "e-mail acknowledgement (Đã nhận) links are `{public_url}/ack/{token}`; unset = e-mails "
        "carry no such link",
    )


class LoggingConfig(Model):
    format: Literal["plain", "json"] = Field(
        "plain",
        description="`plain`: `time level logger: message` lines; `json`: one object per line",
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged"
    )


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
        default_factory=dict,
        description="Label of the local software -> portal status; read before the built-in "
        "labels, by `watchdog import` and SQL sources",
    )
    channel_map: dict[Label, Annotated[str, BeforeValidator(_channel_code)]] = Field(
        default_factory=dict,
        description="Label of the local software -> channel of submission (1, 2, 3 or `direct`, "
        "`online`, `postal`); read before the built-in labels",
    )
    encoding: Annotated[str, BeforeValidator(_encoding)] = Field(
        "utf-8",
        description="Encoding of CSV files when `watchdog import` has no `--encoding`; a byte "
        "order mark wins over both",
    )

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

    database: DatabaseConfig = Field(
        DatabaseConfig(), description="Where the watchdog keeps cases, firings and messages"
    )
    timezone: str = Field(
        "Asia/Ho_Chi_Minh",
        description="IANA time zone of every calendar: office hours, dues, digest schedules and "
        "the times shown",
    )
    calendars: dict[str, CalendarConfig] = Field(
        default_factory=dict,
        description="Working calendars by name; a unit without its own (nor a parent's) uses "
        "`default`, else the first listed; `{}` = the VN defaults",
    )
    units: tuple[UnitConfig, ...] = Field(
        (), description="The tree of units, any depth, linked by `parent`"
    )
    officials: tuple[OfficialConfig, ...] = Field(
        (), description="Officials: recipients of messages, assignees of cases"
    )
    procedures: tuple[ProcedureConfig, ...] = Field(
        (),
        description="Administrative procedures (TTHC) and their time limits; or "
        "`procedures_file`, not both",
    )
    procedures_file: str | None = Field(
        None,
        description="YAML file holding the procedures (a list, or a mapping with `procedures:`) "
        "instead of `procedures`; relative to the configuration file's folder",
    )
    rules: tuple[str, ...] | None = Field(
        None,
        description="Rule files or globs, relative to the configuration file's folder; unset = "
        "the shipped rules (`rules/default.yaml`), `[]` = no rules",
    )
    channels: ChannelsConfig = Field(
        ChannelsConfig(),
        description="How messages go out; with no channel configured, as files in `var/outbox`",
    )
    delivery: DeliveryConfig = Field(
        DeliveryConfig(), description="Quiet hours, grouping and retries of messages"
    )
    supervisors: tuple[str, ...] = Field(
        (),
        description="Official ids or e-mail addresses of the supervising office: the "
        "`supervisors` of rules and digests",
    )
    admin_email: tuple[str, ...] = Field(
        (),
        description="Who is told of messages that could not be delivered (dead letters): "
        "official ids or e-mail addresses, one or a list; `[]` = the `supervisors`",
    )

    @field_validator("admin_email", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    sources: tuple[SourceConfig, ...] = Field(
        (),
        description="Where cases come from besides `watchdog import`: `sql` pollers and `http` "
        "push tokens",
    )
    http: HttpConfig = Field(
        HttpConfig(),
        description="The built-in HTTP server of `watchdog run`: push API, acknowledgement "
        "links, `/healthz`, `/metrics`",
    )
    logging: LoggingConfig = Field(LoggingConfig(), description="The daemon's log, on stderr")
    letters: LettersConfig = Field(
        LettersConfig(), description="The apology letter and the control sheet (DOCX templates)"
    )
    reports: ReportsConfig = Field(
        ReportsConfig(), description="On-time reports e-mailed when a month or quarter ends"
    )
    dashboard: DashboardConfig = Field(
        DashboardConfig(), description="The web dashboard of the built-in HTTP server"
    )
    import_: ImportConfig = Field(
        ImportConfig(),
        alias="import",
        description="Labels of the local software and the encoding of CSV files",
    )
