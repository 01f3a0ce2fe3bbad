"""What the daemon tells the world about itself: `HealthState` (figures the daemon keeps current,
read by /healthz and /metrics) and `Metrics` (the Prometheus registry of one app).

Nothing here queries the database: a scrape or a health probe reads the figures the daemon
last recorded (after each tick, each delivery pass, each database check), so a slow or dead
database never makes /metrics slow.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Message statuses that are still to be sent (held: waiting for office hours, counted apart).
BACKLOG_STATUSES = ("pending", "sending", "failed")
DEAD = "dead"


@dataclass
class HealthState:
    """Figures the daemon keeps current; /healthz and /metrics only read them.

    Update through the `record_*` methods (from any thread): each replaces its figures at once,
    so a reader never sees half of an update. `stale_after` (3 ticks) is how old the last tick
    may be before /healthz answers 503.
    """

    tick_interval: timedelta = timedelta(seconds=60)
    started_at: datetime | None = None
    database_ok: bool = True
    database_error: str | None = None
    database_checked_at: datetime | None = None
    last_tick_at: datetime | None = None
    last_tick_duration_s: float | None = None
    backlog: int = 0  # messages pending, being sent or failed (to be retried)
    dead: int = 0  # dead letters
    open_cases: Mapping[str, int] = field(default_factory=dict)  # state -> number
    messages: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (status, channel)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def stale_after(self) -> timedelta:
        return 3 * self.tick_interval

    def record_tick(self, at: datetime, duration_s: float) -> None:
        with self._lock:
            self.last_tick_at, self.last_tick_duration_s = at, duration_s

    def record_database(
        self, ok: bool, error: str | None = None, at: datetime | None = None
    ) -> None:
        with self._lock:
            self.database_ok = ok
            self.database_error = None if ok else (error or "unreachable")
            self.database_checked_at = at

    def record_messages(self, counts: Mapping[tuple[str, str], int]) -> None:
        """(status, channel) -> number, as `store.outbox.message_counts` gives it; the backlog
        and the dead letters follow from it."""
        counts = dict(counts)
        with self._lock:
            self.messages = counts
            self.backlog = sum(n for (s, _), n in counts.items() if s in BACKLOG_STATUSES)
            self.dead = sum(n for (s, _), n in counts.items() if s == DEAD)

    def record_open_cases(self, by_state: Mapping[str, int]) -> None:
        with self._lock:
            self.open_cases = dict(by_state)

    def snapshot(self) -> HealthState:
        """A consistent copy to read from."""
        with self._lock:
            return replace(self, _lock=threading.Lock())

    def tick_age(self, now: datetime) -> float | None:
        """Seconds since the last tick; None before the first."""
        if self.last_tick_at is None:
            return None
        return max(0.0, (now - self.last_tick_at).total_seconds())

    def problems(self, now: datetime) -> list[str]:
        """Why the daemon is unhealthy at `now` (empty: healthy). Before the first tick it is
        healthy for `stale_after` from its start."""
        out = []
        if not self.database_ok:
            out.append(f"database unreachable: {self.database_error or 'unknown error'}")
        since = self.last_tick_at or self.started_at
        if since is not None and now - since > self.stale_after:
            what = "last tick" if self.last_tick_at is not None else "no tick since start"
            age = (now - since).total_seconds()
            out.append(
                f"{what} {age:.0f} s ago, more than {self.stale_after.total_seconds():.0f} s"
            )
        return out


class Metrics:
    """The Prometheus registry of one app (never the global one: two apps in one process, as
    in the tests, each count their own), with the instruments the daemon feeds."""

    def __init__(
        self,
        health: HealthState | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.tick_duration = Histogram(
            "watchdog_tick_duration_seconds",
            "Duration of one engine tick (sync, evaluate, enqueue).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=r,
        )
        self.send_latency = Histogram(
            "watchdog_send_latency_seconds",
            "Time one send to a channel took.",
            ["channel"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.firings = Counter(
            "watchdog_firings", "Stage firings written by the engine.", registry=r
        )
        self.messages_sent = Counter(
            "watchdog_messages_sent", "Messages delivered, by channel.", ["channel"], registry=r
        )
        self.pushed_cases = Counter(
            "watchdog_pushed_cases",
            "Cases received by POST /api/v1/cases, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.pushed_events = Counter(
            "watchdog_pushed_events",
            "Events received by POST /api/v1/cases/{code}/events, by outcome.",
            ["outcome"],
            registry=r,
        )
        self._health: HealthState | None = None
        if health is not None:
            self.watch(health, clock)

    # ----- what the daemon calls -------------------------------------------------------------

    def observe_tick(self, seconds: float) -> None:
        self.tick_duration.observe(seconds)

    def observe_send(self, channel: str, seconds: float, *, sent: bool = True) -> None:
        self.send_latency.labels(channel).observe(seconds)
        if sent:
            self.messages_sent.labels(channel).inc()

    def count_firings(self, n: int = 1) -> None:
        if n:
            self.firings.inc(n)

    # ----- the health figures as gauges -------------------------------------------------------

    def watch(self, health: HealthState, clock: Callable[[], datetime]) -> None:
        """Export `health`'s figures as gauges (once per registry)."""
        if self._health is health:
            return
        if self._health is not None:
            raise ValueError("these metrics already export another HealthState")
        self._health = health
        self.registry.register(_HealthCollector(health, clock))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _HealthCollector(Collector):
    def __init__(self, health: HealthState, clock: Callable[[], datetime]):
        self.health = health
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self.health.snapshot())

    def _families(self, h: HealthState | None) -> list[Metric]:
        cases = GaugeMetricFamily(
            "watchdog_open_cases", "Open cases by deadline state (last tick).", labels=["state"]
        )
        messages = GaugeMetricFamily(
            "watchdog_messages",
            "Messages in the outbox by status and channel.",
            labels=["status", "channel"],
        )
        backlog = GaugeMetricFamily(
            "watchdog_outbox_backlog", "Messages pending, being sent or waiting for a retry."
        )
        dead = GaugeMetricFamily("watchdog_outbox_dead", "Dead letters in the outbox.")
        up = GaugeMetricFamily("watchdog_database_up", "1 when the last database check succeeded.")
        age = GaugeMetricFamily(
            "watchdog_last_tick_age_seconds", "Seconds since the last engine tick (NaN: none yet)."
        )
        last = GaugeMetricFamily(
            "watchdog_last_tick_timestamp_seconds", "Unix time of the last engine tick."
        )
        out: list[Metric] = [cases, messages, backlog, dead, up, age, last]
        if h is None:
            return out
        for state, n in sorted(h.open_cases.items()):
            cases.add_metric([state], n)
        for (status, channel), n in sorted(h.messages.items()):
            messages.add_metric([status, channel], n)
        backlog.add_metric([], h.backlog)
        dead.add_metric([], h.dead)
        up.add_metric([], 1 if h.database_ok else 0)
        tick_age = h.tick_age(self.clock())
        age.add_metric([], math.nan if tick_age is None else tick_age)
        if h.last_tick_at is not None:
            last.add_metric([], h.last_tick_at.astimezone(UTC).timestamp())
        return out
