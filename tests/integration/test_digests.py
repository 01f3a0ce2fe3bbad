"""Digests on SQLite and PostgreSQL (SPEC 5): one per recipient per scheduled run, never empty,
working days only unless every_day, exactly once across passes, and sent late only within the
grace window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from watchdog.config import load_settings
from watchdog.engine.rules import load_rules
from watchdog.outbox.digests import GRACE, runs_between, send_due_digests
from watchdog.outbox.wiring import renderer_for
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store
from watchdog.store.outbox import history

VN = timezone(timedelta(hours=7))

RULES = """\
policies: []
digests:
  - {name: sang, to: [unit_heads], schedule: "30 7 * * 1-5",
     sections: [overdue, due_today, due_soon]}
  - {name: tuan, to: [supervisors], schedule: "0 8 * * 1", sections: [overdue, waiting]}
  - {name: moi_ngay, to: [unit_heads], schedule: "0 18 * * *", every_day: true,
     sections: [overdue]}
"""


def at(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=VN)


@pytest.fixture
def settings(tmp_path: Path, small_config: Path):
    text = small_config.read_text(encoding="utf-8")
    text += "rules: [rules.yaml]\nchannels: {file: {dir: out}}\n"
    small_config.write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return load_settings(small_config, env={})


def load(store: Store, settings, rows: list[dict]) -> None:
    records = []
    for raw in rows:
        problems = RowProblems()
        records.append(normalize_case(raw, settings, problems))
        assert not problems, problems.problems
    upsert_cases(store, records, at("02/11/2026 09:00"))


CASES = [
    # 10 working days from Mon 02/11 09:00: due Mon 16/11 09:00
    {"case_code": "HS-DUE-16", "received_at": "02/11/2026 09:00"},
    # from Mon 26/10 09:00: due Mon 09/11: a week overdue on 16/11
    {"case_code": "HS-LATE", "received_at": "26/10/2026 09:00"},
]


def rows() -> list[dict]:
    base = {
        "procedure_code": "2.000488",
        "unit_code": "STP.HC",
        "status": 4,
        "assignee": "chuyenvien",
    }
    return [base | c for c in CASES]


def digests(store: Store, settings, now: datetime):
    rules = load_rules(settings, env={})
    return send_due_digests(store, settings, rules, renderer_for(settings), now)


def test_one_digest_per_head_never_twice(store: Store, settings) -> None:
    load(store, settings, rows())
    first = digests(store, settings, at("16/11/2026 07:31"))
    # unit heads: truongphong (STP.HC) and lanhdao (T and STP: one digest, both subtrees)
    sent = {(r.recipient, r.stages[0]) for r in history(store)}
    assert sent == {("truongphong", "digest/sang"), ("lanhdao", "digest/sang")}
    assert first.written == 2
    again = digests(store, settings, at("16/11/2026 07:45"))
    assert again.written == 0 and again.already == 2
    msg = next(r for r in history(store) if r.recipient == "truongphong")
    assert msg.status == "pending" and msg.subject
    # the supervisors' Monday digest at 08:00
    later = digests(store, settings, at("16/11/2026 08:05"))
    assert later.written == 1
    assert {r.recipient for r in history(store) if r.stages == ["digest/tuan"]} == {
        "thanhtra@example.vn"
    }


def test_digest_content_lists_sections_in_vietnamese(store: Store, settings) -> None:
    load(store, settings, rows())
    digests(store, settings, at("16/11/2026 07:31"))
    from watchdog.store.outbox import claim_messages

    claimed = claim_messages(store, "t", at("16/11/2026 07:32"), timedelta(minutes=1), 10)
    text = next(c.text for c in claimed if c.recipient == "truongphong")
    assert text is not None
    assert "HỒ SƠ QUÁ HẠN (1)" in text and "HS-LATE" in text
    assert "ĐẾN HẠN HÔM NAY (1)" in text and "HS-DUE-16" in text
    assert "Nguyễn Văn Chuyên" in text  # backlog per official


def test_a_long_section_shows_its_most_urgent_lines_and_counts_the_rest(
    store: Store, settings, tmp_path: Path
) -> None:
    """`max_lines`: a million open cases must not make a digest of 50,000 lines."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        RULES.replace(
            "sections: [overdue, due_today, due_soon]}", "sections: [overdue], max_lines: 2}"
        ),
        encoding="utf-8",
    )
    late = [
        {"case_code": f"HS-LATE-{n}", "received_at": f"{19 + n}/10/2026 09:00"} for n in range(5)
    ]
    base = rows()[0]
    load(store, settings, [base | c for c in late])
    digests(store, settings, at("16/11/2026 07:31"))
    from watchdog.store.outbox import claim_messages

    claimed = claim_messages(store, "t", at("16/11/2026 07:32"), timedelta(minutes=1), 10)
    mail = next(c for c in claimed if c.recipient == "truongphong")
    assert "HỒ SƠ QUÁ HẠN (5)" in (mail.text or "")
    shown = [n for n in range(5) if f"HS-LATE-{n}" in (mail.text or "")]
    assert shown == [0, 1]  # the most overdue (received first)
    assert "… và 3 hồ sơ khác" in (mail.text or "") and "… và 3 hồ sơ khác" in (mail.html or "")
    assert ": 5 quá hạn" in mail.subject


