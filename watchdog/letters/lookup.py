"""One case by its code, with its events: what a letter is written from."""

from __future__ import annotations

from watchdog.domain import CaseEvent, CaseRecord
from watchdog.store import Store
from watchdog.store.dashboard import case_with_events


def find_case(store: Store, case_code: str) -> tuple[CaseRecord, list[CaseEvent]] | None:
    """The stored case with this code and its events in order (one read); None when there is
    none. The store's read is the dashboard's case page's own (`store.dashboard`)."""
    found = case_with_events(store, case_code)
    if found is None:
        return None
    record, events = found
    return record, list(events)
