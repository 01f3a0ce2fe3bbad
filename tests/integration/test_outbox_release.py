"""Messages given back at shutdown (claimed, never sent) are claimed again as the same
attempt: the release leaves no attempt behind to collide with (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from watchdog.store import Store
from watchdog.store.outbox import (
    Completion,
    NewMessage,
    attempts_of,
    claim_messages,
    complete,
    enqueue_message,
    history,
    release,
)

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 11, 16, 9, 0, tzinfo=VN)
LEASE = timedelta(minutes=5)


def test_a_released_message_is_claimed_again_as_the_same_attempt(store: Store) -> None:
    message = NewMessage("test", "cv", "file", "cv", "s", "t")
    mid = enqueue_message(store, message, NOW, NOW)
    (first,) = claim_messages(store, "stopping", NOW, LEASE, 10)
    assert first.attempts == 1
    release(store, "stopping", [mid], NOW)
    (row,) = history(store)
    assert (row.status, row.attempts) == ("pending", 0)
    assert attempts_of(store, mid) == []
    (again,) = claim_messages(store, "next", NOW + timedelta(seconds=1), LEASE, 10)
    assert again.attempts == 1
    done = complete(store, "next", NOW, [Completion(mid, "sent", "sent", provider_id="x")])
    assert done == [mid]
    assert [(a, owner, outcome) for a, owner, outcome, _ in attempts_of(store, mid)] == [
        (1, "next", "sent")
    ]


def test_release_touches_only_the_owners_messages(store: Store) -> None:
    ids = [
        enqueue_message(store, NewMessage("test", f"cv{i}", "file", f"cv{i}", "s", "t"), NOW, NOW)
        for i in range(2)
    ]
    claim_messages(store, "a", NOW, LEASE, 1)
    claim_messages(store, "b", NOW, LEASE, 1)
    release(store, "a", ids, NOW)
    statuses = sorted(r.status for r in history(store))
    assert statuses == ["pending", "sending"]
