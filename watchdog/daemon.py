"""`watchdog run`: the composition root. One asyncio loop wires the store, the engine, the outbox,
the channels, the sources and the HTTP server; APScheduler is only its clock.

The database holds all state, so every job is "look at the database and do what is due":
a tick evaluates the cases whose `next_check_at` has come, the sender sends the messages whose
time has come, digests are written once per scheduled run (a run missed while the daemon was
down is sent on start if still within its grace), SQL sources are polled on their interval.
A job that meets the database away marks an outage: it is logged once, the other jobs pause,
a probe retries with backoff, and everything resumes when the database answers again.

Signals: SIGTERM and SIGINT stop claiming, let in-flight sends finish, stop Telegram polling
and the HTTP server, and exit 0; SIGHUP (and a changed config, rules or template file) reloads
after validating: an invalid new set keeps the old one running and logs where it is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watchdog.clock import Clock
from watchdog.config import Settings, load_settings, with_telegram_chats
from watchdog.config.yamlsrc import ConfigError
from watchdog.engine.rules import RuleSet, check_rules, load_rules
from watchdog.engine.runner import Engine
from watchdog.outbox.digests import send_due_digests
from watchdog.outbox.enqueue import alerts_hook
from watchdog.outbox.render import Renderer, check_templates
from watchdog.outbox.sender import Sender
from watchdog.outbox.wiring import close_channels, open_channels, renderer_for
from watchdog.reports.schedule import enqueue_due_reports
from watchdog.shipped import shipped_path
from watchdog.store import Store
from watchdog.store.db import StoreError, as_store_error, is_outage
from watchdog.store.directory import sync_directory
from watchdog.store.leader import SQL_POLLER, TELEGRAM_POLLER, DaemonLock, Leadership
from watchdog.store.links import telegram_links

log = logging.getLogger("watchdog")

TICK_EVERY = timedelta(seconds=30)
DELIVER_EVERY = timedelta(seconds=5)
DIGESTS_EVERY = timedelta(seconds=60)
REPORTS_EVERY = timedelta(seconds=60)  # scheduled reports (reports.scheduled), once a period
OPEN_CASES_EVERY = timedelta(minutes=10)  # /healthz's open cases by state
OPTIMIZE_EVERY = timedelta(hours=1)  # the query planner's statistics (Store.optimize)
WATCH_EVERY = timedelta(seconds=5)  # config, rules and template files changed?
LEADER_EVERY = timedelta(seconds=20)  # a dead Telegram poller is replaced within a minute
PROBE_MAX = 15.0  # seconds between database probes during an outage, at most


@dataclass
class Loaded:
    """A validated configuration: settings (with linked Telegram chats), rules, renderer."""

    settings: Settings
    rules: RuleSet
    renderer: Renderer
    files: dict[Path, float] = field(default_factory=dict)  # watched file -> mtime


def validate(config_path: Path, today_of: Callable[[Settings], Any]) -> Loaded:
    """Load and check everything `check` checks; raises ConfigError listing every problem."""
    settings = load_settings(config_path)
    rules = load_rules(settings)
    problems = check_rules(settings, rules, today=today_of(settings))
    renderer = renderer_for(settings)
    names = [s.template_name for p in rules.policies for s in p.stages]
    problems += [f"templates: {p}" for p in check_templates(renderer, names)]
    if problems:
        raise ConfigError(problems)
    return Loaded(settings, rules, renderer, watched_files(settings, rules))


def watched_files(settings: Settings, rules: RuleSet) -> dict[Path, float]:
    files: list[Path] = []
    if settings.file is not None:
        files.append(settings.file)
    if settings.config.procedures_file:
        files.append(settings.resolve(settings.config.procedures_file))
    files.extend(Path(f) for f in rules.files)
    own = settings.resolve("templates")
    shipped = Path(shipped_path("templates")).resolve()
    if own.is_dir() and own.resolve() != shipped:
        files.extend(p for p in own.rglob("*") if p.is_file())
    out = {}
    for f in files:
        with contextlib.suppress(OSError):
            out[f] = f.stat().st_mtime
    return out


class Daemon:
    def __init__(
        self,
        config_path: Path,
        clock: Clock,
        *,
        demo: bool = False,
        http: bool = True,
        workers: int = 0,
    ):
        self.config_path = config_path
        self.clock = clock
        self.demo = demo
        self.http = http
        self.workers = workers
        self._stop = asyncio.Event()
        self._outage_since: float | None = None
        self._outage_error = ""
        self._open_counted = False  # /healthz has counted the open cases once
        self._next_probe = 0.0
        self._probe_wait = 1.0
        self._scheduler: Any = None
        self._bot: Any = None
        self._server: Any = None
        self._server_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.health: Any = None
        self.metrics: Any = None
        self.exit_code = 0

    # ----- start and stop ----------------------------------------------------------------

    def today(self, settings: Settings):
        return settings.default_calendar.local(self.clock.now()).date()

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self._install_signals()  # a SIGTERM while starting stops cleanly too
        self.loaded = validate(self.config_path, self.today)  # ConfigError: exit 2 before start
        settings = self.loaded.settings
        self.store = await self._open_store(settings)
        self.lock = DaemonLock(self.store)
        self.lock.acquire()  # StoreError: a second daemon on one SQLite file
        try:
            await asyncio.to_thread(sync_directory, self.store, settings)
            if self.demo:
                from watchdog.demo import load_demo

                written = await asyncio.to_thread(load_demo, self.store, settings, self.clock.now())
                log.info("demo data: %d new, %d updated cases", written.inserted, written.updated)
            self._apply_links()
            self.engine = Engine(self.store, self.settings, self.loaded.rules, workers=self.workers)
            self.channels = open_channels(self.settings)
            self.sender = Sender(
                self.store, self.settings, self.loaded.renderer, self.channels, self.clock.now
            )
            self.leadership = Leadership(self.store, TELEGRAM_POLLER)
            self.poll_leadership = Leadership(self.store, SQL_POLLER)
            self._pollers = self._make_pollers()
            if self._stop.is_set():
                return self.exit_code
            await self._start_http()
            self._start_scheduler()
            log.info(
                "watchdog running: rules %s, database %s, clock %s",
                self.loaded.rules.hash,
                self.store.dialect,
                self.clock.now().astimezone(self.settings.default_calendar.tz).isoformat(),
            )
            await self._stop.wait()
        finally:
            await self._shutdown()
        return self.exit_code

    async def _open_store(self, settings: Settings) -> Store:
        """Open the database; while it cannot be reached, wait and retry (logged once)."""
        wait = 1.0
        logged = False
        while True:
            try:
                return await asyncio.to_thread(Store.open, settings.database_url)
            except Exception as e:
                error = as_store_error(e, settings.database_url)
                if error is None or error.exit_code == 2:  # not an outage: a wrong URL, a login
                    raise
                if not logged:
                    log.error("%s; retrying", error)
                    logged = True
                await asyncio.sleep(wait)
                wait = min(PROBE_MAX, wait * 2)

    def stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping: no new claims; in-flight sends finish")
            self._stop.set()

    async def _shutdown(self) -> None:
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        # the jobs still running (a send batch in flight) finish their completions
        running = [t for t in asyncio.all_tasks() if t.get_name().startswith("watchdog:")]
        if running:
            await asyncio.wait(running, timeout=60)
        if self._bot is not None:
            await self._bot.stop()
            self._bot = None
        if self._server is not None:
            self._server.should_exit = True
            if self._server_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server_task, 10)
        for lock in ("leadership", "poll_leadership"):
            if getattr(self, lock, None) is not None:
                await asyncio.to_thread(getattr(self, lock).release)
        if getattr(self, "channels", None):
            await close_channels(self.channels)
        if getattr(self, "engine", None) is not None:
            self.engine.close()
        if getattr(self, "lock", None) is not None:
            self.lock.release()
        if getattr(self, "store", None) is not None:
            self.store.close()
        log.info("watchdog stopped")

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._sighup)

    def _sighup(self) -> None:
        if getattr(self, "engine", None) is not None:  # running: else the start reads it anyway
            self._spawn("reload", self.reload("SIGHUP"))

    # ----- the schedule ------------------------------------------------------------------

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        s = AsyncIOScheduler(
            timezone=self.settings.default_calendar.tz,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )
        now = datetime.now(self.settings.default_calendar.tz)
        s.add_job(
            self._job("tick", self.tick),
            "interval",
            seconds=TICK_EVERY.total_seconds(),
            id="tick",
            next_run_time=now,
        )
        s.add_job(
            self._job("deliver", self.deliver),
            "interval",
            seconds=DELIVER_EVERY.total_seconds(),
            id="deliver",
            next_run_time=now,
        )
        s.add_job(
            self._job("digests", self.digests),
            "interval",
            seconds=DIGESTS_EVERY.total_seconds(),
            id="digests",
            next_run_time=now,
        )
        s.add_job(
            self._job("reports", self.reports),
            "interval",
            seconds=REPORTS_EVERY.total_seconds(),
            id="reports",
            next_run_time=now,
        )
        s.add_job(self.watch, "interval", seconds=WATCH_EVERY.total_seconds(), id="watch")
        s.add_job(
            self._job("open cases", self.count_open_cases),
            "interval",
            seconds=OPEN_CASES_EVERY.total_seconds(),
            id="open_cases",
            next_run_time=now,
        )
        s.add_job(
            self._job("optimize", self.optimize),
            "interval",
            seconds=OPTIMIZE_EVERY.total_seconds(),
            id="optimize",
            next_run_time=now + OPTIMIZE_EVERY / 60,  # after the start-up plan, not during it
        )
        s.add_job(
            self._job("health", self.refresh_health),
            "interval",
            seconds=15,
            id="health",
            next_run_time=now,
        )
        s.add_job(self.probe, "interval", seconds=1, id="probe")
        if self.settings.channels.telegram is not None:
            s.add_job(
                self._job("leader", self.lead),
                "interval",
                seconds=LEADER_EVERY.total_seconds(),
                id="leader",
                next_run_time=now,
            )
        for i, (source, poller) in enumerate(self._pollers):
            s.add_job(
                self._job(f"poll:{source.name}", self._poll(source.name, poller)),
                "interval",
                seconds=source.interval.total_seconds(),
                id=f"poll{i}",
                next_run_time=now,
            )
        s.start()
        self._scheduler = s

    def wake(self, job_id: str) -> None:
        """Run a job now (a push arrived, firings were written): from any thread."""

        def go() -> None:
            job = self._scheduler.get_job(job_id) if self._scheduler else None
            if job is not None:
                job.modify(next_run_time=datetime.now(self.settings.default_calendar.tz))

        if self._loop is not None:
            self._loop.call_soon_threadsafe(go)

    def _job(self, name: str, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A job that pauses during a database outage and turns one into a logged outage."""

        async def work() -> None:
            try:
                await fn()
            except Exception as e:
                self._failed(name, e)

        async def run() -> None:
            if self._stop.is_set() or self._outage_since is not None:
                return
            # shielded: stopping the scheduler cancels its jobs, but a send batch in flight
            # must finish and record what it sent (the shutdown waits for these tasks)
            task = asyncio.get_running_loop().create_task(work(), name=f"watchdog:{name}")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

        return run

    def _failed(self, job: str, e: Exception) -> None:
        error = as_store_error(e, self.settings.database_url)
        if error is None or not is_outage(e):
            log.error("%s failed: %s", job, error or e, exc_info=error is None)
            return
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            self._outage_error = str(error)
            self._probe_wait = 1.0
            self._next_probe = time.monotonic() + self._probe_wait
            log.error("database unreachable (%s): %s; waiting for it", job, error)
            if self.health is not None:
                self.health.record_database(False, str(error), self.clock.now())

    async def probe(self) -> None:
        """During an outage: try the database with backoff; resume everything when it answers."""
        if self._outage_since is None or time.monotonic() < self._next_probe:
            return
        from watchdog.store.outbox import message_counts

        try:
            await asyncio.to_thread(message_counts, self.store)
        except Exception as e:
            if not is_outage(e):
                log.exception("database probe failed")
            self._probe_wait = min(PROBE_MAX, self._probe_wait * 2)
            self._next_probe = time.monotonic() + self._probe_wait
            return
        lasted = time.monotonic() - self._outage_since
        self._outage_since = None
        log.warning("database reachable again after %.0f s: resuming", lasted)
        if self.health is not None:
            self.health.record_database(True, None, self.clock.now())
        for job in ("tick", "deliver", "digests", "health"):
            self.wake(job)

    def _spawn(self, name: str, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("%s failed", name)

        asyncio.get_running_loop().create_task(run(), name=f"watchdog:{name}")

    # ----- the jobs ----------------------------------------------------------------------

    async def tick(self) -> None:
        started = time.monotonic()
        fired, evaluated = await asyncio.to_thread(self._tick_sync)
        if self.metrics is not None:
            self.metrics.observe_tick(time.monotonic() - started)
            self.metrics.count_firings(fired)
        if self.health is not None:
            self.health.record_tick(self.clock.now(), time.monotonic() - started)
        if fired:
            log.info("tick: %d case(s) evaluated, %d new firing(s)", evaluated, fired)
            self.wake("deliver")
        if evaluated and not self._open_counted:  # the first counts once cases are planned
            self._spawn("open cases", self.count_open_cases())

    def _tick_sync(self) -> tuple[int, int]:
        now = self.clock.now()
        hook = alerts_hook(self.store, self.settings, now)
        planned = self.engine.ensure_planned(now, on_firings=hook)
        if planned.batches:
            log.info("rules %s: %d case(s) planned", self.loaded.rules.hash, planned.evaluated)
        report = self.engine.tick(now, on_firings=hook)
        return len(planned.fired) + len(report.fired), planned.evaluated + report.evaluated

    async def deliver(self) -> None:
        if self.demo:  # a demo shows its messages at once, without the group window's wait
            from watchdog.store.outbox import close_groups

            await asyncio.to_thread(close_groups, self.store, self.clock.now())
        report = await self.sender.deliver_due()
        if report.claimed:
            log.info(
                "delivery: %d sent, %d to retry, %d failed for good",
                report.sent,
                report.retrying,
                report.dead,
            )

    async def digests(self) -> None:
        report = await asyncio.to_thread(
            send_due_digests,
            self.store,
            self.settings,
            self.loaded.rules,
            self.loaded.renderer,
            self.clock.now(),
        )
        if report.written:
            log.info("digests: %d written", report.written)
            self.wake("deliver")

    async def reports(self) -> None:
        written = await asyncio.to_thread(
            enqueue_due_reports, self.store, self.settings, self.clock.now()
        )
        if written:
            log.info("scheduled reports: %d written", written)
            self.wake("deliver")

    async def count_open_cases(self) -> None:
        """/healthz's and /metrics' open cases by state, as planned: the board's indexes alone,
        but every one of them (2.5 s for a million open cases), hence every OPEN_CASES_EVERY."""
        if self.health is None:
            return
        from watchdog.store.reads import board_counts

        states = await asyncio.to_thread(board_counts, self.store, self.clock.now())
        self.health.record_open_cases(states)
        # counted before the first plan (all cases unplanned): count again after a tick
        self._open_counted = any(states.values())

    async def optimize(self) -> None:
        await asyncio.to_thread(self.store.optimize)

    async def refresh_health(self) -> None:
        if self.health is None:
            await asyncio.to_thread(self._apply_links)
            return
        from watchdog.store.outbox import message_counts

        counts = await asyncio.to_thread(message_counts, self.store)
        await asyncio.to_thread(self._apply_links)  # chats linked, moved or blocked meanwhile
        self.health.record_messages(counts)
        self.health.record_database(True, None, self.clock.now())

    async def lead(self) -> None:
        """Poll Telegram only while this replica holds the poller lock."""
        leader = await asyncio.to_thread(self.leadership.try_acquire)
        if leader and self._bot is None:
            from watchdog.channels.telegram_bot import TelegramBot
            from watchdog.outbox.bot import StoreBotPorts

            ports = StoreBotPorts(
                self.store,
                self.settings,
                self.clock.now,
                self.sender.check_ack,
                on_linked=lambda *_: self._loop.call_soon_threadsafe(self._apply_links_now),
            )
            telegram = self.channels.get("telegram")
            limiter = getattr(telegram, "limiter", None)
            self._bot = TelegramBot(self.settings.channels.telegram, ports, limiter=limiter)
            await self._bot.start()
            log.info("this replica polls Telegram")
        elif not leader and self._bot is not None:
            await self._bot.stop()
            self._bot = None
            log.warning("Telegram polling lock lost: another replica polls now")

    def _poll(self, name: str, poller: Any) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            # one replica polls the sources (they would only read the same rows again)
            if not await asyncio.to_thread(self.poll_leadership.try_acquire):
                return
            report = await asyncio.to_thread(poller.poll_once)
            if report.error:
                log.error("%s", report.error)  # names the source and its URL, masked
                return
            for problem in report.problems:
                log.warning("%s", problem)  # "hoso: row 3, column ...: reason"
            if report.inserted or report.updated:
                log.info(
                    "source %s: %d new, %d updated, %d rejected",
                    name,
                    report.inserted,
                    report.updated,
                    report.rejected,
                )
                self.wake("tick")

        return run

    def _make_pollers(self) -> list[Any]:
        sql = [s for s in self.settings.config.sources if s.type == "sql"]
        if not sql:
            return []
        from watchdog.sources.sqlpoll import SqlPoller

        return [(s, SqlPoller(s, self.store, lambda: self.settings, self.clock.now)) for s in sql]

    # ----- configuration -----------------------------------------------------------------

    def _apply_links(self) -> None:
        """The settings with the Telegram chats linked through the bot."""
        self.settings = with_telegram_chats(self.loaded.settings, telegram_links(self.store))
        for part in ("engine", "sender"):
            if getattr(self, part, None) is not None:
                getattr(self, part).settings = self.settings

    def _apply_links_now(self) -> None:
        self._spawn("links", asyncio.to_thread(self._apply_links))

    async def watch(self) -> None:
        """Reload when a watched file changed (mtime)."""
        for path, mtime in self.loaded.files.items():
            try:
                changed = path.stat().st_mtime != mtime
            except OSError:
                changed = True
            if changed:
                await self.reload(f"{path} changed")
                return

    async def reload(self, why: str) -> None:
        try:
            new = await asyncio.to_thread(validate, self.config_path, self.today)
        except ConfigError as e:
            for problem in e.problems:
                log.error("reload (%s) refused: %s", why, problem)
            log.error("keeping the running configuration (rules %s)", self.loaded.rules.hash)
            self.loaded.files = watched_files(self.loaded.settings, self.loaded.rules) | {
                p: _mtime(p) for p in self.loaded.files
            }
            return
        except Exception as e:
            log.error("reload (%s) refused: %s; keeping the running configuration", why, e)
            return
        old_channels = self.settings.config.channels
        old_sources = self.settings.config.sources
        self.loaded = new
        await asyncio.to_thread(sync_directory, self.store, new.settings)
        self._apply_links()
        self.engine.rules = new.rules
        self.sender.renderer = new.renderer
        if new.settings.config.channels != old_channels:
            await close_channels(self.channels)
            self.channels = open_channels(self.settings)
            self.sender.channels = self.channels
            if self._bot is not None:  # polls again with the new token or API address
                await self._bot.stop()
                self._bot = None
                self.wake("leader")
        if new.settings.config.sources != old_sources:
            self._pollers = self._make_pollers()
            self._schedule_pollers()
        log.info("reloaded (%s): rules %s", why, new.rules.hash)
        self.wake("tick")

    # ----- HTTP ----------------------------------------------------------------------------

    def _observe_send(self, channel: str, seconds: float, result: Any) -> None:
        from watchdog.channels import Sent

        if self.metrics is not None:
            self.metrics.observe_send(channel, seconds, sent=isinstance(result, Sent))

    async def _start_http(self) -> None:
        if not self.http or not self.settings.config.http.listen:  # listen: "" = no server
            return
        import uvicorn

        from watchdog.http.app import AppContext, bind, create_app
        from watchdog.http.metrics import HealthState, Metrics
        from watchdog.store.outbox import acknowledge

        self.health = HealthState(tick_interval=TICK_EVERY)
        self.metrics = Metrics(self.health, self.clock.now)
        self.sender.observe = self._observe_send
        ctx = AppContext(
            store=self.store,
            settings=lambda: self.settings,
            clock=self.clock.now,
            health=self.health,
            changed=lambda codes: self.wake("tick"),
            ack=lambda message_id: acknowledge(self.store, message_id, self.clock.now()),
            ack_key=self.sender._key(),
            metrics=self.metrics,
        )
        app = create_app(ctx)
        listen = self.settings.config.http.listen
        try:
            sock = bind(listen)
        except (OSError, ValueError) as e:
            raise StoreError(f"http.listen {listen}: cannot listen there ({e})", exit_code=2) from e
        config = uvicorn.Config(app, log_config=None, access_log=False)
        self._server = _Server(config)
        self._server_task = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[sock]), name="http"
        )
        for _ in range(200):  # wait until it serves
            if self._server.started or self._server_task.done():
                break
            await asyncio.sleep(0.025)
        if self._server_task.done():
            raise StoreError(f"http.listen {listen}: the HTTP server stopped at once", exit_code=1)
        host, port = sock.getsockname()[:2]
        log.info("HTTP on http://%s:%s", f"[{host}]" if ":" in host else host, port)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


try:
    import uvicorn as _uvicorn

    class _Server(_uvicorn.Server):
        """The daemon owns SIGTERM/SIGINT: uvicorn must not install its own handlers (it
        would re-raise the signal after serving)."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[override]
            yield

        def install_signal_handlers(self) -> None:  # older uvicorn
            pass

except ImportError:  # pragma: no cover - uvicorn is a dependency
    _Server = None  # type: ignore[assignment,misc]


# ----- logging ---------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "telegram", "uvicorn.error", "alembic"):  # alembic: each migration
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # "skipped: maximum number of running instances reached" when a job is woken while it runs
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))
