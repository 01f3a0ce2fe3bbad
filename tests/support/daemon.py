"""Running `watchdog run` as users do, in a subprocess, against peers the test owns: a province
of officials who each have one overdue case (so each gets exactly one e-mail), and an SMTP sink
on loopback in a thread of its own."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from tests.support.smtp import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
NOW = "16/11/2026 10:00"  # Monday: every case below is overdue (due 13/11 or earlier)


class ThreadedSmtp:
    """The loopback aiosmtpd sink of tests/support/smtp.py, served from its own thread."""

    def __init__(self, data_delay: float = 0.0):
        self.loop = asyncio.new_event_loop()
        self.server = SmtpServer(data_delay=data_delay)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedSmtp:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    @property
    def port(self) -> int:
        return self.server.port

    def ids(self) -> Counter[str]:
        """X-Watchdog-Id of every message received, with how often."""
        return Counter(r.message()["X-Watchdog-Id"] for r in list(self.server.received))

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ids()) < n:
            assert time.monotonic() < deadline, f"{len(self.ids())} of {n} messages arrived"
            time.sleep(0.05)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def province(
    folder: Path,
    *,
    officials: int,
    database: str,
    smtp_port: int,
    http_port: int | None = None,
    extra: str = "",
) -> Path:
    """A config with `officials` officials in one unit, one overdue case each."""
    lines = [
        f'database: {{url: "{database}"}}',
        "units:",
        "  - {code: U, name: Phòng Một cửa, heads: [truong]}",
        "officials:",
        "  - {id: truong, name: Trưởng Phòng, unit: U}",
    ]
    for i in range(officials):
        lines.append(f"  - {{id: cb{i}, name: Cán bộ {i}, unit: U, email: cb{i}@example.vn}}")
    lines += [
        "procedures:",
        "  - {code: '1.000001', name: Thủ tục thử, limit: 2 working_days}",
        "rules: [rules.yaml]",
        "channels:",
        f"  email: {{host: 127.0.0.1, port: {smtp_port}, tls: none, from: wd@example.vn,"
        " timeout: 5s}",
        "delivery: {quiet_hours: false, group_window: 1s, backoff: 1s, lease: 4s}",
        f"http: {{listen: '127.0.0.1:{http_port}'}}" if http_port else "http: {listen: ''}",
        extra,
    ]
    config = folder / "config.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "rules.yaml").write_text(
        "policies:\n  - name: p\n    stages:\n"
        "      - {id: overdue, when: {overdue: '0 working_days'}, notify: [assignee],"
        " channels: [email]}\n",
        encoding="utf-8",
    )
    rows = ["case_code,procedure_code,unit_code,received_at,status,assignee"]
    rows += [f"HS-{i:04d},1.000001,U,10/11/2026 09:00,4,cb{i}" for i in range(officials)]
    (folder / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return config


def watchdog(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "watchdog", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_CONFIG", "WATCHDOG_LANG")}
    env["PYTHONPATH"] = str(ROOT)
    return env


class Daemon:
    """`watchdog run` in a subprocess; its log goes to a file the test can read."""

    def __init__(self, config: Path, name: str = "daemon", now: str = NOW):
        self.log = config.parent / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "--config", str(config), "run", "--now", now],
            cwd=config.parent,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w", encoding="utf-8"),
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")

    def wait_log(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None or needle in self.text(), self.text()
            assert time.monotonic() < deadline, f"{needle!r} not in log:\n{self.text()}"
            time.sleep(0.05)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
