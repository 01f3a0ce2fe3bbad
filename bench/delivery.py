"""Delivery benchmark: e-mails/s and Telegram messages/s through the whole outbox pipeline.

    .venv/bin/python bench/delivery.py [--messages 2000] [--chats 1000] [--database-url URL]

E-mail. A province of N officials (only the e-mail channel configured), each the assignee of
`--cases-per-message` overdue cases, is written to a temporary folder; the cases go in through
the importer's path (`normalize_case`, `upsert_cases`) and one engine planning pass with
`alerts_hook` turns their firings into N real alert messages (one per official, its cases
grouped), so the sender claims, renders (the shipped templates), saves, sends and completes
real alerts. No message is enqueued by hand. Then, with the clock past the group window:

- pipeline   `Sender(...).deliver_due()` with the `EmailChannel` that `open_channels` builds,
             wall time from the first claim to the last completion, to an aiosmtpd sink
             (tests/support/smtp.py) running in a process of its own on loopback;
- bare loops aiosmtplib alone (`aiosmtplib.send`, one connection per message as our channel
             does) to the same sink in the same run, N messages each: short ASCII messages one
             after another ("sequential", the issue's bare loop) and 16 at a time (the
             Sender's default concurrency: the fairer comparison), and the pipeline's own
             messages (same bytes, built and flattened before the clock starts) 16 at a time,
             which is what sending alone costs for mail of that size.

Targets: >= 200 e-mails/s and >= 50% of the sequential bare loop, as the issue words it; the
ratios to the concurrent loops are shown beside it, in parentheses (not counted). For every
loop the CPU time per message of this process and of the sink is recorded, with the rate
this process could reach with a core to itself (`cpu_bound_per_s`, steadier than wall time on a
shared machine): the pipeline's extra CPU per message over the same-bytes loop is its overhead
(MIME building, rendering, database round trips).

Telegram. A second province of `--chats` officials with a Telegram chat id each (only the
Telegram channel configured), one overdue case each, the same way: one alert per chat.
`TelegramChannel` with its default `Limits` (1/s per chat, 30/s per bot) sends them to
FakeTelegram (tests/support/fake_telegram.py) enforcing Telegram's limits (1/s per chat, 30/s
per bot) and counting the 429s it gives. One message per chat on purpose: every send then waits
only for the bot-wide slot, so the figure measures how close the pipeline runs to the 30/s bot
limit (several messages per chat in one batch would measure the 1/s per-chat limit, which only
ever delays that chat). Targets: >= 95% of 30/s over the whole run (wall time of
`deliver_due`), zero 429. The steady rate (first to last accepted send, as the fake saw them) is
shown beside it.

Both use SQLite files in the temporary folder by default; with `--database-url` (PostgreSQL)
each part works in a schema of its own, dropped afterwards. Each run records where the time
went (claim, render, save, complete: the Sender's steps, timed by wrapping them in this process;
they overlap the sends, see `Steps.breakdown`) and the load average, since the machine may be
shared. `--profile` adds a cProfile of the pipeline (the event loop and the worker threads) and
prints it.

Prints a table and writes bench/results/delivery.json (SQLite) or delivery-<database>.json,
with the commit measured. A run takes about two minutes (e-mail ~1 min, Telegram ~35 s).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PTB_TIMEDELTA", "true")

VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 11, 18, 9, 30, tzinfo=VN)  # a Wednesday, office hours
SEND_AT = NOW + timedelta(minutes=2)  # past the 1-minute group window
UNITS = 20
TARGET_EMAILS_PER_S = 200
TARGET_EMAIL_RATIO = 0.5
BOT_PER_SECOND = 30.0
TARGET_TELEGRAM_SHARE = 0.95
CONCURRENCY = 16  # the Sender's default
RULES = """\
policies:
  - name: bench
    stages:
      - {id: overdue, when: {overdue: "0 working_days"}, notify: [assignee]}
