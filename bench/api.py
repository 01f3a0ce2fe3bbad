"""Benchmark of the push API: events per second through a real HTTP server, latency, nothing lost.

    .venv/bin/python bench/api.py [--seconds 60] [--rate 500] [--database-url URL]

The daemon's app (`watchdog.http.create_app`) runs under uvicorn on a loopback port in a
process of its own (this script with `--internal serve`), over a database holding `--cases`
cases (written before the clock starts). This process pushes case events at a fixed rate with
httpx async clients (`--client-processes` processes, `--connections` keep-alive connections in
all), open loop: request i is due at start + i / rate whatever happened to the earlier ones,
and its latency is counted from that instant, so a server that falls behind shows it (no
coordinated omission). httpx costs ~1.7 ms of CPU per request (more on a busy machine), which
on a small machine can cap the rate before the server does: `--client raw` sends the same
requests with a hand-written HTTP/1.1 client (~0.1 ms each) to measure the server alone. Each
result records the client's CPU per request and the machine's load average.

Events are `step_started` (steps S<i>) and, one in five, `assigned`, each with a unique
event_id and an instant that grows with i. After the run the store is read back: every event
answered 200 must be recorded on its case, and each case must show the step and assignee of
its latest event (nothing lost, nothing rolled back by requests that overtook each other).

A 3 s warm-up at 100/s comes first (not counted). Then a short ramp (`--ramp-seconds` per step,
rates from `--ramp`, 100/s upwards) finds the highest rate sustained before p99 passes 200 ms
(the ramp stops at the first step with a higher p99, an error, or under 95 % of its rate).

Without `--database-url` the target is a fresh SQLite file in a temporary folder; with a
PostgreSQL URL the benchmark works in a schema of its own (`bench_<random>`), dropped
afterwards. Results: a table on stdout, and bench/results/api.json (SQLite) or
api-postgresql.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token-0123456789abcdef"
P99_LIMIT_MS = 200.0
VN = timezone(timedelta(hours=7))
BASE = datetime(2026, 3, 2, 8, 0, tzinfo=VN)
OFFICIALS = [f"cb{i:02d}" for i in range(20)]


def config_text(database_url: str) -> str:
    officials = "\n".join(
        f"  - {{id: {o}, name: Cán bộ {i}, unit: S01.P1, email: {o}@example.vn}}"
        for i, o in enumerate(OFFICIALS)
    )
    return f"""\
database: {{url: {json.dumps(database_url)}}}
units:
  - {{code: S01, name: Sở số 1}}
  - {{code: S01.P1, name: Phòng 1, parent: S01}}
officials:
{officials}
procedures:
  - {{code: "1.000001", name: Thủ tục một, limit: 10 working_days}}
sources:
  - {{type: http, name: bench, token: "{TOKEN}"}}
