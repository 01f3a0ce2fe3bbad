"""`watchdog run` as a subprocess, as users run it: kill -9 mid-delivery loses nothing and
repeats only what was in flight (recorded as attempt 2), SIGTERM exits 0 after in-flight sends,
a second daemon on one SQLite file is refused, an invalid rules reload keeps the old rules."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.support import pgcluster
from tests.support.daemon import Daemon, ThreadedSmtp, free_port, province, watchdog

pytestmark = pytest.mark.slow


def history(cwd: Path, config: Path) -> list[dict]:
    r = watchdog("--config", str(config), "history", "--format", "jsonl", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def prepared(
    tmp_path: Path,
    smtp: ThreadedSmtp,
    officials: int,
    database: str | None = None,
    http_port: int | None = None,
):
    config = province(
        tmp_path,
        officials=officials,
        database=database or f"sqlite:///{tmp_path / 'wd.db'}",
        smtp_port=smtp.port,
        http_port=http_port,
    )
    if database and not database.startswith("sqlite"):
        assert watchdog("--config", str(config), "db", "upgrade", cwd=tmp_path).returncode == 0
    r = watchdog("--config", str(config), "import", str(tmp_path / "cases.csv"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return config


def check_delivered_once(config: Path, smtp: ThreadedSmtp, expected: int) -> list[dict]:
    """Every expected message arrived; one that arrived twice was in flight when a sender
    died, and history shows it (more than one attempt, the first one expired)."""
    rows = [r for r in history(config.parent, config) if r["kind"] == "alert"]
    assert len(rows) == expected
    assert {r["status"] for r in rows} == {"sent"}
    received = smtp.ids()
    assert set(received) == {str(r["id"]) for r in rows}
    by_id = {str(r["id"]): r for r in rows}
    twice = [i for i, n in received.items() if n > 1]
    for i in twice:
        assert by_id[i]["attempts"] >= 2, by_id[i]
    assert max(received.values()) <= 2
    return rows


def test_kill_9_mid_delivery_on_sqlite_loses_nothing(tmp_path: Path) -> None:
    with ThreadedSmtp(data_delay=0.1) as smtp:
        config = prepared(tmp_path, smtp, officials=120)
        with Daemon(config, "first") as first:
            first.wait_log("watchdog running")
            smtp.wait_for(20)
            first.kill9()  # mid-run: some messages sent, some claimed and in flight
        arrived = len(smtp.ids())
        assert arrived < 120
        with Daemon(config, "second") as second:
            smtp.wait_for(120, timeout=90)
            time.sleep(0.5)
            assert second.terminate() == 0
            assert "watchdog stopped" in second.text()
        rows = check_delivered_once(config, smtp, 120)
        resent = [r for r in rows if r["attempts"] > 1]
        assert resent, "the messages in flight at the kill were sent again"


def test_sigterm_finishes_in_flight_sends_and_exits_0(tmp_path: Path) -> None:
    with ThreadedSmtp(data_delay=0.2) as smtp:
        config = prepared(tmp_path, smtp, officials=40)
        with Daemon(config) as d:
            smtp.wait_for(5)
            assert d.terminate() == 0
        rows = [r for r in history(tmp_path, config) if r["kind"] == "alert"]
        # nothing left claimed: what was taken was sent and recorded, the rest waits
        assert not [r for r in rows if r["status"] == "sending"]
        sent = {str(r["id"]) for r in rows if r["status"] == "sent"}
        assert sent == set(smtp.ids())
        with Daemon(config, "again") as d:  # the rest goes on the next start, once
            d.wait_log("watchdog running")
            smtp.wait_for(40)
            assert d.terminate() == 0
        check_delivered_once(config, smtp, 40)


def test_a_second_daemon_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    with ThreadedSmtp() as smtp:
        config = prepared(tmp_path, smtp, officials=2)
        with Daemon(config, "one") as one:
            one.wait_log("watchdog running")
            two = watchdog("--config", str(config), "run", cwd=tmp_path, timeout=30)
            assert two.returncode == 1
            assert "another watchdog daemon" in two.stderr
            assert f"pid {one.proc.pid}" in two.stderr
            assert "Traceback" not in two.stderr
            assert one.terminate() == 0


def test_an_invalid_rules_reload_keeps_the_running_rules(tmp_path: Path) -> None:
    with ThreadedSmtp() as smtp:
        config = prepared(tmp_path, smtp, officials=2)
        with Daemon(config) as d:
            d.wait_log("watchdog running")
            rules = tmp_path / "rules.yaml"
            good = rules.read_text(encoding="utf-8")
            rules.write_text(good.replace("'0 working_days'", "'1 dy'"), encoding="utf-8")
            d.proc.send_signal(signal.SIGHUP)
            d.wait_log("keeping the running configuration")
            assert "rules.yaml:4" in d.text()  # where it is wrong
            assert d.proc.poll() is None
            smtp.wait_for(2)  # still working on the old rules
            rules.write_text(good.replace("notify:", "repeat: '1 working_day', notify:"))
            d.proc.send_signal(signal.SIGHUP)
            d.wait_log("reloaded (SIGHUP)")
            # a changed file is noticed without a signal too
            time.sleep(1.1)  # a new mtime even on coarse file systems
            rules.write_text(good, encoding="utf-8")
            d.wait_log("rules.yaml changed): rules", timeout=20)
            assert d.terminate() == 0


@pytest.mark.postgres
def test_three_replicas_on_postgresql_share_the_work_and_survive_a_kill(
    tmp_path: Path, postgres_url: str
) -> None:
    with ThreadedSmtp(data_delay=0.1) as smtp:
        config = prepared(tmp_path, smtp, officials=150, database=postgres_url)
        replicas = [Daemon(config, f"replica{i}") for i in range(3)]
        try:
            for r in replicas:
                r.wait_log("watchdog running")
            smtp.wait_for(30)
            # the one sending is killed (one replica may have claimed everything): the others
            # must take its claimed messages over once their leases expire
            deadline = time.monotonic() + 10
            while not (busy := [r for r in replicas if "sent #" in r.text()]):
                assert time.monotonic() < deadline, "no replica logged a send"
                time.sleep(0.1)
            busy[0].kill9()
            smtp.wait_for(150, timeout=90)
            time.sleep(0.5)
            for r in replicas:
                if r is not busy[0]:
                    assert r.terminate() == 0
        finally:
            for r in replicas:
                r.__exit__()
        check_delivered_once(config, smtp, 150)
        senders = [r for r in replicas if "sent #" in r.text()]
        assert len(senders) >= 2, "the replicas shared the sending"


@pytest.mark.skipif(not pgcluster.available(), reason="needs PostgreSQL server binaries")
def test_the_database_going_away_and_coming_back(tmp_path: Path) -> None:
    """A PostgreSQL restart during a run (a cluster of the test's own): the daemon keeps
    running, logs the outage once, recovers, and delivers everything."""
    cluster = pgcluster.Cluster()
    try:
        cluster.start()
        with ThreadedSmtp(data_delay=0.1) as smtp:
            port = free_port()
            config = prepared(tmp_path, smtp, officials=100, database=cluster.url, http_port=port)
            health = f"http://127.0.0.1:{port}/healthz"
            with Daemon(config) as d:
                d.wait_log("watchdog running")
                assert httpx.get(health).status_code == 200
                smtp.wait_for(10)
                cluster.stop()
                d.wait_log("database unreachable")
                time.sleep(3)
                assert d.proc.poll() is None  # still running
                down = httpx.get(health)  # /healthz says so meanwhile
                assert down.status_code == 503
                assert down.json()["database"]["reachable"] is False
                cluster.start()
                d.wait_log("database reachable again", timeout=90)
                assert httpx.get(health).status_code == 200
                smtp.wait_for(100, timeout=90)
                # /healthz counts the open cases by state once the first tick planned them
                deadline = time.monotonic() + 30
                while not sum(httpx.get(health).json()["open_cases"].values()):
                    assert time.monotonic() < deadline, "/healthz never counted the open cases"
                    time.sleep(0.5)
                time.sleep(0.5)
                assert d.terminate() == 0
                log = d.text()
            assert log.count("database unreachable") == 1  # once per outage
            assert "Traceback" not in log
            check_delivered_once(config, smtp, 100)
    finally:
        cluster.destroy()


@pytest.mark.postgres
def test_one_replica_polls_telegram_and_another_takes_over_when_it_dies(
    tmp_path: Path, postgres_url: str
) -> None:
    from tests.support.fake_telegram import FakeTelegram

    with ThreadedSmtp() as smtp, FakeTelegram(chat_interval=0.01, bot_per_second=1000) as fake:
        config = province(tmp_path, officials=2, database=postgres_url, smtp_port=smtp.port)
        text = config.read_text(encoding="utf-8").replace(
            "channels:\n",
            f"channels:\n  telegram: {{token: '{fake.token}', api_url: '{fake.api_url}'}}\n",
        )
        config.write_text(text, encoding="utf-8")
        assert watchdog("--config", str(config), "db", "upgrade", cwd=tmp_path).returncode == 0
        replicas = [Daemon(config, f"r{i}") for i in range(2)]
        try:
            for r in replicas:
                r.wait_log("watchdog running")
            deadline = time.monotonic() + 30
            while not any("this replica polls Telegram" in r.text() for r in replicas):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            time.sleep(1)
            pollers = [r for r in replicas if "this replica polls Telegram" in r.text()]
            assert len(pollers) == 1  # one poller per bot token
            leader = pollers[0]
            other = next(r for r in replicas if r is not leader)
            leader.kill9()
            other.wait_log("this replica polls Telegram", timeout=60)  # within a minute
            fake.push_message("4242", "/start")  # the new poller answers
            deadline = time.monotonic() + 20
            while not fake.sent("4242"):
                assert time.monotonic() < deadline, "the new poller did not answer"
                time.sleep(0.1)
            assert other.terminate() == 0
        finally:
            for r in replicas:
                r.__exit__()