"""
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"]
GIVEN = ["Văn An", "Thị Bình", "Hữu Cường", "Thị Dung", "Minh Giang", "Ngọc Hà", "Đức Hải"]


# ----- the province ------------------------------------------------------------------------------


def write_province(folder: Path, url: str, officials: int, channels: str) -> Path:
    """Units with heads, `officials` officials (e-mail and chat id), one 10-working-day
    procedure, the bench rules and a 1-minute group window."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f'database: {{url: "{url}"}}',
        "timezone: Asia/Ho_Chi_Minh",
        "calendars:",
        "  default: {}",
        "rules: [rules.yaml]",
        f"channels: {channels}",
        "delivery: {group_window: 1m, max_attempts: 4, backoff: 1m}",
        "units:",
        "  - {code: T, name: UBND tỉnh, heads: [o0]}",
    ]
    for u in range(1, UNITS + 1):
        lines.append(f"  - {{code: U{u}, name: Phòng số {u}, parent: T, heads: [o{u}]}}")
    lines.append("officials:")
    for k in range(officials):
        unit = "T" if k == 0 else f"U{1 + k % UNITS}"
        lines.append(
            f"  - {{id: o{k}, name: {SURNAMES[k % 10]} {GIVEN[k % 7]} {k}, unit: {unit}, "
            f'email: o{k}@example.vn, telegram: "{100_000 + k}"}}'
        )
    lines.append("supervisors: [o0]")
    lines.append("procedures:")
    lines.append('  - {code: "2.000488", name: Cấp Phiếu lý lịch tư pháp, limit: 10 working_days}')
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "rules.yaml").write_text(RULES, encoding="utf-8")
    return path


def load_alerts(store, settings, officials: int, per_official: int) -> dict[str, Any]:
    """Overdue cases through the importer's path, then a planning pass with the outbox hook:
    one alert per official carrying its `per_official` cases."""
    from watchdog.engine.rules import load_rules
    from watchdog.engine.runner import Engine
    from watchdog.outbox.enqueue import alerts_hook
    from watchdog.sources.fields import RowProblems, normalize_case
    from watchdog.sources.ingest import upsert_cases
    from watchdog.store.outbox import message_counts

    started = time.perf_counter()
    records = []
    for k in range(officials):
        for j in range(per_official):
            received = datetime(2026, 10, 20, 8, 0, tzinfo=VN) + timedelta(
                days=(k + j) % 10, hours=(k * 7 + j) % 8
            )
            raw = {
                "case_code": f"000.00.{k % 100:02d}.H99-{received:%y%m%d}-{k:05d}{j}",
                "procedure_code": "2.000488",
                "unit_code": "T" if k == 0 else f"U{1 + k % UNITS}",
                "received_at": received.strftime("%d/%m/%Y %H:%M"),
                "status": 4,
                "assignee": f"o{k}",
                "applicant_name": f"{SURNAMES[(k + j) % 10]} {GIVEN[(k * 3 + j) % 7]}",
                "applicant_phone": f"09{(k * 10 + j) % 10**8:08d}",
            }
            problems = RowProblems()
            records.append(normalize_case(raw, settings, problems))
            if problems:
                raise SystemExit(f"bench: a generated case is refused: {problems.problems}")
    for i in range(0, len(records), 2000):
        upsert_cases(store, records[i : i + 2000], NOW - timedelta(hours=1))
    engine = Engine(store, settings, load_rules(settings, env={}))
    report = engine.ensure_planned(NOW, on_firings=alerts_hook(store, settings, NOW))
    engine.close()
    counts = message_counts(store)
    return {
        "cases": len(records),
        "firings": len(report.fired),
        "messages": sum(counts.values()),
        "setup_s": round(time.perf_counter() - started, 2),
    }


