"""The dashboard's store ports on SQLite and PostgreSQL: accounts (unique logins, the failure
count and lock, session epochs) and the findings an account may see, a page at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store
from watchdog.store.dashboard import case_with_events, open_findings_in_scope
from watchdog.store.findings import NewFinding, record_findings
from watchdog.store.users import (
    add_user,
    count_users,
    end_sessions,
    find_user,
    record_failure,
    record_success,
)

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
LIMITS = {"limit": 3, "window": timedelta(minutes=15), "lock_for": timedelta(minutes=15)}


def test_a_login_is_created_once(store: Store) -> None:
    assert add_user(store, "cv", "$argon2id$h1", "official", "chuyenvien", NOW)
    assert not add_user(store, "cv", "$argon2id$h2", "admin", None, NOW)
    user = find_user(store, "cv")
    assert (user.password_hash, user.role, user.official_id) == (
        "$argon2id$h1",
        "official",
        "chuyenvien",
    )
    assert (user.session_epoch, user.failed_logins, user.disabled) == (1, 0, False)
    assert count_users(store) == 1
    assert find_user(store, "CV") is None  # logins are compared exactly


def test_failures_lock_within_the_window_and_a_success_clears(store: Store) -> None:
    add_user(store, "cv", "h", "official", "chuyenvien", NOW)
    assert record_failure(store, "nobody", NOW, **LIMITS) is None
    t = NOW
    for n in (1, 2):
        user = record_failure(store, "cv", t, **LIMITS)
        assert (user.failed_logins, user.locked_until) == (n, None)
        t += timedelta(minutes=10)
    user = record_failure(store, "cv", t, **LIMITS)
    assert (user.failed_logins, user.locked_until) == (3, t + timedelta(minutes=15))
    record_success(store, user.id, t + timedelta(minutes=20), password_hash="h-new")
    user = find_user(store, "cv")
    assert (user.failed_logins, user.locked_until, user.password_hash) == (0, None, "h-new")
    assert user.last_login_at == t + timedelta(minutes=20)
    # failures farther apart than the window never add up
    t += timedelta(hours=1)
    for _ in range(5):
        user = record_failure(store, "cv", t, **LIMITS)
        t += timedelta(minutes=16)
    assert (user.failed_logins, user.locked_until) == (1, None)


def test_ending_sessions_moves_the_epoch(store: Store) -> None:
    add_user(store, "cv", "h", "official", "chuyenvien", NOW)
    user = find_user(store, "cv")
    end_sessions(store, user.id, NOW)
    end_sessions(store, user.id, NOW)
    assert find_user(store, "cv").session_epoch == 3


def _cases(store: Store, small_settings) -> dict[str, int]:
    rows = [
        ("HC-1", "STP.HC", "chuyenvien"),
        ("HC-2", "STP.HC", "truongphong"),
        ("XD-1", "SXD", None),
    ]
    records = []
    for code, unit, assignee in rows:
        problems = RowProblems()
        raw = {
            "case_code": code,
            "procedure_code": "2.000488",
            "unit_code": unit,
            "received_at": "02/11/2026 09:00",
            "assignee": assignee,
        }
        records.append(normalize_case(raw, small_settings, problems))
    upsert_cases(store, records, NOW)
    return {code: case_with_events(store, code)[0].id for code, _, _ in rows}


def test_findings_in_scope_are_paged_newest_first(store: Store, small_config) -> None:
    from watchdog.config import load_settings

    ids = _cases(store, load_settings(small_config, env={}))
    assert case_with_events(store, "NOPE") is None
    found = [NewFinding("due_mismatch", code, f"lệch {code}", i) for code, i in ids.items()]
    for n, f in enumerate(found):
        record_findings(store, [f], NOW + timedelta(minutes=n))
    record_findings(
        store, [NewFinding("unknown_unit", "X9", "X9 chưa cấu hình")], NOW - timedelta(minutes=1)
    )

    rows, total = open_findings_in_scope(store, limit=2)
    assert total == 4 and [r.subject for r in rows] == ["XD-1", "HC-2"]
    rows, _ = open_findings_in_scope(store, limit=2, offset=2)
    assert [r.subject for r in rows] == ["HC-1", "X9"]
    assert rows[1].case_code is None and rows[0].unit_code == "STP.HC"

    rows, total = open_findings_in_scope(store, units={"STP.HC", "STP"})
    assert total == 2 and {r.case_code for r in rows} == {"HC-1", "HC-2"}
    rows, total = open_findings_in_scope(store, official="chuyenvien")
    assert total == 1 and rows[0].case_code == "HC-1"
    rows, total = open_findings_in_scope(store, case_code="XD-1")
    assert total == 1 and rows[0].detail == "lệch XD-1"
