"""Writing incoming case records into the store: upsert by case code, only what changed.

Every source (file import, HTTP push, SQL poll) ends here, so change detection and re-planning
happen in one place: a new or changed case gets `next_check_at = now`, which makes the engine
look at it on its next tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from watchdog.domain import EventKind, Status
from watchdog.sources.fields import FIELDS
from watchdog.store import Store
from watchdog.store.cases import SOURCE_COLUMNS, read_source_rows, write_cases

# Record fields compared to decide whether a case changed (the source's updated_at is kept as
# source_updated_at; the row's own updated_at says when *we* last changed it).
_COMPARED = tuple(
    "source_updated_at" if f == "updated_at" else f for f in FIELDS if f != "case_code"
)
assert set(_COMPARED) | {"case_code"} == set(SOURCE_COLUMNS), "fields and columns differ"


@dataclass
class IngestResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    # (position in the batch given, reason) of records the database refused; none written
    refused: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.refused.extend(other.refused)


def _stored_form(record: dict[str, Any]) -> dict[str, Any]:
    row = {k: record.get(k) for k in _COMPARED if k != "source_updated_at"}
    row["case_code"] = record["case_code"]
    row["source_updated_at"] = record.get("updated_at")
    return row


def _changes(now: datetime):
    def decide(before: Mapping[str, Any] | None, row: Mapping[str, Any]):
        if before is not None and all(before[k] == row[k] for k in _COMPARED):
            return None
        return derive_events(before, row, now)

    return decide


class DryRun:
    """What a dry run has "written" so far: a code repeated in a later batch is compared with
    its earlier row, exactly as the real import would find it in the database."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}


def upsert_cases(
    store: Store,
    records: Sequence[dict[str, Any]],
    now: datetime,
    *,
    source: str = "import",
    dry_run: DryRun | bool = False,
) -> IngestResult:
    """Upsert one batch of normalised records (see sources.fields.normalize_case).

    The stored "before" is read and the changes written in one write transaction, so counts
    are exact and events are derived from what is really stored, whatever else writes.
    The last record of a code in a batch wins, as in the file; `refused` holds the positions
    (in `records`) of records the database refused, each refused alone.
    """
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, record in enumerate(records):
        latest[record["case_code"]] = (i, _stored_form(record))
    if not latest:
        return IngestResult()
    if dry_run:
        return _dry_run(store, latest, now, dry_run if isinstance(dry_run, DryRun) else DryRun())
    positions = [i for i, _ in latest.values()]
    wrote = write_cases(
        store, [row for _, row in latest.values()], _changes(now), now, source=source
    )
    return IngestResult(
        wrote.inserted,
        wrote.updated,
        wrote.unchanged,
        [(positions[k], reason) for k, reason in wrote.refused],
    )


def _dry_run(store: Store, latest, now: datetime, state: DryRun) -> IngestResult:
    result = IngestResult()
    decide = _changes(now)
    unseen = [code for code in latest if code not in state.rows]
    stored = read_source_rows(store, unseen) if unseen else {}
    for code, (_, row) in latest.items():
        before = state.rows.get(code) or stored.get(code)
        if decide(before, row) is None:
            result.unchanged += 1
            continue
        if before is None:
            result.inserted += 1
        else:
            result.updated += 1
        state.rows[code] = row
    return result


def _event(kind: EventKind, at: datetime, **data: Any) -> dict[str, Any]:
    extra = data.get("step") or data.get("to") or data.get("new_due") or ""
    if isinstance(extra, datetime):
        extra = extra.astimezone(UTC).isoformat()
    return {
        "event_id": f"{kind.value}:{at.astimezone(UTC).isoformat()}:{extra}",
        "kind": kind.value,
        "at": at,
        "data": {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()},
    }


_CLOSING = {
    Status.FINISHED: (EventKind.FINISHED, "finished_at"),
    Status.RETURNED: (EventKind.RETURNED, "returned_at"),
    Status.WITHDRAWN: (EventKind.WITHDRAWN, None),
    Status.STOPPED: (EventKind.STOPPED, None),
    Status.NOT_ACCEPTED: (EventKind.REJECTED, None),
}


def derive_events(old: Any, new: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """What happened between two snapshots of a case, as events (SPEC 6 event kinds).

    File and SQL sources send snapshots, not events; the engine needs to know when a supplement
    was requested and received, when the appointment moved and when steps changed hands. Event
    ids are deterministic, so importing the same change twice records it once. The instant is
    the source's `updated_at` when it gives one, else `now`.
    """
    at = new.get("source_updated_at") or now
    status = Status(new["status"])
    if old is None:  # first sight: only a wait in progress matters, the record holds the rest
        return [_event(EventKind.SUPPLEMENT_REQUESTED, at)] if status.is_waiting else []
    out = []
    before = Status(old["status"])
    supplement_done = before.is_waiting and not status.is_waiting
    if status.is_waiting and not before.is_waiting:
        out.append(_event(EventKind.SUPPLEMENT_REQUESTED, at))
    if supplement_done:
        out.append(_event(EventKind.SUPPLEMENT_RECEIVED, at))
    if old["due_at"] is None and new["due_at"] is not None:
        # the source gives its appointment for the first time: a new due, not an extension
        out.append(_event(EventKind.EXTENDED, at, new_due=new["due_at"], reason="appointment"))
    elif old["due_at"] is not None and new["due_at"] is not None and old["due_at"] != new["due_at"]:
        reason = "supplement" if supplement_done else "extension"
        out.append(
            _event(
                EventKind.EXTENDED,
                at,
                previous_due=old["due_at"],
                new_due=new["due_at"],
                reason=reason,
            )
        )
    if new["current_step"] != old["current_step"] or (
        new["step_started_at"] != old["step_started_at"] and new["current_step"]
    ):
        if old["current_step"] and old["step_started_at"]:
            out.append(
                _event(
                    EventKind.STEP_STARTED,
                    old["step_started_at"],
                    step=old["current_step"],
                    handler=old["step_handler"],
                )
            )
        if new["current_step"]:
            out.append(
                _event(
                    EventKind.STEP_STARTED,
                    new["step_started_at"] or at,
                    step=new["current_step"],
                    handler=new["step_handler"],
                )
            )
    if new["assignee"] != old["assignee"] and new["assignee"]:
        out.append(_event(EventKind.ASSIGNED, at, to=new["assignee"]))
    if status != before and status in _CLOSING:
        kind, field = _CLOSING[status]
        out.append(_event(kind, (new.get(field) if field else None) or at))
    return out
