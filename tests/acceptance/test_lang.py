"""Vietnamese for people, English on request (SPEC 8): the command line as a subprocess.

Text for people (tables, states, remaining time, findings, errors, summaries, --help) is
Vietnamese by default and English with `--lang en` or WATCHDOG_LANG=en; machine output (jsonl,
CSV, ISO instants, state and finding codes) is byte for byte the same in both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NOW = "23/11/2026 10:00"


def watchdog(
    *args: str, cwd: Path, lang: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`lang` None: WATCHDOG_LANG unset (the default language)."""
    full = {k: v for k, v in os.environ.items() if k not in ("WATCHDOG_CONFIG", "WATCHDOG_LANG")}
    if lang is not None:
        full["WATCHDOG_LANG"] = lang
    return subprocess.run(
        [sys.executable, "-m", "watchdog", *args],
        cwd=cwd,
        env=full | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def province(tmp_path: Path, small_config: Path) -> Path:
    """The small test province with four cases imported (the CSV of test_cli.py).

    At Mon 23/11/2026 10:00 (24/11 is a holiday):
    - H3 has 4 working hours from Fri 20/11 09:00: 09:00-11:30 gives 2.5 h, 13:30-15:00 the
      last 1.5 h, due Fri 15:00; late by Fri 15:00-17:00 (2 h) and Mon 07:00-10:00 (3 h): 5 h;
    - H1 (10 working days from 10/11 09:00: due Wed 25/11 09:00) has Mon 10:00-11:30,
      13:30-17:00 (5 h) and Wed 07:00-09:00 (2 h) left: 7 h, due soon;
    - H4 waits for documents; H2 is finished.
    """
    (tmp_path / "cases.csv").write_text(
        "Mã hồ sơ,Mã TTHC,Đơn vị,Ngày tiếp nhận,Trạng thái,Cán bộ thụ lý,Ngày kết thúc xử lý\n"
        "H1,2.000488,STP.HC,10/11/2026 09:00,4,chuyenvien,\n"
        "H2,2.000488,STP.HC,02/11/2026 08:00,9,chuyenvien,05/11/2026 10:00\n"
        "H3,1.000001,STP,20/11/2026 09:00,2,lanhdao,\n"
        "H4,1.000002,SXD,19/11/2026 10:00,5,,\n",
        encoding="utf-8",
    )
    r = watchdog("--config", str(small_config), "import", "cases.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return small_config


def test_help_is_vietnamese_by_default_and_english_on_request(tmp_path: Path) -> None:
    vi = watchdog("--help", cwd=tmp_path)
    assert vi.returncode == 0
    assert vi.stdout.startswith("Cách dùng: watchdog")
    assert "tùy chọn:" in vi.stdout and "hiện trợ giúp này rồi thoát" in vi.stdout
    assert "kiểm tra cấu hình, quy tắc cảnh báo và mẫu tin nhắn" in vi.stdout
    for en in (
        watchdog("--lang", "en", "--help", cwd=tmp_path),
        watchdog("--help", cwd=tmp_path, lang="en"),
        watchdog("--lang=en", "--help", cwd=tmp_path, lang="vi"),  # the option wins
    ):
        assert en.stdout.startswith("usage: watchdog")
        assert (
            "options:" in en.stdout and "validate configuration, rules and templates" in en.stdout
        )
    sub = watchdog("cases", "--help", cwd=tmp_path)
    assert "chỉ các hồ sơ ở trạng thái này: overdue (Quá hạn)" in " ".join(sub.stdout.split())


def test_usage_errors_speak_the_language(tmp_path: Path) -> None:
    vi = watchdog("cases", "--state", "late", cwd=tmp_path)
    assert vi.returncode == 2
    assert "watchdog cases: lỗi: tham số --state: giá trị không hợp lệ: 'late'" in vi.stderr
    en = watchdog("--lang", "en", "cases", "--state", "late", cwd=tmp_path)
    assert en.returncode == 2
    assert "watchdog cases: error: argument --state: invalid choice: 'late'" in en.stderr


def test_a_language_we_do_not_have_is_a_usage_error(tmp_path: Path) -> None:
    r = watchdog("--help", cwd=tmp_path, lang="fr")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (
        "watchdog: WATCHDOG_LANG: unsupported language 'fr': expected vi or en"
    )
    r = watchdog("--lang", "fr", "--help", cwd=tmp_path)
    assert r.returncode == 2 and "--lang" in r.stderr and "'fr'" in r.stderr
    assert watchdog("--help", cwd=tmp_path, lang="en_US.UTF-8").stdout.startswith("usage:")


def test_the_board_in_both_languages(province: Path) -> None:
    cwd = province.parent
    args = ("--config", str(province), "cases", "--now", NOW)
    vi = watchdog(*args, cwd=cwd)
    assert vi.returncode == 0, vi.stderr
    lines = vi.stdout.splitlines()
    assert lines[0] == "Quá hạn: 1 · Sắp đến hạn: 1 · Trong hạn: 0 · Chờ bổ sung: 1"
    assert " ".join(lines[2].split()) == (
        "Mã hồ sơ Đơn vị Thủ tục Cán bộ thụ lý Ngày tiếp nhận Hạn xử lý Còn lại Trạng thái"
    )
    h3, h1, h4 = lines[4:]
    assert h3.startswith("H3 ") and "STP · Sở Tư pháp" in h3 and "lanhdao · Lê Văn Lãnh" in h3
    assert " ".join(h3.split()).endswith("20/11/2026 09:00 20/11/2026 15:00 quá hạn 5 giờ Quá hạn")
    assert " ".join(h1.split()).endswith("còn 7 giờ Sắp đến hạn")
    assert "SXD · Sở Xây dựng" in h4 and h4.endswith("Chờ bổ sung")
    assert vi.stderr.strip() == "3 hồ sơ đang giải quyết"

    en = watchdog("--lang", "en", *args, cwd=cwd)
    lines = en.stdout.splitlines()
    assert lines[0] == "Overdue: 1 · Due soon: 1 · On track: 0 · Waiting for documents: 1"
    assert " ".join(lines[2].split()) == (
        "Case Unit Procedure Assignee Received on Due Remaining State"
    )
    assert "5 hours overdue" in lines[4] and lines[4].endswith("Overdue")
    assert "7 hours left" in lines[5]
    assert en.stderr.strip() == "3 open cases"


def test_machine_output_is_the_same_in_both_languages(province: Path) -> None:
    cwd = province.parent
    for args in (
        ("cases", "--format", "jsonl", "--now", NOW),
        ("report", "--from", "01/11/2026", "--to", "30/11/2026", "--format", "csv"),
        (
            "simulate",
            *("--from", "20/11/2026 07:00", "--to", "27/11/2026 17:00", "--format", "jsonl"),
        ),
    ):
        vi = watchdog("--config", str(province), *args, cwd=cwd)
        en = watchdog("--config", str(province), *args, cwd=cwd, lang="en")
        assert vi.returncode == en.returncode == 0, vi.stderr + en.stderr
        assert vi.stdout == en.stdout and vi.stdout, args
    rows = [
        json.loads(x)
        for x in watchdog(
            "--config", str(province), "cases", "--format", "jsonl", "--now", NOW, cwd=cwd
        ).stdout.splitlines()
    ]
    assert [x["state"] for x in rows] == ["overdue", "due_soon", "waiting"]
    assert rows[0]["due_at"] == "2026-11-20T15:00:00+07:00"


def test_the_report_table_in_both_languages(province: Path) -> None:
    """November as of 30/11 24:00: H2 finished on time (due 16/11), H1 (due 25/11) and H3
    (due 20/11) open and late, H4 waiting: 4 received, 1 on time, 1 in progress, 2 late."""
    cwd = province.parent
    args = ("--config", str(province), "report", "--from", "01/11/2026", "--to", "30/11/2026")
    vi = watchdog(*args, "--as-of", "30/11/2026", cwd=cwd).stdout.splitlines()
    assert vi[0] == (
        "Hồ sơ tiếp nhận từ 01/11/2026 đến 30/11/2026, số liệu tính đến 01/12/2026 00:00"
    )
    assert " ".join(vi[2].split()) == (
        "Mã đơn vị Đơn vị Tiếp nhận Đúng hạn Trong hạn Trễ hạn Tỷ lệ đúng hạn (%)"
    )
    assert vi[-1].split() == ["Tổng", "cộng", "4", "1", "1", "2", "33,33"]
    en = watchdog(*args, "--as-of", "30/11/2026", cwd=cwd, lang="en").stdout.splitlines()
    assert (
        en[0] == "Cases received from 01/11/2026 to 30/11/2026, as they stand at 01/12/2026 00:00"
    )
    assert en[-1].split() == ["Total", "4", "1", "1", "2", "33.33"]


def test_findings_name_their_kind_in_the_language_of_the_reader(province: Path) -> None:
    """The engine stores a finding's detail in its own language; the kind is a code in the
    database and named when shown."""
    cwd = province.parent
    (cwd / "odd.csv").write_text(
        "case_code,procedure_code,unit_code,received_at,status\n"
        "X1,9.999999,STP.HC,20/11/2026 09:00,2\n",
        encoding="utf-8",
    )
    assert watchdog("--config", str(province), "import", "odd.csv", cwd=cwd).returncode == 0
    r = watchdog("--config", str(province), "run", "--once", "--now", "20/11/2026 10:00", cwd=cwd)
    assert r.returncode == 0, r.stderr
    vi = watchdog("--config", str(province), "findings", cwd=cwd)
    rows = [" ".join(line.split()) for line in vi.stdout.splitlines()[2:]]
    assert rows == [
        "Chưa có cán bộ thụ lý H4 hồ sơ đang giải quyết chưa có cán bộ thụ lý 20/11/2026 10:00",
        "Chưa có cán bộ thụ lý X1 hồ sơ đang giải quyết chưa có cán bộ thụ lý 20/11/2026 10:00",
        "Thủ tục chưa cấu hình X1 thủ tục 9.999999 chưa có trong cấu hình 20/11/2026 10:00",
    ]
    assert vi.stderr.strip() == "3 vấn đề chưa xử lý"
    en = watchdog("--config", str(province), "findings", cwd=cwd, lang="en")
    assert "No assignee" in en.stdout and "Procedure not configured" in en.stdout
    machine = watchdog("--config", str(province), "findings", "--format", "jsonl", cwd=cwd)
    kinds = [json.loads(x)["kind"] for x in machine.stdout.splitlines()]
    assert kinds == ["no_assignee", "no_assignee", "unknown_procedure"]


def test_configuration_errors_and_summaries(province: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("units:\n  - {code: A, name: A, colour: red}\n", encoding="utf-8")
    vi = watchdog("--config", str(bad), "check", cwd=tmp_path)
    assert (vi.returncode, vi.stderr.strip()) == (
        2,
        f"{bad}:2: units[0].colour: khóa lạ (sai tên khóa?)",
    )
    en = watchdog("--config", str(bad), "check", cwd=tmp_path, lang="en")
    assert (en.returncode, en.stderr.strip()) == (2, f"{bad}:2: units[0].colour: unknown key")

    cwd = province.parent
    vi = watchdog("--config", str(province), "import", "cases.csv", "--dry-run", cwd=cwd)
    en = watchdog("--config", str(province), "import", "cases.csv", "--dry-run", cwd=cwd, lang="en")
    assert vi.stdout == en.stdout  # the JSON summary
    assert vi.stderr.splitlines()[-1] == (
        "cases.csv: 4 dòng: 0 hồ sơ mới, 0 cập nhật, 4 không đổi, 0 bị từ chối "
        "(chạy thử: không ghi gì vào cơ sở dữ liệu)"
    )
    assert en.stderr.splitlines()[-1] == (
        "cases.csv: 4 row(s): 0 new, 0 updated, 4 unchanged, 0 rejected (dry run: nothing written)"
    )
