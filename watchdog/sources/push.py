"""HTTP push (SPEC 6): the bodies of `POST /api/v1/cases` and `POST /api/v1/cases/{code}/events`,
checked and turned into what the store writes. Pure: no web framework, no database; the HTTP
side (`watchdog.http.app`) reads the request and calls these.

Cases go through the same `normalize_case` as a file import (canonical field names only). An
event names its kind and instant; its data says what the kind needs. What it changes on the
case is decided by `effect`, which the store calls with the row it read under the write lock:

- an event is recorded always (the engine replays events), but it changes the case's snapshot
  only when it is not older than what the case already shows for the same thing (its status,
  due, step or assignee): a retried or late event never rolls a case back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from watchdog.config import Settings
from watchdog.domain import EventKind, Status
from watchdog.sources.fields import FIELDS, Lookups, RowProblems, normalize_case
from watchdog.store.cases import TEXT_LIMITS
from watchdog.store.events import Effect, NewEvent
from watchdog.timefmt import parse_when

# The one name besides the canonical ones: SPEC 6 calls `submission_channel` "channel".
CASE_FIELDS = ("case_code", *(f for f in FIELDS if f != "case_code"), "channel")
EVENT_ID_MAX = 128  # case_events.event_id
TEXT_MAX = 4000


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem of a pushed body: which item (None for the body as a whole) and field."""

    index: int | None
    field: str | None
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass
class PushedCases:
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)


def read_cases(body: Any, settings: Settings) -> PushedCases:
    """One case object or a list of them -> normalised records, with EVERY problem found (by
    index in the list, 0 for a single object, and field). Any error means nothing is written."""
    out = PushedCases()
    if isinstance(body, dict):
        items = [body]
    elif isinstance(body, list):
        items = body
    else:
        out.errors.append(FieldError(None, None, "expected a case object or a list of them"))
        return out
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            out.errors.append(FieldError(i, None, "expected a JSON object"))
            continue
        raw: dict[str, Any] = {}
        before = len(out.errors)
        for key, value in item.items():
            name = "submission_channel" if key == "channel" else key
            if key not in CASE_FIELDS:
                out.errors.append(
                    FieldError(i, key, f"unknown field; the fields are: {', '.join(CASE_FIELDS)}")
                )
            elif not _scalar(value):
                out.errors.append(FieldError(i, key, "expected a string, a number or null"))
            elif name in raw:
                out.errors.append(FieldError(i, key, "channel and submission_channel both given"))
            else:
                raw[name] = value
        problems = RowProblems()
        record = normalize_case(raw, settings, problems)
        shown = "channel" if "channel" in item else "submission_channel"
        for name, reason in problems.problems:
            out.errors.append(
                FieldError(i, shown if name == "submission_channel" else name, reason)
            )
        for name, reason in problems.warnings:
            out.warnings.append(FieldError(i, name, reason))
        if len(out.errors) == before:
            out.records.append(record)
    return out


def _scalar(value: Any) -> bool:
    if value is None or isinstance(value, str):
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int)


# ----- events ----------------------------------------------------------------------------------

# What each kind carries besides event_id, kind and at: field -> required.
EVENT_DATA: dict[EventKind, dict[str, bool]] = {
    EventKind.EXTENDED: {"due_at": True, "reason": False},
    EventKind.STEP_STARTED: {"step": True, "handler": False},
    EventKind.ASSIGNED: {"assignee": True},
}
# `reason` of an extension, as the engine reads it: a gia hạn (the default) is checked against
# the law's notice and counted; an appointment (first given) or a supplement reset is not.
REASONS = ("extension", "appointment", "supplement")

