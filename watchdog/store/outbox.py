"""The outbox: messages to recipients, their leased claims, completions and history.

Alerts are written in the engine's batch transaction, with the firings they carry: a firing's
delivery to one recipient on one channel becomes one `message_items` row, unique on (firing,
recipient, channel), and joins the open message of that recipient and channel whose group
window contains its release instant (`watchdog.outbox.grouping` decides; `simulate` uses the
same rule), or opens a new one. A message is claimed with one UPDATE ... WHERE id IN (SELECT
... FOR UPDATE SKIP LOCKED) ... RETURNING on PostgreSQL; on SQLite the same statement runs
under BEGIN IMMEDIATE. The claim is a lease: every completion is fenced on `lease_owner`, and a
lease that expires (its sender died) is claimable again, the re-send counted as the next
attempt and the lost one recorded as "expired" in `message_attempts`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from watchdog.domain import CaseEvent, CaseRecord
from watchdog.store import Store, schema
from watchdog.store.cases import id_in, select_records, with_events

_m = schema.messages.c
_i = schema.message_items.c
_a = schema.message_attempts.c
_f = schema.firings.c
_c = schema.cases.c

PENDING, HELD, SENDING, SENT, FAILED, DEAD = "pending", "held", "sending", "sent", "failed", "dead"
STATUSES = (PENDING, HELD, SENDING, SENT, FAILED, DEAD)
WAITING = (PENDING, HELD, FAILED)  # claimable once next_attempt_at has come
_IN = 900  # values per IN list


@dataclass(frozen=True, slots=True)
class NewItem:
    """One firing's delivery to one recipient on one channel, ready at `ready_at` and released
    (quiet hours over) at `release_at`."""

    firing_id: int
    case_id: int
    case_code: str
    stage: str
    recipient: str
    channel: str
    address: str
    urgent: bool
    ready_at: datetime
    release_at: datetime


@dataclass
class _Group:
    id: int | None
    opened: datetime
    until: datetime
    codes: list[str]
    stages: list[str]
    urgent: bool
    changed: bool = False


# The grouping rule, given by the caller (watchdog.outbox.grouping) so the store decides nothing:
# joins(release, opened, until) -> bool ; opens(release) -> (opened, until)
Joins = Callable[[datetime, datetime, datetime], bool]
Opens = Callable[[datetime], tuple[datetime, datetime]]


def enqueue_alerts(
    store: Store,
    conn: Connection,
    items: Sequence[NewItem],
    now: datetime,
    joins: Joins,
    opens: Opens,
) -> int:
    """Add items to the open messages they join, or to new ones; returns messages created.
    Runs in the caller's write transaction (the engine's batch)."""
    if not items:
        return 0
    groups: dict[tuple[str, str, str], list[_Group]] = {}
    recipients = sorted({i.recipient for i in items})
    for chunk in _chunks(recipients):
        stmt = select(
            _m.id,
            _m.recipient,
            _m.channel,
            _m.address,
            _m.group_opened_at,
            _m.group_until,
            _m.case_codes,
            _m.stages,
            _m.urgent,
        ).where(
            _m.kind == "alert",
            _m.status.in_((PENDING, HELD)),
            _m.lease_owner.is_(None),
            _m.recipient.in_(chunk),
        )
        if store.dialect == "postgresql":
            stmt = stmt.with_for_update()  # a claim skips these rows until we commit
        for r in conn.execute(stmt.order_by(_m.group_opened_at)):
            groups.setdefault((r.recipient, r.channel, r.address), []).append(
                _Group(r.id, r.group_opened_at, r.group_until, r.case_codes, r.stages, r.urgent)
            )
    placed: list[tuple[NewItem, _Group]] = []
    created: list[tuple[_Group, NewItem]] = []
    for item in sorted(items, key=lambda i: (i.release_at, i.case_code)):
        key = (item.recipient, item.channel, item.address)
        options = groups.setdefault(key, [])
        group = next((g for g in options if joins(item.release_at, g.opened, g.until)), None)
        if group is None:
            opened, until = opens(item.release_at)
            group = _Group(None, opened, until, [], [], False, True)
            options.append(group)
            created.append((group, item))
        if item.case_code not in group.codes:
            group.codes.append(item.case_code)
        if item.stage not in group.stages:
            group.stages.append(item.stage)
        group.urgent = group.urgent or item.urgent
        group.changed = True
        placed.append((item, group))
    if created:
        rows = [
            {
                "kind": "alert",
                "recipient": first.recipient,
                "channel": first.channel,
                "address": first.address,
                "stages": g.stages,
                "case_codes": g.codes,
                "urgent": g.urgent,
                "group_opened_at": g.opened,
                "group_until": g.until,
                "status": HELD if g.opened > first.ready_at else PENDING,
                "attempts": 0,
                "next_attempt_at": g.until,
                "created_at": now,
            }
            for g, first in created
        ]
        ids = conn.execute(
            insert(schema.messages).returning(_m.id, sort_by_parameter_order=True), rows
        ).scalars()
        for (g, _), new_id in zip(created, ids, strict=True):
            g.id = new_id
            g.changed = False
    changed = {id(g): g for _, g in placed if g.changed}
    if changed:
        conn.execute(
            update(schema.messages)
            .where(_m.id == bindparam("gid"))
            .values(
                case_codes=bindparam("codes"), stages=bindparam("stg"), urgent=bindparam("urg")
            ),
            [
                {"gid": g.id, "codes": g.codes, "stg": g.stages, "urg": g.urgent}
                for g in changed.values()
            ],
        )
    item_rows = [
        {
            "message_id": g.id,
            "firing_id": i.firing_id,
            "case_id": i.case_id,
            "recipient": i.recipient,
            "channel": i.channel,
        }
        for i, g in placed
    ]
    conn.execute(
        store.insert_ignoring(schema.message_items, ("firing_id", "recipient", "channel")),
        item_rows,
    )
    return len(created)


def _chunks(values: Sequence[Any], n: int = _IN):
    for i in range(0, len(values), n):
        yield values[i : i + n]


# ----- one-off messages: digests, tests, notices --------------------------------------------


@dataclass(frozen=True, slots=True)
class NewMessage:
    kind: str  # digest | test | notice
    recipient: str
    channel: str
    address: str
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    content: dict[str, Any] | None = None
    stages: tuple[str, ...] = ()
    dedup_key: str | None = None  # a second message with the same key is not written
    urgent: bool = False


def enqueue_message(
    store: Store, message: NewMessage, now: datetime, send_at: datetime
) -> int | None:
    """Write one message: its id, or None when its dedup key was written before (exactly
    once)."""
    row = {
        "kind": message.kind,
        "recipient": message.recipient,
        "channel": message.channel,
        "address": message.address,
        "dedup_key": message.dedup_key,
        "stages": list(message.stages),
        "case_codes": [],
        "urgent": message.urgent,
        "status": HELD if send_at > now else PENDING,
        "attempts": 0,
        "next_attempt_at": send_at,
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "content": message.content,
        "created_at": now,
    }
    with store.begin() as conn:
        if message.dedup_key is None:
            return conn.execute(insert(schema.messages).returning(_m.id), row).scalar_one()
        stmt = store.insert_ignoring(schema.messages, ("dedup_key",)).returning(_m.id)
        return conn.execute(stmt, row).scalar()


def dedup_keys_present(store: Store, keys: Sequence[str]) -> set[str]:
    """Which of these dedup keys already have a message (digests already written)."""
    out: set[str] = set()
    with store.read() as conn:
        for chunk in _chunks(list(keys)):
            out.update(conn.execute(select(_m.dedup_key).where(_m.dedup_key.in_(chunk))).scalars())
    return out


# ----- claims and completions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """A case a claimed alert carries, with what the renderer needs about its firing."""

    record: CaseRecord
    events: list[CaseEvent]
    stage: str
    template: str
    urgent: bool
    due_at: datetime | None
    attach: str | None


@dataclass
class Claimed:
    id: int
    kind: str
    recipient: str
    channel: str
    address: str
    stages: list[str]
    attempts: int
    created_at: datetime
    subject: str | None
    text: str | None
    html: str | None
    content: dict[str, Any] | None
    message_id: str | None
    items: list[ItemFacts] = field(default_factory=list)

    @property
    def rendered(self) -> bool:
        return self.text is not None


def claim_messages(
    store: Store,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    only: Sequence[int] | None = None,
) -> list[Claimed]:
    """Lease up to `limit` messages whose time has come (or whose lease expired) to `owner`;
    with `only`, among those ids alone (`send-test`). Alerts not rendered yet come with the
    cases they carry."""
    due = or_(
        and_(_m.status.in_(WAITING), _m.next_attempt_at <= now),
        and_(_m.status == SENDING, _m.lease_until < now),
    )
    if only is not None:
        due = and_(due, _m.id.in_(list(only)))
    pick = (
        select(_m.id)
        .where(due)
        .order_by(_m.urgent.desc(), _m.next_attempt_at, _m.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite: the write lock serialises
    )
    stmt = (
        update(schema.messages)
        .where(_m.id.in_(pick.scalar_subquery()))
        .values(
            status=SENDING,
            lease_owner=owner,
            lease_until=now + lease,
            attempts=_m.attempts + 1,
        )
        .returning(
            _m.id,
            _m.kind,
            _m.recipient,
            _m.channel,
            _m.address,
            _m.stages,
            _m.attempts,
            _m.created_at,
            _m.subject,
            _m.text,
            _m.html,
            _m.content,
            _m.message_id,
            _m.urgent,
            _m.next_attempt_at,
        )
    )
    with store.begin() as conn:
        # RETURNING comes in no particular order (PostgreSQL): the pick's order, urgent first
        rows = sorted(conn.execute(stmt), key=lambda r: (not r.urgent, r.next_attempt_at, r.id))
        if not rows:
            return []
        ids = [r.id for r in rows]
        # an attempt still open belongs to a sender that died holding the lease
        conn.execute(
            update(schema.message_attempts)
            .where(id_in(conn, _a.message_id, ids), _a.finished_at.is_(None))
            .values(finished_at=now, outcome="expired", detail="lease expired")
        )
        conn.execute(
            insert(schema.message_attempts),
            [
                {"message_id": r.id, "attempt": r.attempts, "owner": owner, "started_at": now}
                for r in rows
            ],
        )
        order_only = ("urgent", "next_attempt_at")
        claimed = [
            Claimed(**{k: v for k, v in r._asdict().items() if k not in order_only}) for r in rows
        ]
        _load_items(conn, [c for c in claimed if c.kind == "alert" and not c.rendered])
    return claimed


def _load_items(conn: Connection, claimed: list[Claimed]) -> None:
    if not claimed:
        return
    by_id = {c.id: c for c in claimed}
    stmt = (
        select(
            _i.message_id,
            _i.case_id,
            _f.stage,
            _f.template,
            _f.urgent,
            _f.due_at,
            _f.attach,
        )
        .join(schema.firings, _f.id == _i.firing_id)
        .where(id_in(conn, _i.message_id, list(by_id)))
        .order_by(_i.id)
    )
    items = conn.execute(stmt).all()
    case_ids = sorted({r.case_id for r in items})
    facts = {}
    for chunk in _chunks(case_ids):
        rows = conn.execute(select_records().where(id_in(conn, _c.id, chunk))).all()
        for record, events in with_events(conn, rows):
            facts[record.id] = (record, events)
    for r in items:
        record, events = facts[r.case_id]
        by_id[r.message_id].items.append(
            ItemFacts(record, events, r.stage, r.template, r.urgent, r.due_at, r.attach)
        )


@dataclass(frozen=True, slots=True)
class Rendering:
    """What a message looked like when first sent; every retry resends it."""

    id: int
    subject: str
    text: str
    html: str | None
    content: dict[str, Any] | None
    message_id: str


def save_rendered(store: Store, owner: str, rendered: Sequence[Rendering]) -> None:
    if not rendered:
        return
    with store.begin() as conn:
        conn.execute(
            update(schema.messages)
            .where(_m.id == bindparam("mid"), _m.lease_owner == owner)
            .values(
                subject=bindparam("s"),
                text=bindparam("t"),
                html=bindparam("h"),
                content=bindparam("c"),
                message_id=bindparam("x"),
            ),
            [
                {
                    "mid": r.id,
                    "s": r.subject,
                    "t": r.text,
                    "h": r.html,
                    "c": r.content,
                    "x": r.message_id,
                }
                for r in rendered
            ],
        )


@dataclass(frozen=True, slots=True)
class Completion:
    id: int
    status: str  # sent | failed (retry at next_attempt_at) | dead
    outcome: str  # sent | transient | permanent (what this attempt did)
    error: str | None = None
    provider_id: str | None = None
    next_attempt_at: datetime | None = None
    address: str | None = None  # the address moved (Telegram chat migrated)
    unlink: bool = False  # the address is gone for good (a blocked bot): not stored, acted on


def complete(
    store: Store, owner: str, now: datetime, completions: Sequence[Completion]
) -> list[int]:
    """Record what sending did; fenced on the lease (a sender whose lease expired and was taken
    over writes nothing). Returns the ids actually completed, in the order given.

    One fenced SELECT of the messages we still hold (FOR UPDATE on PostgreSQL, so a claim
    skips them until we commit; SQLite's write transaction holds the lock from its start), then
    one executemany UPDATE of `messages` per kind of completion (sent, failed, dead) and one of
    `message_attempts`, each still fenced: a handful of statements per chunk, not per message.
    """
    wanted: dict[int, Completion] = {}
    for c in completions:
        wanted.setdefault(c.id, c)  # the same id twice: the first wins, as it always did
    if not wanted:
        return []
    fence = (_m.lease_owner == owner, _m.status == SENDING)
    with store.begin() as conn:
        held: dict[int, int] = {}  # id -> attempt, of the messages still leased to us
        for chunk in _chunks(list(wanted)):
            stmt = select(_m.id, _m.attempts).where(id_in(conn, _m.id, chunk), *fence)
            if store.dialect == "postgresql":
                stmt = stmt.with_for_update()
            held.update((r.id, r.attempts) for r in conn.execute(stmt))
        done = [i for i in wanted if i in held]
        if not done:
            return []
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for i in done:
            c = wanted[i]
            values: dict[str, Any] = {"status": c.status, "last_error": c.error}
            if c.status == SENT:
                values |= {"sent_at": now, "provider_id": c.provider_id}
            elif c.status == FAILED:
                values["next_attempt_at"] = c.next_attempt_at
            if c.address:
                values["address"] = c.address
            row = {"mid": i} | {f"v_{k}": v for k, v in values.items()}
            shapes.setdefault(tuple(values), []).append(row)
        for columns, rows in shapes.items():
            conn.execute(
                update(schema.messages)
                .where(_m.id == bindparam("mid"), *fence)
                .values(
                    {k: bindparam(f"v_{k}") for k in columns}
                    | {"lease_owner": None, "lease_until": None}
                ),
                rows,
            )
        conn.execute(
            update(schema.message_attempts)
            .where(
                _a.message_id == bindparam("mid"),
                _a.attempt == bindparam("att"),
                _a.owner == owner,
            )
            .values(finished_at=now, outcome=bindparam("v_outcome"), detail=bindparam("v_detail")),
            [
                {
                    "mid": i,
                    "att": held[i],
                    "v_outcome": wanted[i].outcome,
                    "v_detail": wanted[i].error or wanted[i].provider_id or None,
                }
                for i in done
            ],
        )
    return done


def release(store: Store, owner: str, ids: Sequence[int], now: datetime) -> None:
    """Give messages back unsent (shutdown before sending): claimable again at once, the
    attempt not counted."""
    if not ids:
        return
    with store.begin() as conn:
        for chunk in _chunks(list(ids)):
            # the attempt did not happen: its row goes, so the next claim can number it again
            conn.execute(
                delete(schema.message_attempts).where(
                    id_in(conn, _a.message_id, chunk),
                    _a.owner == owner,
                    _a.finished_at.is_(None),
                )
            )
            conn.execute(
                update(schema.messages)
                .where(id_in(conn, _m.id, chunk), _m.lease_owner == owner, _m.status == SENDING)
                .values(
                    status=PENDING,
                    lease_owner=None,
                    lease_until=None,
                    attempts=_m.attempts - 1,
                    next_attempt_at=now,
                )
            )


# ----- acknowledgements ------------------------------------------------------------------------


def acknowledge(store: Store, message_id: int, now: datetime, address: str | None = None) -> bool:
    """Record that the recipient acknowledged a message: on the message and on every firing it
    carries, so `until_ack` repeats stop. With `address`, only that address may acknowledge
    (a Telegram chat acknowledges only what was sent to it)."""
    with store.begin() as conn:
        where = [_m.id == message_id]
        if address is not None:
            where.append(_m.address == address)
        found = conn.execute(select(_m.acknowledged_at).where(*where)).first()
        if found is None:
            return False
        if found.acknowledged_at is None:
            conn.execute(
                update(schema.messages).where(_m.id == message_id).values(acknowledged_at=now)
            )
        firing_ids = select(_i.firing_id).where(_i.message_id == message_id).scalar_subquery()
        conn.execute(
            update(schema.firings)
            .where(_f.id.in_(firing_ids), _f.acknowledged_at.is_(None))
            .values(acknowledged_at=now)
        )
        # the case is looked at again, so a repeat waiting for the acknowledgement is dropped
        case_ids = select(_i.case_id).where(_i.message_id == message_id).scalar_subquery()
        conn.execute(
            update(schema.cases)
            .where(_c.id.in_(case_ids), _c.next_check_at.is_not(None))
            .values(next_check_at=now)
        )
    return True


# ----- history ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: int
    kind: str
    created_at: datetime
    sent_at: datetime | None
    recipient: str
    channel: str
    address: str
    stages: list[str]
    case_codes: list[str]
    status: str
    attempts: int
    last_error: str | None
    acknowledged_at: datetime | None
    subject: str | None
    message_id: str | None
    provider_id: str | None


def history(
    store: Store,
    *,
    case_code: str | None = None,
    recipient: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[HistoryRow]:
    """Messages, newest first, filtered as `watchdog history` asks."""
    cols = [getattr(_m, name) for name in HistoryRow.__slots__]
    stmt = select(*cols)
    if case_code is not None:
        ids = (
            select(_i.message_id)
            .join(schema.cases, _c.id == _i.case_id)
            .where(_c.case_code == case_code)
        )
        stmt = stmt.where(_m.id.in_(ids.scalar_subquery()))
    if recipient is not None:
        stmt = stmt.where(_m.recipient == recipient)
    if status is not None:
        stmt = stmt.where(_m.status == status)
    if since is not None:
        stmt = stmt.where(_m.created_at >= since)
    stmt = stmt.order_by(_m.created_at.desc(), _m.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    with store.read() as conn:
        return [HistoryRow(*r) for r in conn.execute(stmt)]


def attempts_of(store: Store, message_id: int) -> list[tuple[int, str, str | None, str | None]]:
    """(attempt, owner, outcome, detail) of a message, in order (history and tests)."""
    stmt = (
        select(_a.attempt, _a.owner, _a.outcome, _a.detail)
        .where(_a.message_id == message_id)
        .order_by(_a.attempt)
    )
    with store.read() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def message_counts(store: Store) -> dict[tuple[str, str], int]:
    """(status, channel) -> number of messages (summaries, health, metrics)."""
    stmt = select(_m.status, _m.channel, func.count()).group_by(_m.status, _m.channel)
    with store.read() as conn:
        return {(s, ch): n for s, ch, n in conn.execute(stmt)}


def next_attempt(store: Store) -> datetime | None:
    """When the earliest waiting message comes due (the sender sleeps until then)."""
    stmt = select(func.min(_m.next_attempt_at)).where(_m.status.in_(WAITING))
    with store.read() as conn:
        value = conn.execute(stmt).scalar()
    if isinstance(value, str):  # SQLite hands aggregates back untyped
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def close_groups(store: Store, now: datetime) -> int:
    """Let alerts whose group window is still open go now (a single pass has no later moment
    to group into); messages held for office hours stay held."""
    with store.begin() as conn:
        return conn.execute(
            update(schema.messages)
            .where(
                _m.kind == "alert",
                _m.status == PENDING,
                _m.group_opened_at <= now,
                _m.next_attempt_at > now,
            )
            .values(next_attempt_at=now, group_until=now)
        ).rowcount