http: {{listen: "127.0.0.1:0"}}
"""


def with_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections work in `schema` (as tests/conftest.py does it)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


# ----- the server (a process of its own) -------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    from watchdog.config import load_settings
    from watchdog.http import AppContext, HealthState, Metrics, create_app, embedded_server
    from watchdog.store import Store
    from watchdog.store.outbox import acknowledge

    settings = load_settings(args.config)
    store = Store.open(args.database_url, migrate=False)

    def now() -> datetime:
        return datetime.now(UTC)

    changed = [0]

    def on_change(codes: list[str]) -> None:
        changed[0] += len(codes)

    ctx = AppContext(
        store=store,
        settings=lambda: settings,
        clock=now,
        health=HealthState(),
        changed=on_change,
        ack=lambda message_id: acknowledge(store, message_id, now()),
        ack_key=b"bench" * 8,
        metrics=Metrics(),
    )
    server = embedded_server(create_app(ctx), "127.0.0.1:0")
    host, port = server.address
    print(f"LISTENING {host} {port}", flush=True)
    profile = args.profile_server
    if profile:
        import cProfile
        import signal

        signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
        prof = cProfile.Profile()
        prof.enable()
    asyncio.run(server.serve())
    if profile:
        prof.disable()
        prof.dump_stats(profile)


# ----- setting up and reading back --------------------------------------------------------------


def setup(url: str, config: Path, n_cases: int, admin_url: str | None, schema: str | None) -> None:
    from watchdog.config import load_settings
    from watchdog.sources.ingest import upsert_cases
    from watchdog.sources.push import read_cases
    from watchdog.store import Store

    if schema:
        from sqlalchemy import create_engine, text

        admin = create_engine(admin_url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    store = Store.open(url, migrate=False)
    store.upgrade()
    settings = load_settings(config)
    cases = [
        {
            "case_code": f"B{i:06d}",
            "procedure_code": "1.000001",
            "unit_code": "S01.P1",
            "received_at": (BASE - timedelta(days=30)).isoformat(),
            "assignee": OFFICIALS[i % len(OFFICIALS)],
        }
        for i in range(n_cases)
    ]
    pushed = read_cases(cases, settings)
    assert not pushed.errors, pushed.errors[:3]
    upsert_cases(store, pushed.records, datetime.now(UTC), source="bench")
    store.close()


def drop(admin_url: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(admin_url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


class Plan:
    """The events of a run: event i goes to case i % cases, at BASE + offset + i seconds (cases
    are received 30 days before BASE)."""

    def __init__(self, run: str, n_cases: int, offset: int):
        self.run = run
        self.n_cases = n_cases
        self.offset = offset

    def event(self, i: int) -> tuple[str, dict[str, Any]]:
        code = f"B{i % self.n_cases:06d}"
        at = (BASE + timedelta(seconds=self.offset + i)).isoformat()
        body: dict[str, Any] = {"event_id": f"{self.run}-{i}", "at": at}
        if i % 5 == 4:
            body |= {"kind": "assigned", "assignee": OFFICIALS[(i // 5) % len(OFFICIALS)]}
        else:
            body |= {"kind": "step_started", "step": f"S{i}", "handler": OFFICIALS[i % 7]}
        return code, body


def verify(url: str, plan: Plan, ok: list[int]) -> dict[str, Any]:
    """Every event answered 200 is recorded, and each case shows its latest step and assignee."""
    from watchdog.store import Store
    from watchdog.store.cases import read_source_rows
    from watchdog.store.events import stored_events

    store = Store.open(url, migrate=False)
    by_case: dict[str, list[int]] = {}
    for i in ok:
        by_case.setdefault(plan.event(i)[0], []).append(i)
    missing = wrong = 0
    rows = read_source_rows(store, list(by_case))
    for code, indexes in by_case.items():
        recorded = {e.event_id for e in stored_events(store, code)}
        missing += sum(1 for i in indexes if plan.event(i)[1]["event_id"] not in recorded)
        steps = [i for i in indexes if plan.event(i)[1]["kind"] == "step_started"]
        assigns = [i for i in indexes if plan.event(i)[1]["kind"] == "assigned"]
        row = rows[code]
        if steps and row["current_step"] != plan.event(max(steps))[1]["step"]:
            wrong += 1
        if assigns and row["assignee"] != plan.event(max(assigns))[1]["assignee"]:
            wrong += 1
    store.close()
    return {"checked": len(ok), "missing": missing, "cases_wrong": wrong}


# ----- load -------------------------------------------------------------------------------------


async def load(
    base: str,
    plan: Plan,
    rate: float,
    seconds: float,
    connections: int,
    client: str,
    part: int = 0,
    parts: int = 1,
    start_at: float | None = None,
) -> dict[str, Any]:
    """Push events i = part, part + parts, ... of the phase, event i due at start_at + i / rate
    (time.monotonic, the same clock in every process of the machine); latency counted from
    that instant. Returns the indexes, latencies, statuses and this process's CPU time."""
    n = int(rate * seconds)
    mine = range(part, n, parts)
    latencies: list[float] = []
    statuses: list[int] = []
    lag_max = 0.0
    host, port = base.removeprefix("http://").rsplit(":", 1)
    send = await (_httpx_sender if client == "httpx" else _raw_sender)(
        base, host, int(port), connections
    )
    # Requests beyond the connections wait here (FIFO, cheap), not in httpx's pool, whose
    # queue of waiting requests costs O(waiting) per request and would make the client the
    # bottleneck; the wait counts in the latency all the same.
    free = asyncio.Semaphore(connections)
    results: dict[int, tuple[float, int]] = {}

    async def one(i: int, due: float) -> None:
        code, body = plan.event(i)
        async with free:
            try:
                status = await send.post(f"/api/v1/cases/{code}/events", body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                status = -1
                print(f"event {i}: {type(e).__name__}: {e}", file=sys.stderr)
        results[i] = (time.monotonic() - due, status)

    cpu0 = time.process_time()
    start = start_at if start_at is not None else time.monotonic() + 0.2
    tasks = []
    for i in mine:
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            lag_max = max(lag_max, -delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    await send.close()
    for i in mine:
        latency, status = results[i]
        latencies.append(latency)
        statuses.append(status)
    return {
        "index": list(mine),
        "latency": latencies,
        "status": statuses,
        "lag_max": lag_max,
        "cpu_s": time.process_time() - cpu0,
        "end": time.monotonic(),
        "start": start,
    }


class _HttpxSender:
    def __init__(self, client):
        self.client = client

    async def post(self, path: str, body: dict[str, Any]) -> int:
        import httpx

        try:
            return (await self.client.post(path, json=body)).status_code
        except httpx.HTTPError as e:
            raise OSError(str(e)) from e

    async def close(self) -> None:
        await self.client.aclose()


async def _httpx_sender(base: str, host: str, port: int, connections: int) -> _HttpxSender:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    client = httpx.AsyncClient(base_url=base, limits=limits, headers=headers, timeout=30)
    # open the connections before the clock starts
    await asyncio.gather(*(client.get("/healthz") for _ in range(connections)))
    return _HttpxSender(client)


class _RawSender:
    """HTTP/1.1 on keep-alive connections, written by hand: ~0.1 ms of CPU per request where
    httpx takes ~1.6 ms, so the figures are the server's, not the load generator's."""

    def __init__(self, conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]):
        self.idle: asyncio.Queue = asyncio.Queue()
        self.conns = conns
        for c in conns:
            self.idle.put_nowait(c)

    async def post(self, path: str, body: dict[str, Any]) -> int:
        reader, writer = await self.idle.get()
        raw = json.dumps(body).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
            + raw
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self.idle.put_nowait((reader, writer))
        return int(head.split(b" ", 2)[1])

    async def close(self) -> None:
        for _, writer in self.conns:
            writer.close()


async def _raw_sender(base: str, host: str, port: int, connections: int) -> _RawSender:
    conns = [await asyncio.open_connection(host, port) for _ in range(connections)]
    return _RawSender(conns)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(
    base: str, plan: Plan, rate: float, seconds: float, args: argparse.Namespace
) -> dict[str, Any]:
    """One phase at `rate`, its load spread over `--client-processes` processes."""
    server_cpu = cpu_seconds(args.server_pid)
    parts = args.client_processes
    per_process = max(1, args.connections // parts)
    if parts == 1:
        loads = [asyncio.run(load(base, plan, rate, seconds, per_process, args.client))]
    else:
        start_at = time.monotonic() + 1.5  # every process imports and connects by then
        spec = {
            "base": base,
            "plan": [plan.run, plan.n_cases, plan.offset],
            "rate": rate,
            "seconds": seconds,
            "connections": per_process,
            "client": args.client,
            "parts": parts,
            "start_at": start_at,
        }
        command = [sys.executable, __file__, "--internal", "load", "--spec"]
        procs = [
            subprocess.Popen([*command, json.dumps(spec | {"part": k})], stdout=subprocess.PIPE)
            for k in range(parts)
        ]
        loads = [json.loads(p.communicate()[0]) for p in procs]
    latencies = sorted(x * 1000 for one in loads for x in one["latency"])
    ok = [i for one in loads for i, s in zip(one["index"], one["status"], strict=True) if s == 200]
    n = len(latencies)
    elapsed = max(one["end"] for one in loads) - min(one["start"] for one in loads)
    return {
        "rate": rate,
        "seconds": seconds,
        "sent": n,
        "ok": len(ok),
        "errors": n - len(ok),
        "achieved_per_s": round(n / elapsed, 1),
        "p50_ms": round(pct(latencies, 50), 2),
        "p90_ms": round(pct(latencies, 90), 2),
        "p99_ms": round(pct(latencies, 99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "client_lag_max_ms": round(max(one["lag_max"] for one in loads) * 1000, 1),
        "client_cpu_ms_per_request": round(sum(one["cpu_s"] for one in loads) / n * 1000, 3),
        # the server process's CPU per request (its database's own CPU aside): what it costs
        # whatever else the machine runs; one core serves about 1000 / this many per second
        "server_cpu_ms_per_request": round(
            (cpu_seconds(args.server_pid) - server_cpu) / n * 1000, 3
        ),
        "_ok": ok,
    }


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def machine() -> dict[str, Any]:
    import sqlite3

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "phase",
        "rate/s",
        "sent",
        "errors",
        "achieved/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server CPU ms/req",
    )
    lines = [head] + [
        (
            r["phase"],
            f"{r['rate']:g}",
            str(r["sent"]),
            str(r["errors"]),
            f"{r['achieved_per_s']:g}",
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['max_ms']:.1f}",
            f"{r['server_cpu_ms_per_request']:.2f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if j else cell.ljust(w)
            for j, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="main run length (60)")
    parser.add_argument("--rate", type=float, default=500, help="events per second (500)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--cases", type=int, default=2000, help="cases in the database")
    parser.add_argument("--database-url", "--database", dest="database_url")
    parser.add_argument("--ramp", default="100,200,300,400,500,750,1000,1500,2000,3000")
    parser.add_argument("--ramp-seconds", type=float, default=10, help="per ramp step (10)")
    parser.add_argument("--no-ramp", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--client",
        choices=["httpx", "raw"],
        default="httpx",
        help="httpx (default) or raw: hand-written HTTP/1.1, to take the client's cost out",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=2,
        help="load generator processes (2: httpx costs ~1.7 ms of CPU per request)",
    )
    parser.add_argument("--internal", choices=["serve", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile-server", type=Path, help="write a cProfile dump of the server process here"
    )
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.internal == "serve":
        serve(args)
        return 0
    if args.internal == "load":
        spec = json.loads(args.spec)
        plan = Plan(*spec.pop("plan"))
        base = spec.pop("base")
        print(json.dumps(asyncio.run(load(base, plan, **spec))))
        return 0

    pg = bool(args.database_url) and args.database_url.startswith("postgresql")
    out = args.out or HERE / "results" / ("api-postgresql.json" if pg else "api.json")
    tmp = Path(tempfile.mkdtemp(prefix="watchdog-bench-api-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}" if pg else None
    url = with_schema(args.database_url, schema) if pg else f"sqlite:///{tmp / 'watchdog.db'}"
    config = tmp / "config.yaml"
    config.write_text(config_text(url), encoding="utf-8")
    setup(url, config, args.cases, args.database_url, schema)
    command = [sys.executable, __file__, "--internal", "serve", "--config", str(config)]
    if args.profile_server:
        command += ["--profile-server", str(args.profile_server)]
    server = subprocess.Popen(
        [*command, "--database-url", url],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline().split()
        if not line or line[0] != "LISTENING":
            raise SystemExit("the server did not start")
        base = f"http://{line[1]}:{line[2]}"
        args.server_pid = server.pid
        rows: list[dict[str, Any]] = []
        # warm-up, not counted: connections, caches, the first batches
        # (its events are older than the measured ones, so they never hide their effect)
        warm = run_phase(base, Plan("warm", args.cases, -1_000_000), 100, 3, args)
        warm.pop("_ok")
        load_before = os.getloadavg()
        main_plan = Plan("main", args.cases, 0)
        result = run_phase(base, main_plan, args.rate, args.seconds, args)
        result["phase"] = "sustained"
        rows.append(result)
        print(table(rows), file=sys.stderr, flush=True)
        check = verify(url, main_plan, result.pop("_ok"))
        ramp: list[dict[str, Any]] = []
        highest = None
        if not args.no_ramp:
            offset = int(args.rate * args.seconds) + 1
            for rate in (float(r) for r in args.ramp.split(",")):
                plan = Plan(f"ramp{rate:g}", args.cases, offset)
                step = run_phase(base, plan, rate, args.ramp_seconds, args)
                offset += step["sent"] + 1
                step.pop("_ok")
                step["phase"] = "ramp"
                ramp.append(step)
                rows.append(step)
                print(table(rows[-1:]), file=sys.stderr, flush=True)
                held = (
                    step["p99_ms"] <= P99_LIMIT_MS
                    and step["errors"] == 0
                    and step["achieved_per_s"] >= 0.95 * rate
                )
                if not held:
                    break
                highest = rate
    finally:
        server.terminate()
        server.wait(10)
        if schema:
            drop(args.database_url, schema)
    report = {
        "benchmark": "api",
        "when": datetime.now(VN).isoformat(timespec="seconds"),
        "database": "postgresql+psycopg" if pg else "sqlite",
        "cases": args.cases,
        "connections": args.connections,
        "target": {"rate_per_s": args.rate, "p99_ms": P99_LIMIT_MS},
        "sustained": result,
        "verify": check,
        "target_met": (
            result["errors"] == 0
            and check["missing"] == 0
            and check["cases_wrong"] == 0
            and result["p99_ms"] <= P99_LIMIT_MS
            and result["achieved_per_s"] >= 0.95 * args.rate
        ),
        "ramp": ramp,
        "highest_rate_p99_under_200ms": highest,
        "client": args.client,
        "client_processes": args.client_processes,
        "warm_up": warm,
        # 1-minute load averages before the main phase and at the end: the machine is shared
        "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "machine": machine(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(rows))
    print(
        f"verify: {check['checked']} events answered 200, {check['missing']} missing, "
        f"{check['cases_wrong']} cases not at their latest event; "
        f"highest rate with p99 <= {P99_LIMIT_MS:g} ms: {highest}; written to {out}"
    )
    return 0 if report["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
