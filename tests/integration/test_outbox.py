"""The outbox on SQLite and PostgreSQL: firings become grouped messages in the engine's own
transaction, claims never double-send, a dead sender's message goes again as attempt 2,
failures back off and end as dead letters the admin hears of, acknowledgements stop repeats.

The channels here are ports (a counting sink, a failing one): the outbox is what is tested.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from watchdog.channels import Outgoing, Permanent, Sent, Transient
from watchdog.clock import FixedClock
from watchdog.config import load_settings
from watchdog.engine.rules import load_rules
from watchdog.engine.runner import Engine
from watchdog.outbox.enqueue import alerts_hook
from watchdog.outbox.sender import Sender, backoff
from watchdog.outbox.wiring import renderer_for
from watchdog.sources.fields import RowProblems, normalize_case
from watchdog.sources.ingest import upsert_cases
from watchdog.store import Store, schema
from watchdog.store.firings import fired_so_far
from watchdog.store.outbox import (
    Completion,
    NewMessage,
    acknowledge,
    attempts_of,
    claim_messages,
    complete,
    enqueue_message,
    history,
)

VN = timezone(timedelta(hours=7))

RULES = """\
policies:
  - name: p
    stages:
      - {id: due_soon, when: {remaining: "1 working_day"}, notify: [assignee]}
      - {id: overdue, when: {overdue: "0 working_days"}, notify: [assignee, unit_head],
         repeat: "1 working_day", until_ack: true}