def test_no_digest_when_there_is_nothing_to_say(store: Store, settings) -> None:
    report = digests(store, settings, at("16/11/2026 07:31"))
    assert report.written == 0 and report.empty == 2
    assert history(store) == []


def test_working_days_only_unless_every_day(store: Store, settings) -> None:
    load(store, settings, rows())
    # Fri 01/01/2027 is New Year: no morning digest; the every-day one still runs at 18:00
    assert digests(store, settings, at("01/01/2027 07:31")).written == 0
    report = digests(store, settings, at("01/01/2027 18:01"))
    assert report.written == 2
    assert {r.stages[0] for r in history(store)} == {"digest/moi_ngay"}


def test_a_missed_run_is_sent_once_within_the_grace_window(store: Store, settings) -> None:
    load(store, settings, rows())
    too_late = at("16/11/2026 07:30") + GRACE + timedelta(minutes=1)
    digests(store, settings, too_late)
    # the 07:30 morning digest is past its grace; the supervisors' 08:00 one is not
    assert {r.stages[0] for r in history(store)} == {"digest/tuan"}
    report = digests(store, settings, at("16/11/2026 09:00"))  # 1h30 late: sent, once
    assert (report.written, report.already) == (2, 1)


def test_runs_between_follows_cron_in_the_calendar_zone(settings) -> None:
    rules = load_rules(settings, env={})
    sang = next(d for d in rules.digests if d.name == "sang")
    runs = runs_between(sang, settings, at("13/11/2026 00:00"), at("17/11/2026 00:00"))
    # Friday 13 and Monday 16 at 07:30 local; the weekend has none
    assert runs == [at("13/11/2026 07:30"), at("16/11/2026 07:30")]


def test_supervisors_digest_ranks_units_and_lists_long_overdue(store: Store, settings) -> None:
    load(store, settings, rows())
    digests(store, settings, at("16/11/2026 08:01"))
    from watchdog.store.outbox import claim_messages

    claimed = claim_messages(store, "t", at("16/11/2026 08:02"), timedelta(minutes=1), 10)
    text = next(c.text for c in claimed if c.recipient == "thanhtra@example.vn")
    assert text is not None
    # HS-LATE is 5 working days late on Monday 16/11 (due Mon 09/11): not yet "more than 5"
    assert "QUÁ HẠN TRÊN 5 NGÀY" not in text.upper()
    assert "HS-LATE" in text  # in the overdue section
    later = claim_messages(store, "t", at("16/11/2026 08:02"), timedelta(minutes=1), 10)
    assert later == []  # claimed once
    digests(store, settings, at("23/11/2026 08:01"))  # a week later: 10 working days late
    week2 = [
        c.text or ""
        for c in claim_messages(store, "t", at("23/11/2026 08:02"), timedelta(minutes=1), 10)
        if c.recipient == "thanhtra@example.vn" and c.created_at == at("23/11/2026 08:01")
    ]
    assert len(week2) == 1
    assert "QUÁ HẠN TRÊN 5 NGÀY LÀM VIỆC" in week2[0].upper()
    assert "Sở Tư pháp" in week2[0]  # units ranked by on-time rate this month


def test_the_digests_list_what_a_look_at_every_open_case_lists(
    store: Store, tmp_path: Path
) -> None:
    """The digests read only the cases a section can show (overdue, due soon, waiting), through
    the board's indexes; a digest that asks for `idle` looks at every open case, as all of them
    did before. On the demo province, before and after the engine planned it, both give every
    recipient the same digest: the same sections, cases, findings, backlog and ranking."""
    import shutil

    from tests.conftest import ROOT
    from watchdog.demo import load_demo
    from watchdog.engine.runner import Engine
    from watchdog.outbox.digests import _Snapshot, recipients_of

    shutil.copy(ROOT / "config.example.yaml", tmp_path / "config.yaml")
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    demo = load_settings(tmp_path / "config.yaml", env={})
    now = at("16/11/2026 07:30")
    load_demo(store, demo, now - timedelta(hours=1))
    rules = load_rules(demo, env={})
    kinds = ("overdue", "due_today", "due_soon", "waiting", "findings")
    every = [d.model_copy(update={"sections": kinds}) for d in rules.digests]
    compared = 0
    for planned in (False, True):
        if planned:
            with Engine(store, demo, rules) as engine:
                engine.replan_all(now)
        full = _Snapshot.take(store, demo, now, idle=True)
        fast = _Snapshot.take(store, demo, now, idle=False)
        assert len(fast.views) < len(full.views)  # not every open case
        for digest in every:
            for who, units in recipients_of(digest, demo).items():
                want = full.digest(digest, now, units, demo)
                assert fast.digest(digest, now, units, demo) == want, (planned, who)
                compared += want is not None
    assert compared >= 10
