"""Engine benchmark: a country-sized synthetic province, planned and ticked.

    .venv/bin/python bench/engine.py --cases 1000000 [--database URL]

Builds 500 units, 2,000 procedures and 20,000 officials, loads N open cases straight into a
fresh database (SQLite file in a temp folder by default; for PostgreSQL a schema of its own,
dropped afterwards), then measures with the shipped default rules:

- plan_s        every open case planned from scratch (as after a rules change): all evaluated,
                firings and next_check_at written
- plan_cpu_*    CPU time the plan took in this process and in the worker processes (their
                start included): on a machine busy with other work the wall time grows, these
                much less; (main + workers) / cores is the plan's wall time on idle cores
- idle_tick_ms  a tick when nothing is due (median of 20)
- naive_tick_ms one full scan evaluating every open case, as an engine without next_check_at
                would have to on every tick (no writes)
- due_tick_s    a tick with `due_cases` cases due (10,000 random cases whose instant has come)
- peak_rss_mb   peak resident memory of this process over the whole run (loading included)
- plan_rss_*    peak resident memory during the plan: this process, each worker process (read
                from /proc: getrusage's figure for children counts the parent's pages a child
                had before its exec), and the total of this process and all its children

The engine's worker processes are spawned: they import this script's module-level code, so
everything heavy is imported inside the functions, as the `watchdog` command does.

Prints a table and writes bench/results/engine.json (and engine-<database>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


UNITS, AGENCIES, PROCEDURES, OFFICIALS = 500, 50, 2000, 20_000
NOW = datetime(2026, 11, 18, 2, 30, tzinfo=UTC)  # Wednesday 09:30 in Hà Nội


def write_config(folder: Path, database_url: str) -> Path:
    rng = random.Random(1)
    lines = [f'database: {{url: "{database_url}"}}', "channels: {file: {dir: out}}", "units:"]
    lines.append("  - {code: ROOT, name: Quốc gia, heads: [o0]}")
    for a in range(1, AGENCIES):
        lines.append(f"  - {{code: A{a}, name: Cơ quan {a}, parent: ROOT, heads: [o{a}]}}")
    for u in range(AGENCIES, UNITS):
        lines.append(
            f"  - {{code: U{u}, name: Đơn vị {u}, parent: A{1 + u % (AGENCIES - 1)}, "
            f"heads: [o{u}]}}"
        )
    lines.append("officials:")
    for o in range(OFFICIALS):
        unit = (
            "ROOT"
            if o == 0
            else (f"A{o}" if o < AGENCIES else f"U{AGENCIES + o % (UNITS - AGENCIES)}")
        )
        lines.append(f"  - {{id: o{o}, name: Cán bộ {o}, unit: {unit}, email: o{o}@example.vn}}")
    lines.append("supervisors: [o0]")
    lines.append("procedures:")
    for p in range(PROCEDURES):
        kind = rng.random()
        limit = (
            f"{rng.randint(4, 16)} working_hours"
            if kind < 0.05
            else f"{rng.randint(15, 45)} calendar_days"
            if kind < 0.15
            else f"{rng.randint(3, 40)} working_days"
        )
        lines.append(f'  - {{code: "P{p}", name: Thủ tục {p}, limit: {limit}}}')
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def limit_days(settings) -> dict[str, float]:
    """Each procedure's limit in calendar days, roughly (5 working days ~ 7 calendar days)."""
    out = {}
    for p in settings.config.procedures:
        unit = p.limit.unit.value
        days = p.limit.amount / 8 if unit == "working_hours" else p.limit.amount
        out[p.code] = days if unit == "calendar_days" else days * 1.4
    return out