# The status a kind sets.
STATUS_OF: dict[EventKind, Status] = {
    EventKind.FINISHED: Status.FINISHED,
    EventKind.RETURNED: Status.RETURNED,
    EventKind.WITHDRAWN: Status.WITHDRAWN,
    EventKind.STOPPED: Status.STOPPED,
    EventKind.REJECTED: Status.NOT_ACCEPTED,
    EventKind.SUPPLEMENT_REQUESTED: Status.SUPPLEMENT,
    EventKind.SUPPLEMENT_RECEIVED: Status.IN_PROGRESS,
}
# Kinds that speak of the same part of the snapshot: an event changes it only when it is not
# older than the latest recorded event of its group.
_GROUP_OF: dict[EventKind, frozenset[str]] = {
    **{k: frozenset(STATUS_OF) for k in STATUS_OF},
    EventKind.EXTENDED: frozenset({EventKind.EXTENDED}),
    EventKind.STEP_STARTED: frozenset({EventKind.STEP_STARTED}),
    EventKind.ASSIGNED: frozenset({EventKind.ASSIGNED}),
}
_LIMITS = {
    "step": TEXT_LIMITS.get("current_step", TEXT_MAX),
    "handler": TEXT_LIMITS.get("step_handler", TEXT_MAX),
    "assignee": TEXT_LIMITS.get("assignee", TEXT_MAX),
    "reason": 32,
}


@dataclass(frozen=True, slots=True)
class PushedEvent:
    event_id: str
    kind: EventKind
    at: datetime
    at_is_date: bool = False  # given as a date only (kept as the start of that day)
    due_at: datetime | date | None = None  # extended; a date means that day's close
    reason: str | None = None  # extended
    step: str | None = None  # step_started
    handler: str | None = None  # step_started
    assignee: str | None = None  # assigned

    @property
    def new_event(self) -> NewEvent:
        return NewEvent(self.event_id, self.kind.value, self.at)


@dataclass
class ReadEvent:
    event: PushedEvent | None = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)


