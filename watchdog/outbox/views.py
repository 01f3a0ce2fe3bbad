"""What a template sees: plain, already-computed values, so templates hold no logic of ours.

The outbox builds these from the store (cases, deadline state, the directory); the renderer
turns them into subject, text and HTML per channel. Instants are aware datetimes; the renderer
shows them as dd/mm/yyyy HH:MM in the calendar's zone (`tz`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from watchdog.channels import Recipient


@dataclass(frozen=True, slots=True)
class CaseView:
    case_code: str
    procedure_code: str
    procedure_name: str
    unit_code: str
    unit_name: str
    applicant_name: str | None  # as stored; the renderer masks it where the channel says so
    applicant_phone: str | None
    received_at: datetime
    due_at: datetime | None
    state: str  # on_track | due_soon | overdue | waiting | no_due | closed
    remaining_working_seconds: int | None  # negative when overdue; None without a due
    working_day_seconds: int  # length of this case's working day, to say time in days
    step_name: str | None  # the current step, by name
    step_handler: str | None  # who holds it, by name
    assignee: str | None  # by name
    stage: str  # "policy/stage" that fired for this case ("" in digests)
    template: str  # the stage's template name (default: the stage id)
    urgent: bool = False
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BacklogLine:
    official: str  # by name
    open: int
    overdue: int


@dataclass(frozen=True, slots=True)
class UnitRate:
    unit_name: str
    received: int
    on_time: int
    late: int
    rate: float | None  # per cent, None when nothing was finished


@dataclass(frozen=True, slots=True)
class DigestSection:
    key: str  # overdue | due_today | due_soon | waiting | idle | findings | late_5
    cases: tuple[CaseView, ...] = ()
    findings: tuple[str, ...] = ()  # one line per finding (section "findings")
    total: int = 0  # lines in all: more than shown when the digest's max_lines cut them

    @property
    def more(self) -> int:
        """Lines left out of the section (counted, not shown)."""
        return max(0, self.total - len(self.cases or self.findings))


@dataclass(frozen=True, slots=True)
class DigestView:
    name: str  # the digest's name in the rule file
    scheduled_at: datetime
    unit_name: str | None  # the unit of a unit head's digest; None for supervisors
    sections: tuple[DigestSection, ...]
    backlog: tuple[BacklogLine, ...] = ()  # per official, unit heads' digest
    unit_rate: UnitRate | None = None  # the unit's on-time rate this month
    ranking: tuple[UnitRate, ...] = ()  # units by on-time rate, supervisors' digest


@dataclass(frozen=True, slots=True)
class ReportView:
    """A scheduled on-time report (`reports.scheduled`), whose XLSX the message carries."""

    name: str  # the report's name in the configuration
    every: str  # month | quarter
    start: date  # first day of the period
    end: date  # last day of the period
    by: str  # unit | procedure | official
    metric: str  # portal | 766

    @property
    def month(self) -> int:
        return self.start.month

    @property
    def quarter(self) -> int:
        return (self.start.month - 1) // 3 + 1

    @property
    def year(self) -> int:
        return self.start.year


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message to render: an alert listing cases most urgent first, a digest, a test, a
    notice to the admin, or a scheduled report."""

    kind: str  # "alert" | "digest" | "test" | "notice" | "report"
    channel: str
    recipient: Recipient
    now: datetime  # when it is rendered (for "còn ..." wording)
    tz: tzinfo
    cases: tuple[CaseView, ...] = ()
    digest: DigestView | None = None
    notice: str | None = None  # "notice": plain text for the admin (dead letters)
    ack_url: str | None = None  # e-mail: the signed "Đã nhận" link (needs http.public_url)
    report: ReportView | None = None  # "report"