def load_cases(store, n: int, limits: dict[str, float]) -> None:
    """A realistic spread: 95% of open cases inside their limit, 5% past it."""
    from watchdog.store import schema

    rng = random.Random(2)
    leaf_officials = list(range(AGENCIES, OFFICIALS))
    chunk: list[dict] = []
    c = schema.cases
    for i in range(n):
        official = rng.choice(leaf_officials)
        unit = f"U{AGENCIES + official % (UNITS - AGENCIES)}"
        procedure = f"P{rng.randrange(PROCEDURES)}"
        share = rng.uniform(0, 0.95) if rng.random() < 0.95 else rng.uniform(1.0, 1.6)
        received = NOW - timedelta(days=limits[procedure] * share)
        chunk.append(
            {
                "case_code": f"C{i:08d}",
                "procedure_code": procedure,
                "unit_code": unit,
                "received_at": received,
                "status": 5 if rng.random() < 0.05 else 4,
                "assignee": f"o{official}",
                "submission_channel": "online",
                "source": "bench",
                "source_updated_at": max(
                    received, NOW - timedelta(seconds=rng.randint(0, 2 * 86400))
                ),
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        if len(chunk) == 20_000 or i == n - 1:
            with store.begin() as conn:
                conn.execute(c.insert(), chunk)
            chunk = []


def rss_mb() -> float:
    """Peak resident memory of this process in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss(pid: int | str = "self") -> float:
    """Peak resident memory of a process in MB (VmHWM), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss() -> None:
    """Start this process's peak (VmHWM) again from its current size (Linux)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def children() -> dict[int, str]:
    """This process's child processes: pid -> "worker" (the engine's) or what else it runs."""
    me, out = os.getpid(), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            out[int(entry)] = "worker" if "spawn_main" in cmd else "other"
    return out


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def naive_scan(store, engine) -> int:
    """What a tick costs without next_check_at: read and evaluate every open case."""
    from watchdog.engine.evaluate import evaluate
    from watchdog.store.cases import open_cases
    from watchdog.store.firings import fired_so_far

    count = 0
    batch: list = []

    def flush() -> None:
        fired = fired_so_far(store, [r.id for r, _ in batch])
        for record, events in batch:
            stages = engine.rules.stages_for(
                engine.settings, record.procedure_code, record.unit_code, record.submission_channel
            )
            known = fired.get(record.id, {})
            evaluate(record, events, stages, engine.settings, known, NOW)
        batch.clear()

    for facts in open_cases(store):
        batch.append(facts)
        count += 1
        if len(batch) == 5000:
            flush()
    flush()
    return count


def run(n: int, database: str | None, due_cases: int, workers: int) -> dict:
    from sqlalchemy import create_engine, func, select, text, update

    from watchdog.config import load_settings
    from watchdog.engine.rules import load_rules
    from watchdog.engine.runner import Engine
    from watchdog.store import Store, schema

    tmp = Path(tempfile.mkdtemp(prefix="watchdog-bench-"))
    pg_schema = None
    if database and database.startswith("postgresql"):
        pg_schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(database).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{pg_schema}"'))
        sep = "&" if "?" in database else "?"
        url = f"{database}{sep}options={quote(f'-csearch_path={pg_schema}')}"
    else:
        url = database or f"sqlite:///{tmp / 'bench.db'}"
    try:
        settings = load_settings(write_config(tmp, url), env={})
        rules = load_rules(settings, env={})
        store = Store.open(settings.database_url, migrate=False)
        store.upgrade()
        insert_s, _ = timed(lambda: load_cases(store, n, limit_days(settings)))
        with store.begin() as conn:  # a live database has statistics (autovacuum); give them
            conn.execute(text("ANALYZE"))
        engine = Engine(store, settings, rules, batch_size=2000, workers=workers)

        reset_peak_rss()
        cpu_before = time.process_time()
        plan_s, planned = timed(lambda: engine.replan_all(NOW).evaluated)
        plan_cpu = time.process_time() - cpu_before
        plan_main = peak_rss()
        plan_children = {pid: (role, peak_rss(pid)) for pid, role in children().items()}
        plan_cpu_workers = sum(cpu_s(pid) for pid, role in children().items() if role == "worker")
        with store.engine.connect() as conn:
            plan_firings = conn.execute(select(func.count()).select_from(schema.firings)).scalar()
        idle = [timed(lambda: engine.tick(NOW))[0] * 1000 for _ in range(20)]
        naive_s, scanned = timed(lambda: naive_scan(store, engine))
        with store.engine.connect() as conn:
            ids = (
                conn.execute(select(schema.cases.c.id).where(schema.cases.c.status == 4))
                .scalars()
                .all()
            )
        chosen = random.Random(3).sample(ids, min(due_cases, len(ids)))
        with store.begin() as conn:
            for i in range(0, len(chosen), 900):
                conn.execute(
                    update(schema.cases)
                    .where(schema.cases.c.id.in_(chosen[i : i + 900]))
                    .values(next_check_at=NOW)
                )
        due_s, due_report = timed(lambda: engine.tick(NOW))
        workers_peak = [peak_rss(pid) for pid, role in children().items() if role == "worker"]
        engine.close()
        store.close()
        return {
            "database": store.dialect,
            "cases": n,
            "workers": workers,
            "insert_s": round(insert_s, 2),
            "plan_s": round(plan_s, 2),
            "plan_cpu_main_s": round(plan_cpu, 2),
            "plan_cpu_workers_s": round(plan_cpu_workers, 2),
            "planned_cases": planned,
            "plan_firings": plan_firings,
            "idle_tick_ms": round(statistics.median(idle), 3),
            "naive_tick_ms": round(naive_s * 1000, 1),
            "naive_scanned": scanned,
            "idle_speedup": round(naive_s * 1000 / max(statistics.median(idle), 1e-6)),
            "due_cases": due_report.evaluated,
            "due_tick_s": round(due_s, 3),
            "peak_rss_mb": round(rss_mb(), 1),
            "peak_rss_worker_mb": round(max(workers_peak, default=0.0), 1),
            "plan_rss_main_mb": round(plan_main, 1),
            "plan_rss_workers_mb": [
                round(mb, 1) for role, mb in plan_children.values() if role == "worker"
            ],
            "plan_rss_total_mb": round(plan_main + sum(mb for _, mb in plan_children.values()), 1),
        }
    finally:
        if pg_schema and database:
            with create_engine(database).begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{pg_schema}" CASCADE'))
        shutil.rmtree(tmp, ignore_errors=True)  # a million cases leave 400 MB of SQLite


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=100_000)
    p.add_argument("--database", help="database URL (default: a temporary SQLite file)")
    p.add_argument("--due-cases", type=int, default=10_000)
    p.add_argument("--workers", type=int, default=2, help="evaluation processes (0 = inline)")
    args = p.parse_args()
    result = run(args.cases, args.database, args.due_cases, args.workers)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    text_ = json.dumps(result, indent=2) + "\n"
    (out / "engine.json").write_text(text_, encoding="utf-8")
    (out / f"engine-{result['database']}.json").write_text(text_, encoding="utf-8")


if __name__ == "__main__":
    main()