def read_event(body: Any, settings: Settings) -> ReadEvent:
    """`{"event_id", "kind", "at", ...data}` -> a PushedEvent, or every problem found."""
    out = ReadEvent()
    errors = out.errors
    if not isinstance(body, dict):
        errors.append(FieldError(None, None, "expected an event object"))
        return out

    def bad(name: str | None, message: str) -> None:
        errors.append(FieldError(None, name, message))

    event_id = body.get("event_id")
    if isinstance(event_id, int) and not isinstance(event_id, bool):
        event_id = str(event_id)
    if not isinstance(event_id, str) or not event_id.strip():
        bad("event_id", "required: a non-empty string that identifies the event at its source")
    elif len(event_id) > EVENT_ID_MAX or "\x00" in event_id:
        bad("event_id", f"at most {EVENT_ID_MAX} characters, no NUL")
    kind = None
    raw_kind = body.get("kind")
    try:
        kind = EventKind(raw_kind)
    except ValueError:
        kinds = ", ".join(k.value for k in EventKind)
        bad("kind", f"expected one of {kinds}, got {raw_kind!r}")
    tz = settings.default_calendar.tz
    at, at_is_date = None, False
    if body.get("at") is None:
        bad("at", "required: the instant of the event, ISO 8601")
    else:
        when = _instant("at", body["at"], tz, bad)
        if isinstance(when, datetime):
            at = when
        elif isinstance(when, date):
            at, at_is_date = datetime.combine(when, time(0), tz), True
    allowed = EVENT_DATA.get(kind, {}) if kind is not None else None
    data: dict[str, Any] = {}
    for key, value in body.items():
        if key in ("event_id", "kind", "at"):
            continue
        if allowed is None:
            continue  # the kind is wrong: its data cannot be judged
        if key not in allowed:
            expected = ", ".join(allowed) or "nothing besides event_id, kind and at"
            bad(key, f"not a field of a {kind.value} event; it takes {expected}")
            continue
        data[key] = value
    lookups = Lookups.of(settings)
    problems = RowProblems()
    texts: dict[str, str | None] = {}
    for key in ("reason", "step", "handler", "assignee"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            bad(key, "expected a string")
            continue
        value = value.strip()
        if "\x00" in value or len(value) > _LIMITS[key]:
            bad(key, f"at most {_LIMITS[key]} characters, no NUL")
            continue
        if key == "reason" and value not in REASONS:
            bad(key, f"expected one of {', '.join(REASONS)}")
            continue
        if key in ("handler", "assignee") and value:
            value = lookups.official(key, value, problems)
        texts[key] = value or None
    out.warnings.extend(FieldError(None, k, m) for k, m in problems.warnings)
    due = None
    if data.get("due_at") is not None:
        due = _instant("due_at", data["due_at"], tz, bad)
    named = {e.field for e in errors}
    for key, required in (allowed or {}).items():
        given = due if key == "due_at" else texts.get(key)
        if required and given is None and key not in named:
            bad(key, f"required for a {kind.value} event")
    if errors or kind is None or at is None:
        return out
    out.event = PushedEvent(
        event_id=str(event_id),
        kind=kind,
        at=at,
        at_is_date=at_is_date,
        due_at=due,
        reason=texts.get("reason"),
        step=texts.get("step"),
        handler=texts.get("handler"),
        assignee=texts.get("assignee"),
    )
    return out


def _instant(name: str, value: Any, tz, bad) -> datetime | date | None:
    if not isinstance(value, str):
        bad(name, "expected an ISO 8601 instant as a string, such as 2026-03-10T09:00:00+07:00")
        return None
    try:
        return parse_when(value, tz)
    except ValueError as e:
        bad(name, str(e))
        return None


class EventRefused(ValueError):
    """The event contradicts the stored case (e.g. before its reception): nothing is written."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def effect(event: PushedEvent, settings: Settings) -> Effect:
    """What `event` changes on the stored case and the `data` it is recorded with (the keys the
    engine reads, as `sources.ingest.derive_events` writes them), for `store.events.apply_event`.
    """

    def decide(
        before: Mapping[str, Any], latest: Mapping[str, datetime]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        calendar = settings.calendar_for(before["unit_code"])
        received = before["received_at"]
        at = event.at
        if at < received and not (
            event.at_is_date and at.date() >= calendar.local(received).date()
        ):
            raise EventRefused("at", f"is before the case's received_at ({_iso(received)})")
        newest = [t for k, t in latest.items() if k in _GROUP_OF.get(event.kind, ())]
        if before.get("source_updated_at") is not None:
            newest.append(before["source_updated_at"])
        if event.kind is EventKind.STEP_STARTED and before.get("step_started_at") is not None:
            newest.append(before["step_started_at"])
        current = all(at >= t for t in newest)
        values: dict[str, Any] = {}
        data: dict[str, Any] = {}
        kind = event.kind
        if kind is EventKind.EXTENDED:
            due = event.due_at
            if isinstance(due, date) and not isinstance(due, datetime):
                due = calendar.standard_close(due)
            assert isinstance(due, datetime)
            if due < received:
                raise EventRefused("due_at", f"is before the case's received_at ({_iso(received)})")
            if before.get("due_at") is not None:
                data["previous_due"] = _iso(before["due_at"])
            data["new_due"] = _iso(due)
            data["reason"] = event.reason or "extension"
            if current:
                values["due_at"] = due
        elif kind is EventKind.STEP_STARTED:
            data = {"step": event.step, "handler": event.handler}
            if current:
                values = {
                    "current_step": event.step,
                    "step_started_at": at,
                    "step_handler": event.handler,
                }
        elif kind is EventKind.ASSIGNED:
            data = {"to": event.assignee}
            if current:
                values["assignee"] = event.assignee
        elif kind in STATUS_OF and current:
            values["status"] = int(STATUS_OF[kind])
            if kind is EventKind.FINISHED:
                values["finished_at"] = at
            elif kind is EventKind.RETURNED:
                values["returned_at"] = at
                if before.get("finished_at") is None:
                    values["finished_at"] = at
        return values, data

    return decide


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()
