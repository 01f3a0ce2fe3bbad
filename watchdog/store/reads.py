"""The reads' port: the board, the report and the dashboard, filtered, ordered and counted in SQL.

Each plan of a case stores what the reads need beside it (`engine.deadline.Standing`): the due
that counts, the instant from which it is due soon, the wait for the applicant, the number of
supplement requests, and its rank, with the version they were computed from (`plan_version`).
A read then never loads every case into Python:

- a case whose `plan_version` is its `version` (planned) is filtered, ordered and counted in
  SQL through the indexes on (rank, due), (unit, rank, due) and (assignee, rank, due);
- a case changed since (or never planned: just imported, or migrated) is not: `unplanned_*`
  hands it over with its events for the caller to compute, as the engine would. There are few
  such cases while the daemon runs (it plans each change within a tick); the partial index
  `ix_cases_unplanned` finds them without a scan.

Ranks (`plan_rank`): 0 running, 1 waiting for the applicant, 2 no due, 3 closed, 4 cannot be
computed. The state of a running case at `now` follows from its instants: overdue once `now`
is past the due, due soon from `plan_due_soon_at`, on track before.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, literal, literal_column, or_, select, text

from watchdog.domain import OPEN_STATUSES, CaseEvent, CaseRecord, Rank, Status
from watchdog.store import Store, schema
from watchdog.store.cases import RECORD_COLUMNS, Facts, events_of, record_of, with_events
from watchdog.store.schema import UTCDateTime

_c = schema.cases.c
_OPEN = [int(s) for s in OPEN_STATUSES]
_PAGE = 5000

PLANNED = _c.plan_version == _c.version
UNPLANNED = or_(_c.plan_version.is_(None), _c.plan_version != _c.version)
_STANDING = (
    _c.plan_rank,
    _c.plan_due_at,
    _c.plan_due_soon_at,
    _c.plan_waiting_since,
    _c.plan_supplements,
)
_RANKS = {int(r): r for r in Rank}


# (rank, due, due soon at, waiting since, supplements): `engine.deadline.Standing`'s fields
Stored = tuple[Rank, datetime | None, datetime | None, datetime | None, int]


def standing_of(row: Any, at: int) -> Stored:
    """The standing stored in a row, its columns (`_STANDING`) starting at position `at`."""
    rank, due, soon, waiting, supplements = row[at : at + 5]
    return _RANKS[rank], due, soon, waiting, supplements or 0


def _scope(stmt, units: Collection[str] | None, official: str | None):
    if units is not None:
        stmt = stmt.where(_c.unit_code.in_(list(units)))
    if official is not None:
        stmt = stmt.where(or_(_c.assignee == official, _c.step_handler == official))
    return stmt


def state_condition(state: str, now: datetime):
    """SQL for "a planned open case in `state` at `now`" (`Standing.state_at`)."""
    running = _c.plan_rank == int(Rank.RUNNING)
    return {
        "overdue": and_(running, _c.plan_due_at < now),
        "due_soon": and_(running, _c.plan_due_at >= now, _c.plan_due_soon_at <= now),
        "on_track": and_(running, _c.plan_due_soon_at > now),
        "waiting": _c.plan_rank == int(Rank.WAITING),
        "no_due": _c.plan_rank == int(Rank.NO_DUE),
    }[state]


def _unplanned(store: Store):
    """UNPLANNED, through the partial index `ix_cases_unplanned` on SQLite whatever its
    statistics say (ANALYZE run before the cases were planned shows it holding every case, and
    the planner then scans the table): the few unplanned cases are found in milliseconds."""
    if store.dialect != "sqlite":
        return UNPLANNED
    ids = (
        select(literal_column("id"))
        .select_from(text("cases AS unplanned INDEXED BY ix_cases_unplanned"))
        .where(
            text("unplanned.plan_version IS NULL OR unplanned.plan_version <> unplanned.version")
        )
    )
    return _c.id.in_(ids.scalar_subquery())


def unplanned_open(
    store: Store, *, units: Collection[str] | None = None, official: str | None = None
) -> list[Facts]:
    """Open cases not planned at their current version, with their events."""
    stmt = _scope(
        select(*RECORD_COLUMNS).where(_unplanned(store), _c.status.in_(_OPEN)), units, official
    )
    with store.read() as conn:
        return with_events(conn, conn.execute(stmt.order_by(_c.id)).all())


def board_lines(
    store: Store,
    now: datetime,
    *,
    units: Collection[str] | None = None,
    official: str | None = None,
    state: str | None = None,
    limit: int | None = None,
) -> Iterator[tuple[CaseRecord, Stored]]:
    """Planned open cases in board order: running ones by due (the most overdue first), then
    those waiting for the applicant, then those without a due; `limit` rows at most, else all
    of them, read a page at a time (keyset on (due, id) within each rank)."""
    ranks = [Rank.RUNNING, Rank.WAITING, Rank.NO_DUE]
    if state is not None:
        ranks = {"waiting": [Rank.WAITING], "no_due": [Rank.NO_DUE]}.get(state, [Rank.RUNNING])
    left = limit
    for rank in ranks:
        base = select(*RECORD_COLUMNS, *_STANDING).where(
            _c.plan_rank == int(rank), PLANNED, _c.status.in_(_OPEN)
        )
        if state is not None:
            base = base.where(state_condition(state, now))
        base = _scope(base, units, official)
        after: tuple[Any, int] | None = None
        while left is None or left > 0:
            stmt = base
            if after is not None:
                due, last = after
                stmt = stmt.where(
                    or_(_c.plan_due_at > due, and_(_c.plan_due_at == due, _c.id > last))
                    if due is not None
                    else _c.id > last
                )
            page = _PAGE if left is None else min(left, _PAGE)
            stmt = stmt.order_by(_c.plan_due_at, _c.id).limit(page)
            with store.read() as conn:
                rows = conn.execute(stmt).all()
            n = len(RECORD_COLUMNS)
            for row in rows:
                yield record_of(row), standing_of(row, n)
            if left is not None:
                left -= len(rows)
            if len(rows) < page:
                break
            after = (rows[-1].plan_due_at, rows[-1].id)


def board_counts(
    store: Store,
    now: datetime,
    *,
    units: Collection[str] | None = None,
    official: str | None = None,
) -> dict[str, int]:
    """Planned open cases per state at `now` (every state named, zeros included)."""
    found = dict.fromkeys(STATES, 0)
    for (_key, state), n in counts_by(store, now, None, units=units, official=official).items():
        found[state] += n
    return found


STATES = ("overdue", "due_soon", "on_track", "waiting", "no_due")
BY = {"unit": _c.unit_code, "assignee": _c.assignee}


def counts_by(
    store: Store,
    now: datetime,
    by: str | None,
    *,
    units: Collection[str] | None = None,
    official: str | None = None,
) -> dict[tuple[str | None, str], int]:
    """Planned open cases by (unit or assignee, state at `now`); by (None, state) without `by`.

    Counted on the board indexes alone (rank, due, due soon at: no row is read), then the
    few cases changed since their plan are taken off again (their stored rank is stale; the
    caller computes them)."""
    label = case(*((state_condition(s, now), literal(s)) for s in STATES), else_=literal("other"))
    key = BY[by] if by else literal(None)
    base = select(key, label.label("state"), func.count()).where(_c.plan_rank < int(Rank.CLOSED))
    found: dict[tuple[str | None, str], int] = {}
    with store.read() as conn:
        for where, sign in ((None, 1), (_unplanned(store), -1)):
            stmt = _scope(base if where is None else base.where(where), units, official)
            stmt = stmt.group_by(key, label) if by else stmt.group_by(label)
            for k, state, n in conn.execute(stmt):
                if state in STATES:
                    found[(k, state)] = found.get((k, state), 0) + sign * n
    return {k: n for k, n in found.items() if n}


def failed_open(
    store: Store, *, units: Collection[str] | None = None, official: str | None = None
) -> list[tuple[CaseRecord, str]]:
    """Planned open cases whose deadline cannot be computed, with the error of their
    `evaluation_error` finding."""
    return _failed(store, _scope(_FAILED.where(_c.status.in_(_OPEN)), units, official))


# Planned cases whose deadline cannot be computed, with their evaluation_error finding's detail.
_f = schema.findings.c
_FAILED = (
    select(*RECORD_COLUMNS, _f.detail)
    .select_from(
        schema.cases.outerjoin(
            schema.findings,
            and_(_f.case_id == _c.id, _f.kind == "evaluation_error", _f.resolved_at.is_(None)),
        )
    )
    .where(_c.plan_rank == int(Rank.ERROR), PLANNED)
)


def _failed(store: Store, stmt) -> list[tuple[CaseRecord, str]]:
    with store.read() as conn:
        rows = conn.execute(stmt.order_by(_c.id)).all()
    seen: dict[int, tuple[CaseRecord, str]] = {}
    for row in rows:
        record = record_of(row)
        seen.setdefault(record.id, (record, row[-1] or "evaluation_error"))
    return list(seen.values())


# ----- the digests ---------------------------------------------------------------------------


def events_for(store: Store, case_ids: Collection[int]) -> dict[int, list[CaseEvent]]:
    """The events of these cases, in order (the digests' lines show each case's step)."""
    with store.read() as conn:
        return events_of(conn, sorted(case_ids))


def open_case_findings(store: Store) -> list[dict[str, Any]]:
    """Unresolved findings about open cases, with the case's unit (`unit_code`): what a unit
    head's digest lists for the units it covers."""
    stmt = (
        select(_f.kind, _f.subject, _f.detail, _c.unit_code)
        .select_from(schema.findings.join(schema.cases, _c.id == _f.case_id))
        .where(_f.resolved_at.is_(None), _c.status.in_(_OPEN))
        .order_by(_f.kind, _f.subject)
    )
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


