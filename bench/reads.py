"""How fast the reads answer on a large database: the board, one unit's overdue list, the
report of a year, `simulate` over a week, and dashboard pages (issue 8, "reads that scale").

Builds the country of bench/engine.py (500 units, 2,000 procedures, 20,000 officials) with
`--cases` cases (default 1,000,000) received over the year before NOW: those whose time has
come are finished (most on time, some late), the rest open (5% of them waiting for the
applicant). Every case is planned once, as a running daemon would have done. Then each read
runs as a user runs it, a command in its own process, timed from start to exit, with its peak
resident memory (`wait4`):

    target at 1,000,000 cases on SQLite        command
    first board page < 1 s                     watchdog cases --limit 50
    one unit's overdue list < 1 s              watchdog cases --unit U123 --state overdue
    report for a year < 10 s, < 500 MB         watchdog report --from 2026-01-01 --to ...
    simulate a week < 120 s, < 1 GB            watchdog simulate --from NOW --to NOW+7d
    a dashboard page < 300 ms                  GET / and /units/U123 of `watchdog run`

    .venv/bin/python bench/reads.py [--cases 1000000] [--keep DIR] [--only NAME ...]

Each command runs three times (simulate and the jsonl listing once) and the median counts; the
first run, which may find the database out of the page cache, is recorded too. The configuration
(20,000 officials) costs ~2 s to parse the first time, then comes from the parse cache.
`--keep DIR` builds the database in DIR and reuses it on the next run. Results go to
bench/results/reads.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import AGENCIES, NOW, OFFICIALS, UNITS, limit_days, write_config  # noqa: E402

UNIT = "U123"
LONG = {"simulate_week", "cases_jsonl_all_open"}  # run once
PASSWORD = "mật-khẩu-bench-2026"


def load_year(store, n: int, limits: dict[str, float]) -> None:
    """`n` cases received over the year before NOW; finished when their time has come."""
    from watchdog.store import schema

    rng = random.Random(3)
    leaf_officials = list(range(AGENCIES, OFFICIALS))
    chunk: list[dict] = []
    for i in range(n):
        official = rng.choice(leaf_officials)
        unit = f"U{AGENCIES + official % (UNITS - AGENCIES)}"
        procedure = f"P{rng.randrange(PROCEDURES)}"
        received = NOW - timedelta(seconds=rng.uniform(0, 365 * 86400))
        days = limits[procedure]
        took = days * (rng.uniform(0.2, 0.98) if rng.random() < 0.9 else rng.uniform(1.02, 1.8))
        finished = received + timedelta(days=took)
        row = {
            "case_code": f"Y{i:08d}",
            "procedure_code": procedure,
            "unit_code": unit,
            "received_at": received,
            "assignee": f"o{official}",
            "submission_channel": "online",
            "source": "bench",
            "created_at": NOW,
            "updated_at": NOW,
        }
        if finished <= NOW:
            row |= {"status": 10, "finished_at": finished, "source_updated_at": finished}
        else:
            row |= {
                "status": 5 if rng.random() < 0.05 else 4,
                "finished_at": None,
                "source_updated_at": max(received, NOW - timedelta(hours=rng.randint(0, 48))),
            }
        chunk.append(row)
        if len(chunk) == 20_000 or i == n - 1:
            with store.begin() as conn:
                conn.execute(schema.cases.insert(), chunk)
            chunk = []


PROCEDURES = 2000


def prepare(n: int, folder: Path) -> Path:
    from sqlalchemy import text

    from watchdog.config import load_settings
    from watchdog.engine.rules import load_rules
    from watchdog.engine.runner import Engine
    from watchdog.store import Store

    config = write_config(folder, f"sqlite:///{folder / 'reads.db'}")
    settings = load_settings(config, env={})
    store = Store.open(settings.database_url, migrate=False)
    store.upgrade()
    started = time.monotonic()
    load_year(store, n, limit_days(settings))
    with store.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"loaded {n:,} cases in {time.monotonic() - started:.0f} s", file=sys.stderr)
    started = time.monotonic()
    with Engine(store, settings, load_rules(settings, env={}), workers=2) as engine:
        report = engine.replan_all(NOW)
    print(
        f"planned {report.evaluated:,} cases in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    store.close()
    return config


# Runs each timed command and reports its figures. It is started before this script builds
# anything: a child's peak resident memory (`wait4`) counts the pages its parent had when it
# forked (vfork: the parent's whole peak), so the commands are started from this small process,
# not from the bench after it loaded and planned a million cases (183 MB then, whatever the
# command used).
_LAUNCHER = """
import base64, json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    started = time.monotonic()
    proc = subprocess.Popen(
        job["argv"], cwd=job["cwd"], env=job["env"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    print(json.dumps([seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status),
                      base64.b64encode(out).decode()]), flush=True)
"""


class Launcher:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def timed(self, argv: list[str], cwd: Path) -> tuple[float, float, int, bytes]:
        """(seconds, peak resident MB, exit status, stdout) of one command in its own process."""
        job = {"argv": argv, "cwd": str(cwd), "env": _env()}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        seconds, rss, status, out = json.loads(self.proc.stdout.readline())
        return seconds, rss, status, base64.b64decode(out)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def _env() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(ROOT), "WATCHDOG_LANG": "vi"}


def commands(config: Path) -> dict[str, tuple[list[str], str]]:
    w = [sys.executable, "-m", "watchdog", "--config", str(config)]
    now = NOW.isoformat()
    week = (NOW + timedelta(days=7)).isoformat()
    year = [*w, "report", "--from", "2025-11-18", "--to", "2026-11-17", "--as-of", now]
    return {
        "board_first_page": ([*w, "cases", "--limit", "50", "--now", now], "< 1 s"),
        "unit_overdue": (
            [*w, "cases", "--unit", UNIT, "--state", "overdue", "--now", now],
            "< 1 s",
        ),
        "report_year": (
            year,
            "< 10 s, < 500 MB",
        ),
        "report_year_by_official": (
            [*year, "--by", "official", "--format", "csv"],
            "",
        ),
        "simulate_week": ([*w, "simulate", "--from", now, "--to", week], "< 120 s, < 1 GB"),
        "cases_jsonl_all_open": ([*w, "cases", "--format", "jsonl", "--now", now], ""),
    }


def in_process(config: Path) -> dict[str, dict]:
    """The reads alone, in this process, the configuration loaded once: what a command costs
    beyond starting Python and parsing the configuration (2-3 s for the bench's 20,000
    officials and 2,000 procedures in YAML, whatever the number of cases)."""
    from datetime import date

    from watchdog.config import load_settings
    from watchdog.reports.board import board
    from watchdog.reports.ontime import build_report
    from watchdog.store import Store

    started = time.monotonic()
    settings = load_settings(config)
    loaded = time.monotonic() - started
    store = Store.open(settings.database_url, migrate=False)
    reads = {
        "board_first_page": lambda: board(store, settings, NOW, limit=50),
        "unit_overdue": lambda: board(store, settings, NOW, unit=UNIT, state="overdue"),
        "report_year": lambda: build_report(
            store, settings, date(2025, 11, 18), date(2026, 11, 17), as_of=NOW, now=NOW
        ),
    }
    out = {"load_configuration": {"seconds": round(loaded, 2)}}
    for name, read in reads.items():
        times = []
        for _ in range(3):
            t = time.monotonic()
            read()
            times.append(time.monotonic() - t)
        out[name] = {"seconds": round(sorted(times)[1], 3)}  # the median of three
    store.close()
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dashboard(config: Path, folder: Path) -> dict[str, dict]:
    """Times of dashboard pages served by `watchdog run` to a signed-in supervisor."""
    import httpx

    w = [sys.executable, "-m", "watchdog", "--config", str(config)]
    subprocess.run(
        [*w, "users", "add", "bench-giamsat", "--role", "supervisor", "--password-stdin"],
        input=(PASSWORD + "\n").encode(),
        cwd=folder,
        env=_env(),
        capture_output=True,
    )
    port = free_port()
    cfg = folder / "config-http.yaml"
    cfg.write_text(config.read_text() + f"http: {{listen: '127.0.0.1:{port}'}}\n")
    log = folder / "daemon.log"
    proc = subprocess.Popen(
        [*w[:-1], str(cfg), "run", "--now", NOW.isoformat()],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        env=_env(),
    )
    pages = {"dashboard_board": "/", "dashboard_unit": f"/units/{UNIT}"}
    out: dict[str, dict] = {}
    try:
        started = time.monotonic()
        while "watchdog running" not in log.read_text():
            if proc.poll() is not None or time.monotonic() - started > 600:
                raise SystemExit(f"the daemon did not start:\n{log.read_text()}")
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as client:
            form = client.get("/login")
            token = _csrf(form.text)
            client.post(
                "/login",
                data={"login": "bench-giamsat", "password": PASSWORD, "csrf": token},
                headers={"Origin": base},
            )
            for name, path in pages.items():
                times = []
                for _ in range(6):
                    t = time.monotonic()
                    r = client.get(path)
                    times.append(time.monotonic() - t)
                    if r.status_code != 200:
                        raise SystemExit(f"GET {path}: {r.status_code}\n{r.text[:500]}")
                times = sorted(times[1:])  # the first warms the caches
                out[name] = {
                    "target": "< 300 ms",
                    "median_ms": round(1000 * times[len(times) // 2], 1),
                    "max_ms": round(1000 * times[-1], 1),
                }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def _csrf(html: str) -> str:
    import re

    m = re.search(r'name="csrf"\s+value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"\s+name="csrf"', html
    )
    return m.group(1) if m else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--keep", metavar="DIR", help="build the database in DIR and reuse it")
    p.add_argument("--only", nargs="*", help="run only these measures")
    args = p.parse_args()
    launcher = Launcher()  # first, while this process is small (see _LAUNCHER)

    if args.keep and (Path(args.keep) / "reads.db").exists():
        folder = Path(args.keep)
        config = folder / "config.yaml"
        print(f"reusing {folder / 'reads.db'}", file=sys.stderr)
    else:
        folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="watchdog-"))
        folder.mkdir(parents=True, exist_ok=True)
        config = prepare(args.cases, folder)

    results: dict[str, dict] = {}
    for name, (argv, target) in commands(config).items():
        if args.only and name not in args.only:
            continue
        # the first run may find the database out of the page cache; the median of three
        # (one run for the long ones) is the figure
        runs = [launcher.timed(argv, folder) for _ in range(1 if name in LONG else 3)]
        seconds, rss, status, out = sorted(runs)[len(runs) // 2]
        results[name] = {
            "target": target,
            "seconds": round(seconds, 2),
            "first_run_seconds": round(runs[0][0], 2),
            "peak_rss_mb": round(max(r[1] for r in runs), 1),
            "exit_status": status,
            "output_lines": out.count(b"\n"),
        }
        print(f"{name}: {seconds:.2f} s (first {runs[0][0]:.2f} s), {rss:.0f} MB", file=sys.stderr)
    launcher.close()
    if not args.only or any(n.startswith("dashboard") for n in args.only):
        results |= dashboard(config, folder)
    alone = in_process(config) if not args.only or "in_process" in args.only else {}

    print(
        f"{'measure':<26} {'target':>18} {'seconds':>9} {'peak MB':>8} {'lines':>8}  (median of 3)"
    )
    for name, r in results.items():
        if "seconds" in r:
            row = (r["target"], r["seconds"], r["peak_rss_mb"], r["output_lines"])
        else:
            row = (r["target"], f"{r['median_ms'] / 1000:.3f}", "", "")
        print(f"{name:<26} {row[0]:>18} {row[1]!s:>9} {row[2]!s:>8} {row[3]!s:>8}")
    if alone:
        print("\nin this process, the configuration loaded once (median of 3):")
        for name, r in alone.items():
            print(f"  {name:<24} {r['seconds']:>8} s")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    summary = {
        "cases": args.cases,
        "database": "sqlite",
        "load_average": os.getloadavg(),
        "results": results,
        "in_process": alone,
    }
    (out_dir / "reads.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
