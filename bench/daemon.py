"""How much `watchdog run` costs while nothing is due, on a large database.

Builds the country of bench/engine.py (500 units, 2,000 procedures, 20,000 officials) with
`--cases` open cases (default 1,000,000), plans them all once (as a daemon that has been
running would have), then starts `watchdog run` as a user does, its clock set to the first
instant after the plan from which no case falls due for the whole measure (cases come due
through the working day, none in the evening), and measures over `--seconds` (default 60):

- the daemon's CPU time (user + system, from /proc) as a share of one core (target < 2%);
- the mean duration of its ticks in that window, from its own /metrics (target < 20 ms);
- its resident memory.

    .venv/bin/python bench/daemon.py [--cases 1000000] [--seconds 60] [--database URL]
                                     [--keep DIR]

Results go to bench/results/daemon.json (daemon-postgresql.json for PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import NOW, limit_days, load_cases, write_config  # noqa: E402  (bench/engine.py)

TICKS = re.compile(r"^watchdog_tick_duration_seconds_(sum|count) (\S+)$", re.MULTILINE)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def ticks(port: int) -> tuple[float, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = dict(TICKS.findall(text))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(n: int, database: str | None, folder: Path) -> tuple[Path, str]:
    from sqlalchemy import create_engine, text

    from watchdog.config import load_settings
    from watchdog.engine.rules import load_rules
    from watchdog.engine.runner import Engine
    from watchdog.store import Store

    if database and database.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(database).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in database else "?"
        url = f"{database}{sep}options={quote(f'-csearch_path={schema}')}"
    else:
        url = database or f"sqlite:///{folder / 'bench.db'}"
    config = write_config(folder, url)
    settings = load_settings(config, env={})
    store = Store.open(settings.database_url, migrate=False)
    store.upgrade()
    started = time.monotonic()
    load_cases(store, n, limit_days(settings))
    with store.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"loaded {n:,} cases in {time.monotonic() - started:.0f} s", file=sys.stderr)
    started = time.monotonic()
    with Engine(store, settings, load_rules(settings, env={}), workers=2) as engine:
        engine.replan_all(NOW)
    print(f"planned in {time.monotonic() - started:.0f} s", file=sys.stderr)
    store.close()
    return config, url


def falling_due(url: str, start, seconds: float) -> int:
    """Open cases whose next check falls in the daemon's first `seconds` from `start`: its
    ticks in the window are not empty, each evaluates its share of these."""
    from sqlalchemy import create_engine, text

    from watchdog.store.schema import UTCDateTime

    naive = UTCDateTime().process_bind_param
    with create_engine(url).connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM cases WHERE next_check_at >= :a AND next_check_at < :b"),
            {"a": naive(start, None), "b": naive(start + timedelta(seconds=seconds), None)},
        ).scalar_one()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    p.add_argument(
        "--keep",
        metavar="DIR",
        help="build the SQLite database in DIR and keep it; a later run with the same DIR "
        "reuses it (saves the load and the plan)",
    )
    args = p.parse_args()

    if args.keep and (Path(args.keep) / "bench.db").exists():
        folder = Path(args.keep)
        config = folder / "config.yaml"
        config.write_text(config.read_text().split("http:")[0])
        url = f"sqlite:///{folder / 'bench.db'}"
        print(f"reusing {folder / 'bench.db'}", file=sys.stderr)
    else:
        folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="watchdog-bench-"))
        folder.mkdir(parents=True, exist_ok=True)
        config, url = prepare(args.cases, args.database, folder)
    # "Nothing due": the daemon's clock starts where no case falls due during the measure
    # (the bench's cases come due through the working day; in the evening none do).
    start = NOW + timedelta(minutes=1)
    while (due_in_window := falling_due(url, start, args.seconds + 90)) and start < NOW + timedelta(
        days=2
    ):
        start += timedelta(minutes=10)
    port = free_port()
    with config.open("a", encoding="utf-8") as f:
        f.write(f"http: {{listen: '127.0.0.1:{port}'}}\n")
    start_at = start.isoformat()
    log = folder / "daemon.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchdog", "--config", str(config), "run", "--now", start_at],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        started = time.monotonic()
        while "watchdog running" not in log.read_text():
            if proc.poll() is not None or time.monotonic() - started > 600:
                raise SystemExit(f"the daemon did not start:\n{log.read_text()}")
            time.sleep(0.2)
        startup_s = time.monotonic() - started
        while ticks(port)[1] < 1:  # the first tick (the minute since the plan) is done
            time.sleep(0.2)
        time.sleep(5)
        sum0, count0 = ticks(port)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        sum1, count1 = ticks(port)
        rss = rss_mb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    idle_share = 100 * (cpu1 - cpu0) / (t1 - t0)
    tick_ms = 1000 * (sum1 - sum0) / (count1 - count0) if count1 > count0 else None
    result = {
        "cases": args.cases,
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "startup_s": round(startup_s, 1),
        "idle_cpu_percent_of_one_core": round(idle_share, 2),
        "window_s": round(t1 - t0, 1),
        "ticks_in_window": int(count1 - count0),
        "idle_tick_ms": None if tick_ms is None else round(tick_ms, 2),
        "rss_mb": round(rss, 1),
        "daemon_clock_start": start_at,
        "cases_falling_due_while_measured": due_in_window,
        "exit_code_on_sigterm": exit_code,
        "load_average": os.getloadavg(),
    }
    rows = [
        ("idle CPU, % of one core", "< 2", result["idle_cpu_percent_of_one_core"]),
        ("tick with nothing due, ms", "< 20", result["idle_tick_ms"]),
        ("resident memory, MB", "", result["rss_mb"]),
        ("cases falling due while measured", "0", due_in_window),
        ("start-up (validate, sync 20k officials), s", "", result["startup_s"]),
    ]
    print(f"{'figure':<44} {'target':>8} {'measured':>10}")
    for name, target, value in rows:
        print(f"{name:<44} {target:>8} {value!s:>10}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    suffix = "-postgresql" if result["database"] == "postgresql" else ""
    (out / f"daemon{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