# ----- the report ---------------------------------------------------------------------------

_NOT_ACCEPTED = int(Status.NOT_ACCEPTED)


def received_between(start: datetime, end: datetime, *, planned: Any):
    """The condition and scope of a report's cases: received in [start, end), accepted,
    planned (`True`) or not (a condition for those, `_unplanned`)."""
    return and_(
        _c.received_at >= start,
        _c.received_at < end,
        _c.status != _NOT_ACCEPTED,
        PLANNED if planned is True else planned,
    )


def unplanned_received(store: Store, start: datetime, end: datetime) -> list[Facts]:
    """Cases received in [start, end) not planned at their current version, with events."""
    stmt = select(*RECORD_COLUMNS).where(received_between(start, end, planned=_unplanned(store)))
    with store.read() as conn:
        return with_events(conn, conn.execute(stmt.order_by(_c.id)).all())


def outcome(as_of: datetime, metric: str = "portal"):
    """SQL of the per-case outcome of `reports.ontime` over the stored standing, at `as_of`:
    `outcome_at` (portal) or `outcome_766` (more than one supplement request is late whatever
    the dates). Values: 'on_time', 'late', 'in_progress', 'none' (withdrawn or stopped:
    received only), 'no_due' (received only: nothing to judge it by) or 'error' (its deadline
    cannot be computed)."""
    closed_without_result = [int(s) for s in (Status.WITHDRAWN, Status.STOPPED)]
    finished = and_(_c.finished_at.is_not(None), _c.finished_at <= as_of)
    whens = [
        (_c.plan_rank == int(Rank.ERROR), literal("error")),
        (_c.status.in_(closed_without_result), literal("none")),
        (_c.plan_due_at.is_(None), literal("no_due")),
    ]
    if metric == "766":
        whens.append((_c.plan_supplements > 1, literal("late")))
    whens += [
        (finished, case((_c.finished_at <= _c.plan_due_at, literal("on_time")), else_="late")),
        (
            and_(_c.plan_waiting_since.is_not(None), _c.plan_waiting_since <= as_of),
            literal("in_progress"),
        ),
        (_c.plan_due_at < as_of, literal("late")),
    ]
    return case(*whens, else_=literal("in_progress"))