@contextmanager
def database(base_url: str | None, folder: Path, name: str):
    """A fresh database for one part: a SQLite file, or a PostgreSQL schema of its own."""
    if not base_url or not base_url.startswith("postgresql"):
        yield base_url or f"sqlite:///{folder / f'{name}.db'}"
        return
    from sqlalchemy import create_engine, text

    pg_schema = f"bench_delivery_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{pg_schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options={quote(f'-csearch_path={pg_schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{pg_schema}" CASCADE'))
        admin.dispose()


def open_store(settings):
    from watchdog.store import Store

    store = Store.open(settings.database_url, migrate=False)
    store.upgrade()
    return store


# ----- timing the Sender's steps -----------------------------------------------------------------


class Steps:
    """Wall time per Sender step, and optionally a cProfile of every thread the steps run in."""

    def __init__(self, profile: bool) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.profile = profile
        self.stats: list[cProfile.Profile] = []
        self.cpu = 0.0  # CPU seconds of this process (all threads) over the run
        self._lock = threading.Lock()

    def wrap_sync(self, name: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            prof = cProfile.Profile() if self.profile else None
            t = time.perf_counter()
            if prof:
                prof.enable()
            try:
                return fn(*args, **kwargs)
            finally:
                if prof:
                    prof.disable()
                with self._lock:
                    self.seconds[name] += time.perf_counter() - t
                    self.calls[name] += 1
                    if prof:
                        self.stats.append(prof)

        return timed

    def wrap_async(self, name: str, fn):
        @functools.wraps(fn)
        async def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - t
                self.calls[name] += 1

        return timed

    @contextmanager
    def around(self, sender):
        """Wrap the store calls the sender module makes, and the sender's own steps."""
        import watchdog.outbox.sender as mod

        names = ("claim_messages", "save_rendered", "complete")
        saved = {n: getattr(mod, n) for n in names}
        for n in names:
            setattr(mod, n, self.wrap_sync(n.split("_")[0], saved[n]))
        sender._render = self.wrap_sync("render", sender._render)
        sender._deliver = self.wrap_async("deliver", sender._deliver)
        try:
            yield
        finally:
            for n, fn in saved.items():
                setattr(mod, n, fn)
            del sender._render, sender._deliver

    def breakdown(self, wall: float) -> dict[str, float]:
        """Busy time of each step. The Sender claims, renders and saves the next batch in a
        thread while one sends, and records outcomes while other sends go on, so these overlap:
        `sending` is the time spent in batches (sends and their recording), `between_batches`
        the rest of the wall time (the first claim, a wait for the next batch, the last claim).
        """
        s = self.seconds
        out = {
            "claim": s["claim"],
            "render": s["render"],
            "save_rendered": s["save"],
            "complete": s["complete"],
            "sending": s["deliver"],
            "between_batches": wall - s["deliver"],
        }
        return {k: round(v, 3) for k, v in out.items()} | {
            "batches": self.calls["deliver"],
            "complete_calls": self.calls["complete"],
            "process_cpu": round(self.cpu, 3),
        }


def print_profile(profiles: list[cProfile.Profile], limit: int = 30) -> None:
    if not profiles:
        return
    stats = pstats.Stats(profiles[0], stream=io.StringIO())
    for p in profiles[1:]:
        stats.add(p)
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(order).print_stats(limit)
        print(f"\n--- pipeline profile (event loop + step threads), by {order} ---")
        print(out.getvalue())


async def run_sender(store, settings, channels, profile: bool) -> tuple[Any, float, Steps]:
    from watchdog.clock import FixedClock
    from watchdog.outbox.sender import Sender
    from watchdog.outbox.wiring import renderer_for

    sender = Sender(store, settings, renderer_for(settings), channels, FixedClock(SEND_AT).now)
    sender.ack_data(0)  # the ack key is read once per sender; not part of the figure
    steps = Steps(profile)
    loop_prof = cProfile.Profile() if profile else None
    with steps.around(sender):
        if loop_prof:
            loop_prof.enable()
        t, cpu = time.perf_counter(), time.process_time()
        report = await sender.deliver_due()
        wall = time.perf_counter() - t
        steps.cpu = time.process_time() - cpu
        if loop_prof:
            loop_prof.disable()
            steps.stats.append(loop_prof)
    return report, wall, steps


# ----- e-mail ------------------------------------------------------------------------------------


class Sink:
    """The aiosmtpd sink (tests/support/smtp.py) in a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--internal-sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self._read())

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench: the SMTP sink did not start")
        return line.strip()

    def received(self) -> tuple[int, float]:
        """Messages the sink accepted so far, and the CPU seconds it has used."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        count, cpu = self._read().split()
        return int(count), float(cpu)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def sink_main() -> None:
    from tests.support.smtp import SmtpServer

    async def main() -> None:
        async with SmtpServer() as server:
            print(server.port, flush=True)
            while True:
                line = (await asyncio.to_thread(sys.stdin.readline)).strip()
                if line == "count":
                    print(len(server.received), time.process_time(), flush=True)
                else:
                    break

    asyncio.run(main())


def small_messages(n: int) -> list[EmailMessage]:
    """What the bare loops send by default: short ASCII text messages."""
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = "canhbao@example.vn"
        msg["To"] = f"o{i}@example.vn"
        msg["Subject"] = f"Bare loop message {i}"
        msg.set_content(f"Message {i} of the bare aiosmtplib loop.\n")
        out.append(msg)
    return out


def pipeline_bytes(store, settings, channel) -> list[tuple[str, list[str], bytes]]:
    """The messages the pipeline sent, as it wrote them on the wire (EmailChannel.build), read
    back from the outbox: (sender, recipients, bytes)."""
    from sqlalchemy import select

    from watchdog.channels import Outgoing
    from watchdog.outbox.compose import recipient_of
    from watchdog.store import schema

    m = schema.messages.c
    cols = (m.id, m.recipient, m.address, m.subject, m.text, m.html, m.message_id, m.created_at)
    with store.read() as conn:
        rows = conn.execute(select(*cols).where(m.status == "sent").order_by(m.id)).all()
    sender = settings.channels.email.from_.split("<")[-1].strip(" >")
    out = []
    for r in rows:
        message = Outgoing(
            id=r.id,
            channel="email",
            address=r.address,
            recipient=recipient_of(settings, r.recipient),
            stages=(),
            subject=r.subject,
            text=r.text,
            html=r.html,
            created_at=r.created_at,
            message_id=r.message_id,
        )
        out.append((sender, [r.address], channel.build(message)))
    return out


async def bare_loop(port: int, messages: list, concurrency: int) -> tuple[int, float, float]:
    """aiosmtplib alone, one connection per message (`aiosmtplib.send`), `concurrency` at a
    time. Returns (sent, wall seconds, CPU seconds of this process)."""
    import aiosmtplib

    sem = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(item) -> None:
        nonlocal ok
        async with sem:
            if isinstance(item, EmailMessage):
                await aiosmtplib.send(item, hostname="127.0.0.1", port=port, timeout=30)
            else:
                sender, recipients, data = item
                await aiosmtplib.send(
                    data,
                    sender=sender,
                    recipients=recipients,
                    hostname="127.0.0.1",
                    port=port,
                    timeout=30,
                )
            ok += 1

    t, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(m) for m in messages))
    return ok, time.perf_counter() - t, time.process_time() - cpu


