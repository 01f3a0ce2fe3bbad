"""The morning digests on a country-sized province: what one run reads and costs.

    .venv/bin/python bench/digests.py [--cases 1000000] [--keep DIR]

Builds the country of bench/engine.py (500 units with their heads, 2,000 procedures, 20,000
officials, N open cases: 5% past their limit, 5% waiting), plans it once as a running daemon
would have, then times one run of the shipped digests at 07:31 on the bench's Wednesday: the
unit heads' 07:30 digest for each of the 500 heads (the supervisors' is on Mondays). Each
digest reads the cases its sections can list through the board's indexes (docs/delivery.md).
Prints a table and writes bench/results/digests.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from engine import NOW, limit_days, load_cases, peak_rss, reset_peak_rss, write_config  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--keep", metavar="DIR", help="build the database in DIR and reuse it")
    args = p.parse_args()

    from sqlalchemy import text

    from watchdog.config import load_settings
    from watchdog.engine.rules import load_rules
    from watchdog.engine.runner import Engine
    from watchdog.outbox.digests import send_due_digests
    from watchdog.outbox.wiring import renderer_for
    from watchdog.store import Store

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="watchdog-"))
    folder.mkdir(parents=True, exist_ok=True)
    fresh = not (folder / "digests.db").exists()
    settings = load_settings(write_config(folder, f"sqlite:///{folder / 'digests.db'}"), env={})
    rules = load_rules(settings, env={})
    store = Store.open(settings.database_url, migrate=False)
    store.upgrade()
    if fresh:
        load_cases(store, args.cases, limit_days(settings))
        with store.begin() as conn:
            conn.execute(text("ANALYZE"))
        with Engine(store, settings, rules, workers=2) as engine:
            engine.replan_all(NOW)
    # 07:31 on the bench's Wednesday, Hà Nội time: the unit heads' 07:30 digest is due
    at = NOW.astimezone(settings.default_calendar.tz).replace(hour=7, minute=31, second=0)
    with store.begin() as conn:  # a run of an earlier bench on a kept database: write again
        conn.exec_driver_sql("DELETE FROM messages WHERE kind = 'digest'")
    reset_peak_rss()  # the run's own peak, not the loading's
    started, cpu = time.perf_counter(), time.process_time()
    report = send_due_digests(store, settings, rules, renderer_for(settings), at)
    result = {
        "cases": args.cases,
        "database": store.dialect,
        "digests_written": report.written,
        "digests_empty": report.empty,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "peak_rss_mb": round(peak_rss()),
        "at": at.isoformat(),
    }
    store.close()
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "digests.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