def report_counts(
    store: Store,
    start: datetime,
    end: datetime,
    as_of: datetime,
    by: str,
    metric: str = "portal",
    *,
    units: Collection[str] | None = None,
) -> dict[tuple[str, str], int]:
    """Planned cases received in [start, end) and by `as_of` (of `units` only, when given),
    counted by (key, outcome)."""
    end = min(end, as_of)
    received, key = _c.received_at, REPORT_KEYS[by]
    if units is None and store.dialect == "sqlite" and _most_of_the_table(store, start, end):
        # A year of a million cases: reading the table in order (1.9 s) beats following the
        # received_at or unit index to each row (5 s), which SQLite would choose. `+column`
        # (a no-op in SQLite) keeps it off both indexes.
        received = literal_column("+cases.received_at", UTCDateTime())
        key = literal_column(f"+cases.{key.name}", key.type)
    condition = and_(received >= start, received < end, _c.status != _NOT_ACCEPTED, PLANNED)
    if units is not None:
        condition = and_(condition, _c.unit_code.in_(list(units)))
    return grouped_counts(store, condition, key, outcome(as_of, metric))


def _most_of_the_table(store: Store, start: datetime, end: datetime) -> bool:
    """Whether more than a third of the cases were received in [start, end) (two index-only
    reads)."""
    with store.read() as conn:
        found = conn.execute(
            select(func.count()).where(_c.received_at >= start, _c.received_at < end)
        ).scalar_one()
        top = conn.execute(select(func.max(_c.id))).scalar_one() or 0
    return found * 3 > top


