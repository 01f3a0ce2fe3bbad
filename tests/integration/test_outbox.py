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
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

import watchdog.outbox.sender as sender_mod
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
    release,
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


# ----- batched completion, the sending window, prefetch, stop and outage -------------------------


def backlog(store: Store, now: datetime, n: int) -> list[int]:
    """`n` due one-off messages on the file channel (rendered already), oldest first."""
    with store.begin() as conn:
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
    m = schema.messages.c
    with store.read() as conn:
        return list(conn.execute(select(m.id).order_by(m.id)).scalars())


def rows_by_id(store: Store) -> dict[int, Any]:
    with store.read() as conn:
        return {r.id: r for r in conn.execute(select(schema.messages))}


def test_batched_completion_is_fenced_per_message(store: Store) -> None:
    now = at("13/11/2026 09:00")
    ids = backlog(store, now, 5)
    assert [c.id for c in claim_messages(store, "a", now, timedelta(minutes=5), 10)] == ids
    # ids[3]: a's lease ran out and sender b took the message over; ids[4]: a gave it back
    m = schema.messages.c
    with store.begin() as conn:
        conn.execute(
            update(schema.messages).where(m.id == ids[3]).values(lease_until=now - timedelta(1))
        )
    (taken,) = claim_messages(store, "b", now, timedelta(minutes=5), 10, only=[ids[3]])
    assert taken.id == ids[3] and taken.attempts == 2
    release(store, "a", [ids[4]], now)

    t = now + timedelta(seconds=30)
    retry_at = t + timedelta(minutes=1)
    done = complete(
        store,
        "a",
        t,
        [
            Completion(ids[3], "sent", "sent", provider_id="q3"),  # b's now: not written
            Completion(ids[0], "sent", "sent", "refused: x", "q0", address="-100200"),
            Completion(ids[1], "failed", "transient", "451 later", next_attempt_at=retry_at),
            Completion(ids[4], "sent", "sent", provider_id="q4"),  # given back: not written
            Completion(ids[2], "dead", "permanent", "550 no such user"),
            Completion(ids[0], "dead", "permanent", "twice"),  # the same id again: first wins
        ],
    )
    assert done == [ids[0], ids[1], ids[2]]  # what was completed, in the order given
    rows = rows_by_id(store)
    sent, failed, dead, theirs, back = (rows[i] for i in ids)
    assert (sent.status, sent.provider_id, sent.last_error) == ("sent", "q0", "refused: x")
    assert sent.sent_at == t and sent.address == "-100200"
    assert (failed.status, failed.last_error, failed.sent_at) == ("failed", "451 later", None)
    assert failed.next_attempt_at == retry_at
    assert (dead.status, dead.last_error, dead.sent_at) == ("dead", "550 no such user", None)
    assert dead.next_attempt_at == now  # a dead letter keeps its time
    for row in (sent, failed, dead):
        assert row.lease_owner is None and row.lease_until is None
    assert (theirs.status, theirs.lease_owner, theirs.provider_id) == ("sending", "b", None)
    assert (back.status, back.attempts, back.provider_id) == ("pending", 0, None)
    assert attempts_of(store, ids[0]) == [(1, "a", "sent", "refused: x")]
    assert attempts_of(store, ids[1]) == [(1, "a", "transient", "451 later")]
    assert attempts_of(store, ids[2]) == [(1, "a", "permanent", "550 no such user")]
    assert attempts_of(store, ids[3]) == [
        (1, "a", "expired", "lease expired"),
        (2, "b", None, None),
    ]
    assert attempts_of(store, ids[4]) == []
    # b completes its own; a, coming back, writes nothing more
    assert complete(store, "b", t, [Completion(ids[3], "sent", "sent", provider_id="b3")]) == [
        ids[3]
    ]
    assert complete(store, "a", t, [Completion(i, "dead", "permanent", "x") for i in ids]) == []
    assert rows_by_id(store)[ids[3]].provider_id == "b3"


def test_batched_completion_of_more_messages_than_one_in_list(store: Store) -> None:
    now = at("13/11/2026 09:00")
    ids = backlog(store, now, 950)  # past the 900 values of one IN list
    claim_messages(store, "a", now, timedelta(minutes=5), 1000)
    done = complete(
        store, "a", now, [Completion(i, "sent", "sent", provider_id=f"q{i}") for i in ids]
    )
    assert done == ids
    rows = rows_by_id(store)
    assert {r.status for r in rows.values()} == {"sent"}
    assert all(rows[i].provider_id == f"q{i}" for i in ids)
    assert attempts_of(store, ids[-1]) == [(1, "a", "sent", f"q{ids[-1]}")]


class Watching(Sink):
    """A sink that, as each message is handed to it, counts the messages handed over whose
    sending is not recorded yet (a sender killed right then would send them again)."""

    def __init__(self, store: Store, slow: dict[int, float] | None = None, **kw) -> None:
        super().__init__(**kw)
        self.store = store
        self.slow = slow or {}
        self.handed: list[int] = []
        self.peak = 0
        self.recorded_when_slow_done: int | None = None

    def recorded(self) -> int:
        m = schema.messages.c
        with self.store.read() as conn:
            return conn.execute(select(func.count()).where(m.status == "sent")).scalar_one()

    async def send(self, message: Outgoing):
        self.handed.append(message.id)
        self.peak = max(self.peak, len(self.handed) - self.recorded())
        if message.id in self.slow:
            await asyncio.sleep(self.slow[message.id])
            self.recorded_when_slow_done = self.recorded()
        return await super().send(message)


