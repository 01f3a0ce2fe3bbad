"""The command line as a user runs it: subprocesses, exit codes, stdout versus stderr.

Commands run in the default language, Vietnamese, unless a test says otherwise (WATCHDOG_LANG
is removed from the environment); tests/acceptance/test_lang.py compares the two languages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def watchdog(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    drop = ("WATCHDOG_CONFIG", "WATCHDOG_LANG")
    full_env = {k: v for k, v in os.environ.items() if k not in drop} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "watchdog", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def province(tmp_path: Path, small_config: Path) -> Path:
    """The small test province, its database in tmp_path, and one CSV export."""
    (tmp_path / "cases.csv").write_text(
        "Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận,Trạng thái,Cán bộ thụ lý,Ngày kết thúc xử lý\n"
        "H1,2.000488,STP.HC,10/11/2026 09:00,4,chuyenvien,\n"
        "H2,2.000488,STP.HC,02/11/2026 08:00,9,chuyenvien,05/11/2026 10:00\n"
        "H3,1.000001,STP,20/11/2026 09:00,2,lanhdao,\n"
        "H4,1.000002,SXD,19/11/2026 10:00,5,,\n",
        encoding="utf-8",
    )
    with small_config.open("a", encoding="utf-8") as f:
        f.write("channels:\n  email: {host: localhost, from: watchdog@example.vn}\n")
    return small_config


def test_due_without_any_config(tmp_path: Path) -> None:
    r = watchdog("due", "--received", "13/02/2026 09:00", "--working-days", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "2026-02-25T09:00:00+07:00\n"


def test_due_with_a_procedure_of_the_config(province: Path) -> None:
    r = watchdog(
        "--config",
        str(province),
        "due",
        "--received",
        "2026-11-20T14:00:00+07:00",
        "--procedure",
        "1.000001",
        cwd=province.parent,
    )
    # 14:00-17:00 is 3 h, the 4th hour is 07:00-08:00 on Monday 23/11.
    assert (r.returncode, r.stdout) == (0, "2026-11-23T08:00:00+07:00\n")


def test_due_usage_errors_exit_2(province: Path) -> None:
    r = watchdog("due", "--received", "yesterday", "--working-days", "3", cwd=province.parent)
    assert r.returncode == 2 and "--received: cần ngày theo dạng" in r.stderr
    r = watchdog(
        "--config",
        str(province),
        "due",
        "--received",
        "01/12/2026",
        "--procedure",
        "0.000",
        cwd=province.parent,
    )
    assert r.returncode == 2 and "không có thủ tục '0.000'" in r.stderr
    r = watchdog("due", "--received", "01/12/2026", cwd=province.parent)
    assert r.returncode == 2  # argparse: one limit option is required


def test_check_accepts_the_example_and_rejects_bad_config(tmp_path: Path) -> None:
    r = watchdog("--config", str(ROOT / "config.example.yaml"), "check", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "config.example.yaml: hợp lệ (13 đơn vị" in r.stdout
    assert "quy tắc cảnh báo: hợp lệ" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("units:\n  - {code: A, name: A, parent: B}\n", encoding="utf-8")
    r = watchdog("--config", str(bad), "check", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == f"{bad}:2: units[0].parent: không có đơn vị 'B'"
    r = watchdog("check", cwd=tmp_path)  # no ./config.yaml
    assert r.returncode == 2 and "không có tệp cấu hình này" in r.stderr


def test_config_from_environment_variable(province: Path, tmp_path: Path) -> None:
    r = watchdog("check", cwd=tmp_path, env={"WATCHDOG_CONFIG": str(province)})
    assert r.returncode == 0, r.stderr


def test_import_then_cases_then_report(province: Path) -> None:
    cwd = province.parent
    r = watchdog("--config", str(province), "import", str(cwd / "cases.csv"), cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inserted"] == 4

    r = watchdog(
        "--config",
        str(province),
        "cases",
        "--format",
        "jsonl",
        "--now",
        "23/11/2026 10:00",
        cwd=cwd,
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["case_code"], x["state"]) for x in rows] == [
        ("H3", "overdue"),  # 4 working hours from 20/11 09:00: due 20/11 13:00... now 23/11
        ("H1", "due_soon"),  # 10 working days from 10/11 09:00, 24/11 off: due 25/11 09:00
        ("H4", "waiting"),
    ]
    assert rows[0]["due_at"] == "2026-11-20T15:00:00+07:00"
    assert rows[1]["due_at"] == "2026-11-25T09:00:00+07:00"

    r = watchdog(
        "--config", str(province), "cases", "--unit", "STP.HC", "--now", "23/11/2026 10:00", cwd=cwd
    )
    assert r.returncode == 0 and "H1" in r.stdout and "H3" not in r.stdout
    # The board people read: counts per state, names beside codes, dd/mm/yyyy, words.
    lines = r.stdout.splitlines()
    assert lines[0] == "Quá hạn: 0 · Sắp đến hạn: 1 · Trong hạn: 0 · Chờ bổ sung: 0"
    assert lines[1] == ""
    assert lines[2].split() == [
        *("Mã", "hồ", "sơ", "Đơn", "vị", "Thủ", "tục", "Cán", "bộ", "thụ", "lý"),
        *("Ngày", "tiếp", "nhận", "Hạn", "xử", "lý", "Còn", "lại", "Trạng", "thái"),
    ]
    # H1: due Wed 25/11 09:00; at Mon 23/11 10:00 there remain Mon 10:00-11:30 and
    # 13:30-17:00 (5 h), Tue 24/11 is a holiday (Vietnamese Culture Day), Wed 07:00-09:00
    # (2 h): 7 working hours, less than a day.
    h1 = next(line for line in lines if line.startswith("H1 "))
    assert "STP.HC · Phòng Hành chính tư pháp" in h1
    assert "chuyenvien · Nguyễn Văn Chuyên" in h1
    assert "10/11/2026 09:00  25/11/2026 09:00  còn 7 giờ  Sắp đến hạn" in h1
    assert r.stderr.strip() == "1 hồ sơ đang giải quyết"

    r = watchdog(
        "--config",
        str(province),
        "cases",
        "--official",
        "lanhdao",
        "--state",
        "overdue",
        "--format",
        "jsonl",
        "--now",
        "23/11/2026 10:00",
        cwd=cwd,
    )
    assert [json.loads(x)["case_code"] for x in r.stdout.splitlines()] == ["H3"]

    r = watchdog(
        "--config",
        str(province),
        "report",
        "--from",
        "01/11/2026",
        "--to",
        "30/11/2026",
        "--format",
        "csv",
        cwd=cwd,
    )
    assert r.returncode == 0, r.stderr
    assert (
        r.stdout.splitlines()[0]
        == "unit_code,unit_name,received,on_time,in_progress,late,on_time_rate"
    )
    assert r.stdout.splitlines()[-1] == "TOTAL,Tổng cộng,4,1,1,2,33.33"

    out = cwd / "report.csv"
    r = watchdog(
        "--config",
        str(province),
        "report",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--format",
        "csv",
        "--out",
        str(out),
        cwd=cwd,
    )
    assert (
        r.returncode == 0
        and r.stdout == ""
        and out.read_text(encoding="utf-8").startswith("unit_code")
    )


def test_db_upgrade_is_idempotent(province: Path) -> None:
    for _ in range(2):
        r = watchdog("--config", str(province), "db", "upgrade", cwd=province.parent)
        assert r.returncode == 0, r.stderr


def test_run_once_with_demo_data_delivers_once(tmp_path: Path) -> None:
    """`run --once` syncs, evaluates and delivers (SPEC 8), prints a summary instead of the
    board, and a second pass at the same instant sends nothing."""
    import json
    import re

    config = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    r = watchdog("run", "--once", "--demo", "--now", "20/11/2026 09:00", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # no board: 200,000 lines on a large database
    said = re.search(r"thông báo: đã gửi (\d+), chờ giờ hành chính (\d+)", r.stderr)
    assert said, r.stderr
    files = sorted((tmp_path / "var" / "outbox").glob("*.eml"))
    assert int(said[1]) == len(files) > 0
    assert r.stderr.splitlines()[-1] == "xong một lượt lúc 20/11/2026 09:00"

    again = watchdog("run", "--once", "--now", "20/11/2026 09:00", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "thông báo: đã gửi 0," in again.stderr
    assert sorted((tmp_path / "var" / "outbox").glob("*.eml")) == files

    h = watchdog("history", "--format", "jsonl", cwd=tmp_path)
    rows = [json.loads(line) for line in h.stdout.splitlines()]
    assert len(rows) == len(files)
    assert {row["status"] for row in rows} == {"sent"}
    assert {row["attempts"] for row in rows} == {1}
    alerts = [row for row in rows if row["case_codes"]]
    assert alerts and all(row["sent_at"].startswith("2026-11-20T09:00") for row in alerts)
    one = alerts[0]["case_codes"][0]
    by_case = watchdog("history", "--case", one, "--format", "jsonl", cwd=tmp_path)
    assert all(one in json.loads(line)["case_codes"] for line in by_case.stdout.splitlines())


def test_run_once_says_how_many_firings_it_wrote(tmp_path: Path) -> None:
    """Planning and the tick both write firings; the summary counts both (it used to print
    "0 new firing(s)" after recording the planning's)."""
    import re
    import sqlite3

    config = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    r = watchdog("run", "--once", "--demo", "--now", "20/11/2026 09:00", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    said = re.search(r"(\d+) cảnh báo mới \((\d+) khi lập lịch, (\d+) trong lượt xét\)", r.stderr)
    assert said, r.stderr
    with sqlite3.connect(tmp_path / "var" / "watchdog.db") as db:
        (stored,) = db.execute("SELECT count(*) FROM firings").fetchone()
    assert int(said[1]) == stored > 0
    assert int(said[1]) == int(said[2]) + int(said[3])
    again = watchdog("run", "--once", "--now", "20/11/2026 09:00", cwd=tmp_path)
    assert " 0 cảnh báo mới" in again.stderr  # nothing new at the same instant


def test_simulate_prints_what_the_daemon_would_send_and_writes_nothing(province: Path) -> None:
    import sqlite3

    cwd = province.parent
    assert (
        watchdog("--config", str(province), "import", str(cwd / "cases.csv"), cwd=cwd).returncode
        == 0
    )
    db = cwd / "var" / "test.db"
    before = sqlite3.connect(db).execute("SELECT count(*), max(updated_at) FROM cases").fetchone()

    r = watchdog(
        "--config",
        str(province),
        "simulate",
        "--from",
        "20/11/2026 07:00",
        "--to",
        "27/11/2026 17:00",
        "--format",
        "jsonl",
        cwd=cwd,
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows and all(
        {"at", "stage", "case_codes", "recipient", "channel"} <= set(x) for x in rows
    )
    assert [x["at"] for x in rows] == sorted(x["at"] for x in rows)
    h1 = [x for x in rows if "H1" in x["case_codes"]]
    # H1: 10 working days from 10/11 09:00 (24/11 is a holiday): due 25/11 09:00.
    # due_soon opens one working day earlier, 23/11 09:00; the default group window is 5 min.
    first = next(x for x in h1 if x["stage"] == "mac_dinh/due_soon")
    assert (first["at"], first["recipient"], first["channel"]) == (
        "2026-11-23T09:05:00+07:00",
        "chuyenvien",
        "email",
    )
    assert any(x["stage"] == "mac_dinh/overdue" and x["at"] >= "2026-11-25T09:00" for x in h1)
    # quiet hours: nothing goes out at night or at the weekend
    assert all("07:00" <= x["at"][11:16] <= "17:05" for x in rows)

    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*), max(updated_at) FROM cases").fetchone() == before
    assert conn.execute("SELECT count(*) FROM firings").fetchone() == (0,)


def test_findings_after_a_run(province: Path) -> None:
    cwd = province.parent
    (cwd / "odd.csv").write_text(
        "case_code,procedure_code,unit_code,received_at,status\n"
        "X1,0.000000,STP.HC,20/11/2026 09:00,2\n",
        encoding="utf-8",
    )
    assert (
        watchdog("--config", str(province), "import", str(cwd / "odd.csv"), cwd=cwd).returncode == 0
    )
    r = watchdog("--config", str(province), "run", "--once", "--now", "20/11/2026 10:00", cwd=cwd)
    assert r.returncode == 0, r.stderr
    r = watchdog("--config", str(province), "findings", "--format", "jsonl", cwd=cwd)
    kinds = sorted((json.loads(x)["kind"], json.loads(x)["subject"]) for x in r.stdout.splitlines())
    assert kinds == [("no_assignee", "X1"), ("unknown_procedure", "X1")]


def test_check_reports_rule_errors_with_file_and_line(province: Path) -> None:
    cwd = province.parent
    (cwd / "rules.yaml").write_text(
        "policies:\n"
        "  - name: p\n"
        "    stages:\n"
        "      - id: due_soon\n"
        '        when: {remaining: "1 dy"}\n'
        "        notify: [assignee]\n",
        encoding="utf-8",
    )
    with province.open("a", encoding="utf-8") as f:
        f.write("rules: [rules.yaml]\n")
    r = watchdog("--config", str(province), "check", cwd=cwd, env={"WATCHDOG_LANG": "en"})
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"{cwd / 'rules.yaml'}:5: policies[0].stages[0].when.remaining: expected a duration "
        'such as "15 working_days", "4 working_hours", "30 calendar_days" or "0 working_days", '
        "got '1 dy'"
    )


def test_import_of_a_cp1258_file_with_encoding(province: Path) -> None:
    cwd = province.parent
    csv = cwd / "cp1258.csv"
    csv.write_bytes(
        (
            "case_code,procedure_code,unit_code,received_at,status,applicant_name\n"
            "W1,2.000488,STP.HC,19/11/2026 09:00,2,Đào Văn Tư\n"
        ).encode("cp1258")
    )
    r = watchdog("--config", str(province), "import", str(csv), cwd=cwd)
    assert r.returncode == 1 and "--encoding cp1258" in r.stderr and "Traceback" not in r.stderr
    r = watchdog("--config", str(province), "import", str(csv), "--encoding", "cp1258", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inserted"] == 1
    r = watchdog("--config", str(province), "import", "--help", cwd=cwd)
    assert "--encoding E" in r.stdout and "cp1258" in r.stdout


def test_link_code_send_test_and_history(tmp_path: Path, small_config: Path) -> None:
    import json
    import re

    with small_config.open("a", encoding="utf-8") as f:
        f.write("channels: {file: {dir: out}}\n")
    cfg = ("--config", str(small_config))
    r = watchdog(*cfg, "officials", "link-code", "chuyenvien", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    code = r.stdout.strip()
    assert re.fullmatch(r"[0-9A-F]{10}", code)
    assert f"/start {code}" in r.stderr and "Nguyễn Văn Chuyên" in r.stderr
    stored = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("test.db*"))
    assert code.encode() not in stored  # kept only as its hash
    unknown = watchdog(*cfg, "officials", "link-code", "ai_do", cwd=tmp_path)
    assert unknown.returncode == 2 and "ai_do" in unknown.stderr

    sent = watchdog(*cfg, "send-test", "chuyenvien", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert "file (chuyenvien): đã gửi" in sent.stderr
    (eml,) = (tmp_path / "out").glob("*.eml")
    assert "tthc-watchdog" in eml.read_text(encoding="utf-8")
    h = watchdog(*cfg, "history", "--status", "sent", "--format", "jsonl", cwd=tmp_path)
    (row,) = [json.loads(line) for line in h.stdout.splitlines()]
    assert (row["kind"], row["recipient"], row["channel"], row["attempts"]) == (
        "test",
        "chuyenvien",
        "file",
        1,
    )
    table = watchdog(*cfg, "history", cwd=tmp_path)
    assert table.returncode == 0 and "đã gửi" in table.stdout
    assert watchdog(*cfg, "history", "--status", "dead", cwd=tmp_path).stderr.strip() == (
        "0 thông báo"
    )