def failed_received(store: Store, start: datetime, end: datetime) -> list[tuple[CaseRecord, str]]:
    """Planned cases of a report's period whose deadline cannot be computed, with the error."""
    return _failed(store, _FAILED.where(received_between(start, end, planned=True)))


def grouped_counts(store: Store, condition, key, outcome) -> dict[tuple[str, str], int]:
    """`count(*)` of the planned cases matching `condition`, by (`key` column, `outcome`
    expression): the report's aggregation, on the database."""
    stmt = (
        select(key.label("key"), outcome.label("outcome"), func.count())
        .where(condition)
        .group_by(key, outcome)
    )
    with store.read() as conn:
        return {(k or "", o): n for k, o, n in conn.execute(stmt)}


REPORT_KEYS = {"unit": _c.unit_code, "procedure": _c.procedure_code, "official": _c.assignee}


# ----- simulate -----------------------------------------------------------------------------


def checked_by(store: Store, end: datetime) -> Iterator[list[tuple[CaseRecord, tuple, Any]]]:
    """Pages of the open cases the engine will look at by `end` (`next_check_at <= end`, the
    cases changed since their plan included: their next check is the change), each case with
    its events and its next check, in (next check, id) order. A case whose next check is later
    can fire nothing before `end`: `simulate` leaves it alone."""
    base = select(*RECORD_COLUMNS, _c.next_check_at).where(
        _c.next_check_at <= end, _c.status.in_(_OPEN)
    )
    after: tuple[Any, int] | None = None
    while True:
        stmt = base
        if after is not None:
            stmt = stmt.where(
                or_(
                    _c.next_check_at > after[0],
                    and_(_c.next_check_at == after[0], _c.id > after[1]),
                )
            )
        with store.read() as conn:
            rows = conn.execute(stmt.order_by(_c.next_check_at, _c.id).limit(_PAGE)).all()
            facts = with_events(conn, rows)
        yield [(r, ev, row[-1]) for (r, ev), row in zip(facts, rows, strict=True)]
        if len(rows) < _PAGE:
            return
        after = (rows[-1].next_check_at, rows[-1].id)