"""


def at(text: str) -> datetime:
    return datetime.strptime(text, "%d/%m/%Y %H:%M").replace(tzinfo=VN)


@pytest.fixture
def province(tmp_path: Path, small_config: Path) -> Path:
    text = small_config.read_text(encoding="utf-8")
    text += "rules: [rules.yaml]\nchannels: {file: {dir: out}}\n"
    text += "delivery: {group_window: 5m, max_attempts: 3, backoff: 1m}\n"
    small_config.write_text(text, encoding="utf-8")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    return small_config


def case(code: str, received: str = "02/11/2026 09:00", **extra) -> dict:
    return {
        "case_code": code,
        "procedure_code": "2.000488",  # 10 working days
        "unit_code": "STP.HC",
        "received_at": received,
        "status": 4,
        "assignee": "chuyenvien",
        **extra,
    }


def load(store: Store, settings, rows: list[dict], now: datetime) -> None:
    records = []
    for raw in rows:
        problems = RowProblems()
        records.append(normalize_case(raw, settings, problems))
        assert not problems, problems.problems
    upsert_cases(store, records, now)


class Sink:
    """A channel port that counts what it was asked to send, and can be told to fail."""

    name = "file"

    def __init__(self, answers: list | None = None, delay: float = 0.0):
        self.sent: Counter[int] = Counter()
        self.messages: list[Outgoing] = []
        self.answers = list(answers or [])
        self.delay = delay
        self._lock = threading.Lock()

    async def send(self, message: Outgoing):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            if self.answers:
                answer = self.answers.pop(0)
                if not isinstance(answer, Sent):
                    return answer
            self.sent[message.id] += 1
            self.messages.append(message)
        return Sent(provider_id=f"sink-{message.id}")

    async def aclose(self) -> None:
        pass


def case_ids(store: Store) -> dict[str, int]:
    c = schema.cases.c
    with store.read() as conn:
        return dict(conn.execute(select(c.case_code, c.id)).all())


def tick(store: Store, settings, now: datetime) -> None:
    engine = Engine(store, settings, load_rules(settings, env={}), batch_size=50)
    hook = alerts_hook(store, settings, now)
    engine.ensure_planned(now, on_firings=hook)
    engine.tick(now, on_firings=hook)


def sender(store, settings, sink, now: datetime, owner: str = "a") -> Sender:
    clock = FixedClock(now)
    return Sender(
        store,
        settings,
        renderer_for(settings),
        {"file": sink},
        clock.now,
        owner=owner,
        rng=random.Random(1),
    )


def deliver(s: Sender):
    return asyncio.run(s.deliver_due())


def test_firings_become_one_grouped_message_per_recipient(store: Store, province: Path) -> None:
    settings = load_settings(province, env={})
    load(store, settings, [case("HS-1"), case("HS-2", "02/11/2026 09:03")], at("02/11/2026 09:00"))
    # 13/11 09:10: both cases have one working day left: one due_soon each for chuyenvien
    tick(store, settings, at("13/11/2026 09:10"))
    rows = history(store)
    assert len(rows) == 1
    (msg,) = rows
    assert msg.recipient == "chuyenvien" and msg.status == "pending"
    assert msg.case_codes == ["HS-1", "HS-2"]
    # The same firings never make a second message, however often the engine runs.
    tick(store, settings, at("13/11/2026 09:11"))
    assert len(history(store)) == 1

    # Not yet: the group window (5 minutes) is still open.
    sink = Sink()
    assert deliver(sender(store, settings, sink, at("13/11/2026 09:12"))).sent == 0
    report = deliver(sender(store, settings, sink, at("13/11/2026 09:16")))
    assert report.sent == 1
    (out,) = sink.messages
    assert out.recipient.name == "Nguyễn Văn Chuyên"
    assert out.text.index("HS-1") < out.text.index("HS-2")  # most urgent (earliest due) first
    assert out.ack_data and len(out.ack_data.encode()) <= 64
    # sent once; a second pass at the same instant sends nothing
    assert deliver(sender(store, settings, sink, at("13/11/2026 09:16"))).sent == 0
    assert history(store)[0].status == "sent"


def test_quiet_hours_hold_a_message_until_the_desk_opens(store: Store, province: Path) -> None:
    settings = load_settings(province, env={})
    load(store, settings, [case("HS-1")], at("02/11/2026 09:00"))
    # Monday 16/11 09:00 is the due; at 20:00 the case is overdue, the office closed.
    tick(store, settings, at("16/11/2026 20:00"))
    rows = history(store)
    assert {r.status for r in rows} == {"held"}
    sink = Sink()
    assert deliver(sender(store, settings, sink, at("16/11/2026 23:00"))).sent == 0
    # Tuesday 07:00 the desk opens; the message goes at the end of its group window.
    assert deliver(sender(store, settings, sink, at("17/11/2026 07:05"))).sent == len(rows)


def test_two_senders_never_send_a_message_twice(store: Store, province: Path) -> None:
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    n = 1500
    with store.begin() as conn:  # many messages at once, as a backlog after an outage
        conn.execute(
            schema.messages.insert(),
            [
                {
                    "kind": "test",
                    "recipient": "chuyenvien",
                    "channel": "file",
                    "address": "chuyenvien",
                    "stages": [],
                    "case_codes": [],
                    "urgent": False,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "subject": f"m{i}",
                    "text": f"m{i}",
                    "created_at": now,
                }
                for i in range(n)
            ],
        )
    sink = Sink(delay=0.0005)
    senders = [sender(store, settings, sink, now, owner=f"s{i}") for i in range(2)]
    for s in senders:
        s.batch = 25
    reports = []
    threads = [threading.Thread(target=lambda s=s: reports.append(deliver(s))) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(sink.sent.values()) == n
    assert max(sink.sent.values()) == 1  # no message twice
    assert all(r.sent > 0 for r in reports), [r.sent for r in reports]  # both did a share
    assert {r.status for r in history(store)} == {"sent"}


def test_a_sender_killed_mid_send_leads_to_one_resend_as_attempt_2(
    store: Store, province: Path
) -> None:
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    enqueue_message(
        store, NewMessage("test", "chuyenvien", "file", "chuyenvien", "s", "t"), now, now
    )
    # Sender A claims and dies before recording anything (the send may or may not have left).
    (claimed,) = claim_messages(store, "dead-sender", now, timedelta(minutes=5), 10)
    assert claimed.attempts == 1
    # Within the lease nobody else takes it.
    sink = Sink()
    assert deliver(sender(store, settings, sink, now + timedelta(minutes=4), owner="b")).sent == 0
    # After the lease it is sent again, as attempt 2, and history says so.
    later = now + timedelta(minutes=6)
    assert deliver(sender(store, settings, sink, later, owner="b")).resent == 1
    assert sink.sent[claimed.id] == 1
    (row,) = history(store)
    assert (row.status, row.attempts) == ("sent", 2)
    assert [(a, o) for a, _, o, _ in attempts_of(store, claimed.id)] == [
        (1, "expired"),
        (2, "sent"),
    ]
    # The dead sender coming back to life cannot overwrite the outcome: fenced on the lease.
    assert (
        complete(store, "dead-sender", later, [Completion(claimed.id, "dead", "permanent", "x")])
        == []
    )
    assert history(store)[0].status == "sent"


def test_transient_failures_back_off_then_die_and_the_admin_is_told(
    store: Store, province: Path
) -> None:
    settings = load_settings(province, env={})  # max_attempts 3, backoff 1m
    now = at("13/11/2026 09:00")
    enqueue_message(
        store, NewMessage("test", "chuyenvien", "file", "chuyenvien", "s", "t"), now, now
    )
    sink = Sink(
        [Transient("SMTP 451 try later"), Transient("502", retry_after=600), Transient("x")]
    )
    assert deliver(sender(store, settings, sink, now)).retrying == 1
    (row,) = history(store, status="failed")
    assert row.last_error == "SMTP 451 try later" and row.attempts == 1
    # the retry waits: not at once, at the latest after the first backoff step
    assert deliver(sender(store, settings, sink, now + timedelta(seconds=20))).claimed == 0
    t2 = now + timedelta(minutes=1)
    assert deliver(sender(store, settings, sink, t2)).retrying == 1
    # retry_after=600 is honoured: nothing before ten minutes
    assert deliver(sender(store, settings, sink, t2 + timedelta(minutes=9))).claimed == 0
    t3 = t2 + timedelta(minutes=10, seconds=1)
    report = deliver(sender(store, settings, sink, t3))
    assert report.dead == 1
    dead = history(store, status="dead")
    assert len(dead) == 1 and "attempt 3 of 3" in (dead[0].last_error or "")
    notices = [r for r in history(store) if r.kind == "notice"]
    assert [(n.recipient, n.status) for n in notices] == [("thanhtra@example.vn", "sent")]
    (notice,) = sink.messages  # the notice went out in the same pass (no e-mail: file channel)
    assert "không gửi được" in notice.subject
    assert "watchdog history --status dead" in notice.text


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    base = timedelta(minutes=1)
    delays = [backoff(a, base, rng, None) for a in range(1, 12)]
    for a, d in enumerate(delays, start=1):
        step = min(timedelta(hours=1), base * 2 ** (a - 1))
        assert step / 2 <= d <= step
    assert backoff(1, base, rng, 900) >= timedelta(seconds=900)


def test_permanent_failure_is_dead_at_once(store: Store, province: Path) -> None:
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    enqueue_message(
        store, NewMessage("test", "chuyenvien", "file", "chuyenvien", "s", "t"), now, now
    )
    deliver(sender(store, settings, Sink([Permanent("SMTP 550 no such user")]), now))
    (row,) = history(store, status="dead")
    assert row.attempts == 1 and row.last_error == "SMTP 550 no such user"


def test_acknowledgement_stops_until_ack_repeats(store: Store, province: Path) -> None:
    settings = load_settings(province, env={})
    load(store, settings, [case("HS-1")], at("02/11/2026 09:00"))
    tick(store, settings, at("16/11/2026 09:30"))  # overdue, repeat 0
    sink = Sink()
    deliver(sender(store, settings, sink, at("16/11/2026 09:40")))
    to_assignee = next(m for m in sink.messages if m.recipient.id == "chuyenvien")
    s = sender(store, settings, sink, at("16/11/2026 09:40"))
    assert s.check_ack(to_assignee.ack_data) == to_assignee.id
    data = to_assignee.ack_data
    assert s.check_ack(data[:-1] + ("1" if data.endswith("0") else "0")) is None  # forged
    assert acknowledge(store, to_assignee.id, at("16/11/2026 10:00"), address="wrong-chat") is False
    assert acknowledge(store, to_assignee.id, at("16/11/2026 10:00"), address=to_assignee.address)
    case_id = case_ids(store)["HS-1"]
    fired = fired_so_far(store, [case_id])[case_id]
    assert all(f.acknowledged for f in fired.values())
    # a working day later the repeat does not come: acknowledged
    before = len(history(store))
    tick(store, settings, at("17/11/2026 09:40"))
    assert len(history(store)) == before
