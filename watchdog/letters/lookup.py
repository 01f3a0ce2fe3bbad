"""One case by its code, with its events: what a letter is written from."""

from __future__ import annotations

from watchdog.domain import CaseEvent, CaseRecord, Status
from watchdog.store import Store
from watchdog.store.cases import read_source_rows
from watchdog.store.events import stored_events


def find_case(store: Store, case_code: str) -> tuple[CaseRecord, list[CaseEvent]] | None:
    """The stored case with this code and its events in order; None when there is none.

    Built from the store's named reads of a case's source columns and of its events (two
    short reads: a letter is a draft, an event landing between them changes nothing that
    matters)."""
    row = read_source_rows(store, [case_code]).get(case_code)
    if row is None:
        return None
    values = dict(row)
    values["status"] = Status(values["status"])
    record = CaseRecord(**values)
    events = [CaseEvent(e.kind, e.at, e.data) for e in stored_events(store, case_code)]
    return record, events
