"""Benchmark of start-up: how long `watchdog --help` and `watchdog due` take to answer.

    .venv/bin/python bench/startup.py [--runs 15] [--label after]

Each command runs `--runs` times as a subprocess, through the `watchdog` console script next
to this interpreter (as a user types it), and the table gives the median and the fastest wall
time. A bare `python -c pass` is the floor no command can go under. A second pass runs each
command once more with `python -X importtime` and sums the import time it reports, naming the
heavy libraries that were imported (pydantic, sqlalchemy, holidays, yaml): a command that does
not need them should not pay for them.

Target (issue 11, item 7): `--help` and `due` answer in under 300 ms. Results go to stdout as a
table and to bench/results/startup.json (one entry per `--label`, so before/after sit side by
side).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "startup.json"
TARGET_MS = 300
HEAVY = ("pydantic", "sqlalchemy", "holidays", "yaml", "openpyxl", "jinja2")

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [],
    "watchdog --help": ["--help"],
    "watchdog due (no config)": [
        "due",
        "--received",
        "13/02/2026 09:00",
        "--working-days",
        "3",
    ],
    "watchdog due --procedure (config)": [
        "--config",
        str(ROOT / "config.example.yaml"),
        "due",
        "--received",
        "20/11/2026 14:00",
        "--procedure",
        "2.000488",
    ],
}


def argv_of(name: str, args: list[str]) -> list[str]:
    if name.startswith("python"):
        return [sys.executable, "-c", "pass"]
    script = Path(sys.executable).with_name("watchdog")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "watchdog", *args]


def wall_ms(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return elapsed


def imports(argv: list[str], env: dict[str, str]) -> tuple[float, list[str]]:
    """Total import time (ms) that `-X importtime` reports, and the heavy packages imported."""
    if argv[0] != sys.executable:  # the console script: run its module with our interpreter
        argv = [sys.executable, "-m", "watchdog", *argv[1:]]
    r = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    total_us, heavy = 0, set()
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)", line)
        if not m:
            continue
        total_us += int(m[1])
        top = m[3].split(".")[0]
        if top in HEAVY:
            heavy.add(top)
    return total_us / 1000, sorted(heavy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--label", default="current", help="name of this run in the results")
    opts = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_CONFIG", "WATCHDOG_LANG")}
    rows = []
    for name, args in COMMANDS.items():
        argv = argv_of(name, args)
        wall_ms(argv, env)  # warm the file cache
        times = [wall_ms(argv, env) for _ in range(opts.runs)]
        imported_ms, heavy = imports(argv, env)
        rows.append(
            {
                "command": name,
                "median_ms": round(statistics.median(times), 1),
                "min_ms": round(min(times), 1),
                "import_ms": round(imported_ms, 1),
                "heavy_imports": heavy,
                "under_target": statistics.median(times) < TARGET_MS,
            }
        )
    width = max(len(r["command"]) for r in rows)
    print(f"{'command':<{width}}  median ms  min ms  imports ms  heavy libraries imported")
    for r in rows:
        print(
            f"{r['command']:<{width}}  {r['median_ms']:>9.1f}  {r['min_ms']:>6.1f}  "
            f"{r['import_ms']:>10.1f}  {', '.join(r['heavy_imports']) or '-'}"
        )
    results = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    results.setdefault("benchmark", "startup")
    results.setdefault("target_ms", TARGET_MS)
    results.setdefault("runs", {})
    results["runs"][opts.label] = {
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "runs_per_command": opts.runs,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "commands": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