def figures(sent: int, wall: float, cpu: float, sink: tuple[int, float]) -> dict[str, Any]:
    return {
        "sent": sent,
        "seconds": round(wall, 3),
        "per_s": round(sent / wall, 1),
        "cpu_ms_per_msg": round(cpu / sent * 1000, 3),  # this process, all threads
        # what this process could do with a core of its own (the machine may be shared)
        "cpu_bound_per_s": round(sent / cpu, 1) if cpu else None,
        "sink_received": sink[0],
        "sink_cpu_ms_per_msg": round(sink[1] / sent * 1000, 3),
    }


def email_part(args, folder: Path) -> dict[str, Any]:
    from watchdog.config import load_settings
    from watchdog.outbox.wiring import close_channels, open_channels

    sink = Sink()
    try:
        with database(args.database_url, folder, "email") as url:
            channels_cfg = f"{{email: {{host: 127.0.0.1, port: {sink.port}, tls: none, "
            channels_cfg += 'from: "Hệ thống cảnh báo <canhbao@stp.example.vn>"}}'
            cfg = write_province(folder / "email", url, args.messages, channels_cfg)
            settings = load_settings(cfg, env={})
            store = open_store(settings)
            setup = load_alerts(store, settings, args.messages, args.cases_per_message)
            log(f"e-mail: {setup['messages']:,} alerts from {setup['cases']:,} cases "
                f"in {setup['setup_s']}s")  # fmt: skip
            n = setup["messages"]

            def delta(before: tuple[int, float]) -> tuple[int, float]:
                after = sink.received()
                return after[0] - before[0], after[1] - before[1]

            async def bare(name: str, messages: list, concurrency: int) -> dict[str, Any]:
                before = sink.received()
                ok, wall, cpu = await bare_loop(sink.port, messages, concurrency)
                result = figures(ok, wall, cpu, delta(before))
                log(f"e-mail: {name} {result['per_s']:,.0f}/s")
                return result

            async def measure() -> dict[str, Any]:
                out: dict[str, Any] = {"messages": n}
                out["bare_sequential"] = await bare("bare loop, sequential", small_messages(n), 1)
                channels = open_channels(settings)
                before = sink.received()
                try:
                    report, wall, steps = await run_sender(store, settings, channels, args.profile)
                    ours = pipeline_bytes(store, settings, channels["email"])
                finally:
                    await close_channels(channels)
                out["pipeline"] = figures(report.sent, wall, steps.cpu, delta(before)) | {
                    "failed": report.claimed - report.sent,
                    "first_errors": report.errors[:3],
                    "mean_bytes": round(sum(len(d) for *_, d in ours) / max(len(ours), 1)),
                    "steps_s": steps.breakdown(wall),
                }
                log(f"e-mail: pipeline {out['pipeline']['per_s']:,.0f}/s")
                out["bare_concurrent"] = await bare(
                    f"bare loop, {CONCURRENCY} at a time", small_messages(n), CONCURRENCY
                )
                out["bare_concurrent_same_bytes"] = await bare(
                    f"bare loop, {CONCURRENCY} at a time, the pipeline's messages",
                    ours,
                    CONCURRENCY,
                )
                out["bare_concurrent_same_bytes"]["mean_bytes"] = out["pipeline"]["mean_bytes"]
                pipe = out["pipeline"]["per_s"]
                for key in ("bare_sequential", "bare_concurrent", "bare_concurrent_same_bytes"):
                    out[f"ratio_to_{key.removeprefix('bare_')}"] = round(
                        pipe / out[key]["per_s"], 3
                    )
                if args.profile:
                    print_profile(steps.stats)
                return out

            result = asyncio.run(measure())
            store.close()
            return setup | result
    finally:
        sink.close()


