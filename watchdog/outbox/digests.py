"""Digests (SPEC 5): one summary per recipient per scheduled run, never empty, exactly once.

A digest's `schedule` is a cron expression in the calendar's zone; a run counts only on
working days unless `every_day: true`. Every (digest, recipient, channel, scheduled instant)
has its dedup key in the outbox, so a restart, a second replica or `run --once` twice never
sends one twice; a run missed while nothing was running is still sent when it is less than
`GRACE` old.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from watchdog.config import Settings
from watchdog.engine.deadline import State, open_state, timeline
from watchdog.engine.rules import CHANNEL_ORDER, Digest, RuleSet, cron_trigger
from watchdog.outbox.compose import case_view, recipient_of
from watchdog.outbox.render import Renderer, RenderError
from watchdog.outbox.views import (
    BacklogLine,
    CaseView,
    DigestSection,
    DigestView,
    MessageView,
    UnitRate,
)
from watchdog.reports.board import board_counts_by, iter_board
from watchdog.reports.ontime import By, build_report
from watchdog.store import Store
from watchdog.store.cases import open_cases
from watchdog.store.findings import open_findings
from watchdog.store.outbox import NewMessage, dedup_keys_present, enqueue_message
from watchdog.store.reads import events_for, open_case_findings

log = logging.getLogger(__name__)

GRACE = timedelta(hours=2)
LATE_DAYS = 5  # the supervisors' list: cases more than this many working days late
IDLE_DAYS = 3


def runs_between(
    digest: Digest, settings: Settings, start: datetime, end: datetime
) -> list[datetime]:
    """Scheduled instants in (start, end], working days only unless every_day."""
    calendar = settings.default_calendar
    trigger = cron_trigger(digest.schedule, calendar.tz)
    out: list[datetime] = []
    prev = None
    t = trigger.get_next_fire_time(None, start.astimezone(calendar.tz))
    while t is not None and t <= end:
        if t > start and (digest.every_day or calendar.is_working_day(t.date())):
            out.append(t)
        prev = t
        t = trigger.get_next_fire_time(prev, prev + timedelta(seconds=1))
    return out


def recipients_of(digest: Digest, settings: Settings) -> dict[str, set[str] | None]:
    """Recipient -> the units their digest covers (None: the whole province)."""
    out: dict[str, set[str] | None] = {}
    for to in digest.to:
        if to == "supervisors":
            for who in settings.config.supervisors:
                out[who] = None
            continue
        for unit in settings.config.units:
            top = unit.parent is None or unit.parent not in settings.units
            if to == "agency_heads" and not top:
                continue
            for head in unit.heads:
                covered = out.setdefault(head, set())
                if covered is not None:
                    covered |= settings.subtree(unit.code)
    return out


def channel_for(settings: Settings, who: str) -> tuple[str, str] | None:
    """The first channel a digest recipient can be reached on: (channel, address)."""
    official = settings.officials.get(who)
    for channel in CHANNEL_ORDER:
        if getattr(settings.channels, channel) is None:
            continue
        if channel == "telegram":
            address = official.telegram if official else None
        elif channel == "email":
            address = official.email if official else (who if "@" in who else None)
        else:
            address = who
        if address:
            return channel, str(address)
    return None


@dataclass
class DigestReport:
    written: int = 0
    empty: int = 0
    already: int = 0
    failed: list[str] = field(default_factory=list)


def send_due_digests(
    store: Store,
    settings: Settings,
    rules: RuleSet,
    renderer: Renderer,
    now: datetime,
    since: datetime | None = None,
) -> DigestReport:
    """Write the digests scheduled in (since, now] (default: the last GRACE) not written yet."""
    report = DigestReport()
    start = since if since is not None and since > now - GRACE else now - GRACE
    snapshot: _Snapshot | None = None
    for digest in rules.digests:
        for at in runs_between(digest, settings, start, now):
            targets = []
            for who, units in recipients_of(digest, settings).items():
                where = channel_for(settings, who)
                if where is not None:
                    key = f"digest:{digest.name}:{who}:{where[0]}:{at.isoformat()}"
                    targets.append((who, units, where, key))
            present = dedup_keys_present(store, [t[3] for t in targets])
            for who, units, (channel, address), key in targets:
                if key in present:
                    report.already += 1
                    continue
                snapshot = snapshot or _Snapshot.take(
                    store, settings, now, idle=any("idle" in d.sections for d in rules.digests)
                )
                view = snapshot.digest(digest, at, units, settings)
                if view is None:
                    report.empty += 1
                    continue
                message = MessageView(
                    kind="digest",
                    channel=channel,
                    recipient=recipient_of(settings, who),
                    now=now,
                    tz=settings.default_calendar.tz,
                    digest=view,
                )
                try:
                    r = renderer.render(message)
                except RenderError as e:  # `check` catches this before a daemon loads it
                    log.error("digest %s for %s cannot be rendered: %s", digest.name, who, e)
                    report.failed.append(f"{digest.name} → {who}: {e}")
                    continue
                written = enqueue_message(
                    store,
                    NewMessage(
                        kind="digest",
                        recipient=who,
                        channel=channel,
                        address=address,
                        subject=r.subject,
                        text=r.text,
                        html=r.html,
                        stages=(f"digest/{digest.name}",),
                        dedup_key=key,
                    ),
                    now,
                    now,
                )
                report.written += int(written is not None)
                report.already += int(written is None)
    return report


@dataclass
class _Snapshot:
    """What the digests of one run list, read once: the open cases a section can show (overdue,
    due soon, due today, waiting: read through the board's indexes, not every open case;
    every open case only when a digest asks for the `idle` section), and this month's on-time
    figures. Backlogs per official and findings are counted per recipient by the database."""

    store: Store
    now: datetime
    views: list[CaseView]
    idle: set[str]
    late_days: dict[str, int]
    findings: list[dict]  # every unresolved finding (the province's digests)
    case_findings: list[dict]  # those about open cases, with their unit (a unit's digests)
    rates: dict[str, UnitRate]

    @classmethod
    def take(cls, store: Store, settings: Settings, now: datetime, *, idle: bool) -> _Snapshot:
        views, idle_codes, late_days = [], set(), {}
        if idle:  # the last activity is not stored: every open case is looked at
            for record, events in open_cases(store):
                calendar = settings.calendar_for(record.unit_code)
                try:
                    tl = timeline(
                        record, events, settings.procedures.get(record.procedure_code), calendar
                    )
                    st = open_state(tl, calendar, now)
                except Exception:
                    continue  # the board and the engine report it as a finding
                views.append(case_view(settings, record, events, now))
                if (
                    tl.last_activity
                    and calendar.working_days_between(
                        tl.last_activity.astimezone(calendar.tz).date(),
                        now.astimezone(calendar.tz).date(),
                    )
                    > IDLE_DAYS
                ):
                    idle_codes.add(record.case_code)
                if st.state is State.OVERDUE and st.remaining is not None:
                    late_days[record.case_code] = -st.remaining // calendar.day_seconds
        else:
            # A case due today is overdue, due soon (a working day holds at most one working
            # day) or waiting: these three states hold every case a section can list.
            lines = []
            for state in (State.OVERDUE, State.DUE_SOON, State.WAITING):
                found, _skipped = iter_board(store, settings, now, state=state.value)
                lines.extend(found)
            lines.sort(key=lambda line: line.case.id)  # the order of the cases, as listed
            events = events_for(store, [line.case.id for line in lines])
            for line in lines:
                record, status = line.case, line.status
                views.append(case_view(settings, record, events.get(record.id, []), now))
                if status.state is State.OVERDUE and status.remaining is not None:
                    day = settings.calendar_for(record.unit_code).day_seconds
                    late_days[record.case_code] = -status.remaining // day
        tz = settings.default_calendar.tz
        today = now.astimezone(tz).date()
        month = build_report(
            store, settings, today.replace(day=1), today, as_of=now, by=By.UNIT, now=now
        )
        rates = {
            row.key: UnitRate(
                row.name,
                row.counts.received,
                row.counts.on_time,
                row.counts.late,
                None if row.counts.rate is None else float(row.counts.rate),
            )
            for row in month.rows
        }
        return cls(
            store,
            now,
            views,
            idle_codes,
            late_days,
            open_findings(store),
            open_case_findings(store),
            rates,
        )

    def backlog(self, settings: Settings, units: set[str]) -> tuple[BacklogLine, ...]:
        """Open cases per official of these units (all of them, whatever their state) and
        how many are overdue, the most overdue first."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        found = board_counts_by(self.store, settings, self.now, "assignee", units=units)
        for (assignee, state), n in found.items():
            c = counts[settings.official_name(assignee or None) or "—"]
            c[0] += n
            c[1] += n if state == State.OVERDUE.value else 0
        return tuple(
            BacklogLine(name, n, late)
            for name, (n, late) in sorted(
                counts.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0])
            )
        )

    def digest(
        self, digest: Digest, at: datetime, units: set[str] | None, settings: Settings
    ) -> DigestView | None:
        tz = settings.default_calendar.tz
        mine = [v for v in self.views if units is None or v.unit_code in units]
        today: date = at.astimezone(tz).date()
        by_state: dict[str, list[CaseView]] = defaultdict(list)
        for v in mine:
            if v.state == State.OVERDUE:
                by_state["overdue"].append(v)
            elif v.due_at is not None and v.due_at.astimezone(tz).date() == today:
                by_state["due_today"].append(v)
            elif v.state == State.DUE_SOON:
                by_state["due_soon"].append(v)
            elif v.state == State.WAITING:
                by_state["waiting"].append(v)
            if v.case_code in self.idle:
                by_state["idle"].append(v)
        sections = []
        cap = digest.max_lines
        for key in digest.sections:
            if key == "findings":
                lines = tuple(
                    f"{f['subject']}: {f['detail']}"
                    for f in (
                        self.findings
                        if units is None
                        else [f for f in self.case_findings if f["unit_code"] in units]
                    )
                )
                if lines:
                    sections.append(
                        DigestSection("findings", findings=lines[:cap], total=len(lines))
                    )
            elif by_state.get(key):
                cases = sorted(by_state[key], key=lambda v: (v.due_at is None, v.due_at or at))
                sections.append(DigestSection(key, cases=tuple(cases[:cap]), total=len(cases)))
        ranking: tuple[UnitRate, ...] = ()
        unit_rate = None
        backlog: tuple[BacklogLine, ...] = ()
        if units is None:
            late = [v for v in mine if self.late_days.get(v.case_code, 0) > LATE_DAYS]
            if late:
                late.sort(key=lambda v: -self.late_days[v.case_code])  # the latest first
                sections.append(DigestSection("late_5", cases=tuple(late[:cap]), total=len(late)))
            tops = [
                self.rates[u.code]
                for u in settings.config.units
                if u.code in self.rates and self.rates[u.code].received
            ]
            ranking = tuple(
                sorted(tops, key=lambda r: (r.rate is None, -(r.rate or 0), r.unit_name))
            )
        else:
            backlog = self.backlog(settings, units)
            roots = [
                u for u in units if settings.units.get(u) and settings.units[u].parent not in units
            ]
            if len(roots) == 1 and roots[0] in self.rates:
                unit_rate = self.rates[roots[0]]
        if not any(s.cases or s.findings for s in sections):
            return None  # never an empty digest
        unit_name = None
        if units is not None:
            roots = [
                u for u in units if settings.units.get(u) and settings.units[u].parent not in units
            ]
            unit_name = ", ".join(settings.units[u].name for u in sorted(roots))
        return DigestView(
            name=digest.name,
            scheduled_at=at,
            unit_name=unit_name,
            sections=tuple(sections),
            backlog=backlog,
            unit_rate=unit_rate,
            ranking=ranking,
        )