def test_at_most_one_chunk_is_ever_sent_but_unrecorded(store: Store, province: Path) -> None:
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    backlog(store, now, 60)
    sink = Watching(store, delay=0.003)
    s = sender(store, settings, sink, now)
    s.batch, s.concurrency = 25, 4
    report = deliver(s)
    assert report.sent == 60 and sum(sink.sent.values()) == 60 and max(sink.sent.values()) == 1
    assert 2 <= sink.peak <= 4  # the slots are used, and never more than one chunk
    assert {r.status for r in history(store)} == {"sent"}


def test_a_slow_send_does_not_hold_up_the_others(store: Store, province: Path) -> None:
    """Slots free up as outcomes are recorded: one slow server answer does not make the rest
    of its chunk (and the channel) wait, as sending chunk after chunk did."""
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    ids = backlog(store, now, 30)
    sink = Watching(store, slow={ids[0]: 0.6}, delay=0.002)
    s = sender(store, settings, sink, now)
    s.batch, s.concurrency = 30, 4
    assert deliver(s).sent == 30
    assert sink.recorded_when_slow_done is not None and sink.recorded_when_slow_done >= 20
    assert sink.peak <= 4


def test_stop_gives_back_the_rest_and_the_prefetched_batch(
    store: Store, province: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    ids = backlog(store, now, 12)
    given_back: list[int] = []

    def spy(store, owner, ids, now):
        given_back.extend(ids)
        return release(store, owner, ids, now)

    monkeypatch.setattr(sender_mod, "release", spy)
    sink = Watching(store, delay=0.01)
    s = sender(store, settings, sink, now)
    s.batch, s.concurrency = 5, 2

    async def send(message: Outgoing):
        result = await Watching.send(sink, message)
        if len(sink.handed) == 5:  # the first batch is all under way: the next is prefetched
            s.stop()
        return result

    sink.send = send  # type: ignore[method-assign]
    report = deliver(s)
    assert report.sent == report.claimed == 5 and sorted(sink.handed) == ids[:5]
    assert sorted(given_back) == ids[5:10]  # claimed while the first batch went, not sent
    rows = rows_by_id(store)
    assert [rows[i].status for i in ids] == ["sent"] * 5 + ["pending"] * 7
    assert all(rows[i].attempts == 0 and attempts_of(store, i) == [] for i in ids[5:])
    # the next start sends the rest, once
    rest = sender(store, settings, Sink(), now, owner="b")
    assert deliver(rest).sent == 7


def test_sends_recorded_during_an_outage_are_recorded_first_when_it_ends(
    store: Store, province: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    ids = backlog(store, now, 10)
    real = sender_mod.complete

    def away(*args, **kwargs):
        raise OperationalError("UPDATE messages", {}, Exception("server closed the connection"))

    monkeypatch.setattr(sender_mod, "complete", away)
    sink = Sink(delay=0.005)
    s = sender(store, settings, sink, now)
    s.batch, s.concurrency = 10, 4
    with pytest.raises(OperationalError):
        deliver(s)
    sent_first = sorted(sink.sent)
    assert 1 <= len(sent_first) <= 4  # nothing recorded, so no slot came free
    assert sorted(c.id for c in s._unrecorded) == sent_first

    monkeypatch.setattr(sender_mod, "complete", real)  # the database answers again
    assert deliver(s).claimed == 0  # the unsent rest is still leased: nothing new yet
    rows = rows_by_id(store)
    assert [i for i in ids if rows[i].status == "sent"] == sent_first
    assert not s._unrecorded
    later = sender(store, settings, sink, now + timedelta(minutes=6), owner="b")
    assert deliver(later).sent == 10 - len(sent_first)
    assert max(sink.sent.values()) == 1 and sorted(sink.sent) == ids  # none twice


def test_a_batch_older_than_most_of_its_lease_is_given_back_not_sent_late(
    store: Store, province: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(province, env={})
    now = at("13/11/2026 09:00")
    ids = backlog(store, now, 8)
    given_back: list[int] = []

    def spy(store, owner, ids, now):
        given_back.extend(ids)
        return release(store, owner, ids, now)

    monkeypatch.setattr(sender_mod, "release", spy)
    sink = Sink(delay=0.1)
    s = Sender(
        store,
        settings,
        renderer_for(settings),
        {"file": sink},
        FixedClock(now).now,
        owner="a",
        lease=timedelta(seconds=0.5),
        concurrency=1,
    )
    assert deliver(s).sent == 8  # the rest went in a fresh claim, in the same pass
    assert given_back and set(given_back) < set(ids)
    assert max(sink.sent.values()) == 1


def test_a_claim_hands_out_urgent_messages_first_then_the_oldest(store: Store) -> None:
    now = at("13/11/2026 09:00")
    ids = backlog(store, now, 4)
    m = schema.messages.c
    with store.begin() as conn:
        conn.execute(update(schema.messages).where(m.id == ids[2]).values(urgent=True))
        conn.execute(
            update(schema.messages)
            .where(m.id == ids[0])
            .values(next_attempt_at=now - timedelta(minutes=1))
        )
    claimed = claim_messages(store, "a", now, timedelta(minutes=5), 10)
    assert [c.id for c in claimed] == [ids[2], ids[0], ids[1], ids[3]]