# ----- Telegram ----------------------------------------------------------------------------------


def telegram_part(args, folder: Path) -> dict[str, Any]:
    from tests.support.fake_telegram import FakeTelegram
    from watchdog.config import load_settings
    from watchdog.outbox.wiring import close_channels, open_channels

    with (
        FakeTelegram(chat_interval=1.0, group_interval=3.0, bot_per_second=BOT_PER_SECOND) as fake,
        database(args.database_url, folder, "telegram") as url,
    ):
        channels_cfg = f"{{telegram: {{token: '{fake.token}', api_url: '{fake.api_url}'}}}}"
        cfg = write_province(folder / "telegram", url, args.chats, channels_cfg)
        settings = load_settings(cfg, env={})
        store = open_store(settings)
        setup = load_alerts(store, settings, args.chats, 1)
        log(f"telegram: {setup['messages']:,} alerts to {args.chats:,} chats "
            f"in {setup['setup_s']}s; sending at <= {BOT_PER_SECOND:g}/s")  # fmt: skip

        async def measure() -> dict[str, Any]:
            channels = open_channels(settings)
            limits = channels["telegram"].limits  # type: ignore[attr-defined]
            try:
                report, wall, steps = await run_sender(store, settings, channels, args.profile)
            finally:
                await close_channels(channels)
            if args.profile:
                print_profile(steps.stats)
            return {"limits": limits, "report": report, "wall": wall, "steps": steps}

        got = asyncio.run(measure())
        store.close()
        report, wall, limits = got["report"], got["wall"], got["limits"]
        accepted = fake.sent()
        chats = {c.chat_id for c in accepted}
        span = accepted[-1].at - accepted[0].at if len(accepted) > 1 else 0.0
        per_s = report.sent / wall
        return setup | {
            "chats": args.chats,
            "limits": {
                "chat_interval": limits.chat_interval,
                "bot_per_second": limits.bot_per_second,
            },
            "fake_limits": {"chat_interval": 1.0, "bot_per_second": BOT_PER_SECOND},
            "sent": report.sent,
            "failed": report.claimed - report.sent,
            "first_errors": report.errors[:3],
            "accepted_by_fake": len(accepted),
            "distinct_chats": len(chats),
            "rate_limited_429": fake.rate_limited,
            "pipeline_s": round(wall, 3),
            "pipeline_per_s": round(per_s, 2),
            "share_of_limit": round(per_s / BOT_PER_SECOND, 4),
            "steady_per_s": round((len(accepted) - 1) / span, 2) if span else None,
            "steps_s": got["steps"].breakdown(wall),
        }


# ----- report ------------------------------------------------------------------------------------


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the code under it had local changes (a shared tree)."""

    def git(*cmd: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True, text=True)
        except OSError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if commit is None:  # an exported tree: say which commit it came from
        return {"commit": os.environ.get("BENCH_COMMIT"), "local_changes": None}
    changes = git("status", "--porcelain", "--", "watchdog", "templates", "tests/support")
    return {"commit": commit, "local_changes": bool(changes)}


def load_average() -> dict[str, Any]:
    uptime = shutil.which("uptime")
    text = subprocess.run([uptime], capture_output=True, text=True).stdout.strip() if uptime else ""
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "uptime": text}


def verdicts(email: dict | None, telegram: dict | None) -> list[tuple[str, str, str, bool]]:
    rows: list[tuple[str, str, str, bool]] = []
    if email:
        pipe = email["pipeline"]
        rate = pipe["per_s"]
        rows.append(
            ("e-mail pipeline, msgs/s", f">= {TARGET_EMAILS_PER_S}", f"{rate:,.1f}",
             rate >= TARGET_EMAILS_PER_S)
        )  # fmt: skip
        loops = (
            ("sequential", "bare_sequential", ">= 50%"),
            (f"{CONCURRENCY} at a time", "bare_concurrent", "(>= 50%)"),
            (f"{CONCURRENCY} at a time, same messages", "bare_concurrent_same_bytes", "(>= 50%)"),
        )
        for label, key, _ in loops:
            rows.append((f"e-mail bare loop, {label}, msgs/s", "-", f"{email[key]['per_s']:,.1f}",
                         True))  # fmt: skip
        for label, key, target in loops:
            ratio = email[f"ratio_to_{key.removeprefix('bare_')}"]
            rows.append((f"pipeline / bare {label}", target, f"{ratio:.0%}",
                         ratio >= TARGET_EMAIL_RATIO))  # fmt: skip
        all_sent = pipe["sent"] == email["messages"] == pipe["sink_received"]
        rows.append(("e-mails delivered", f"{email['messages']:,}", f"{pipe['sent']:,}", all_sent))
    if telegram:
        rate, share = telegram["pipeline_per_s"], telegram["share_of_limit"]
        target = TARGET_TELEGRAM_SHARE * BOT_PER_SECOND
        rows.append(
            (f"Telegram msgs/s, {telegram['chats']:,} chats", f">= {target:.1f} (95% of 30)",
             f"{rate:.2f} ({share:.2%})", share >= TARGET_TELEGRAM_SHARE)
        )  # fmt: skip
        steady = telegram["steady_per_s"]
        rows.append(("Telegram steady rate (fake's clock)", "-", f"{steady}", True))
        n429 = telegram["rate_limited_429"]
        rows.append(("Telegram 429 answers", "0", str(n429), n429 == 0))
        ok = telegram["sent"] == telegram["messages"] == telegram["accepted_by_fake"]
        rows.append(
            ("Telegram delivered", f"{telegram['messages']:,}", f"{telegram['sent']:,}", ok)
        )
    return rows


def table(rows: list[tuple[str, str, str, bool]]) -> str:
    head = ("figure", "target", "measured", "ok?")
    cells = [head] + [
        (a, b, c, "-" if b == "-" else f"({'yes' if d else 'no'})" if b.startswith("(") else
         "yes" if d else "NO")
        for a, b, c, d in rows
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    lines = []
    for n, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=2000, help="e-mail alerts (default 2000)")
    p.add_argument("--cases-per-message", type=int, default=2, help="cases each alert carries")
    p.add_argument("--chats", type=int, default=1000, help="Telegram chats, one alert each")
    p.add_argument("--database-url", help="PostgreSQL URL (default: SQLite files in a temp dir)")
    p.add_argument("--only", choices=["email", "telegram"], help="run one part only")
    p.add_argument("--profile", action="store_true", help="cProfile the pipeline and print it")
    p.add_argument("--out", type=Path, help="JSON results file (default bench/results/...)")
    p.add_argument("--internal-sink", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.internal_sink:
        sink_main()
        return 0

    import logging

    logging.basicConfig(level=logging.WARNING)
    folder = Path(tempfile.mkdtemp(prefix="watchdog-bench-delivery-"))
    dialect = "postgresql" if (args.database_url or "").startswith("postgresql") else "sqlite"
    load_before = load_average()
    started = time.perf_counter()
    try:
        email = None if args.only == "telegram" else email_part(args, folder)
        telegram = None if args.only == "email" else telegram_part(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows = verdicts(email, telegram)
    print(table(rows))
    import aiosmtplib
    import sqlalchemy
    import telegram as ptb

    result = {
        "benchmark": "delivery",
        "when": datetime.now(VN).isoformat(timespec="seconds"),
        "database": dialect,
        "targets_met": all(ok for _, target, _, ok in rows if not target.startswith("(")),
        "verdicts": [
            {"figure": a, "target": b, "measured": c, "ok": d} for a, b, c, d in rows if b != "-"
        ],
        "targets": {
            "emails_per_s": TARGET_EMAILS_PER_S,
            "email_ratio_to_bare_loop": TARGET_EMAIL_RATIO,
            "telegram_share_of_bot_limit": TARGET_TELEGRAM_SHARE,
            "telegram_429": 0,
        },
        "email": email,
        "telegram": telegram,
        "run_s": round(time.perf_counter() - started, 1),
        "code": code_version(),
        "load_before": load_before,
        "load_after": load_average(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "sqlalchemy": sqlalchemy.__version__,
            "aiosmtplib": aiosmtplib.__version__,
            "python-telegram-bot": ptb.__version__,
        },
    }
    out = args.out or ROOT / "bench" / "results" / (
        "delivery.json" if dialect == "sqlite" else f"delivery-{dialect}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    log(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
